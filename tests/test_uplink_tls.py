"""Per-vehicle credentials on a Mosquitto of the test's own: TLS with a client certificate and a
username/password from a password file; wrong credentials keep the link down, say why, and the
hub keeps spooling."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import subprocess
import time
from pathlib import Path

import aiomqtt
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from anycar.hub import HubConfig
from anycar.uplink import UplinkComponent
from uplink_support import FAST, Listener, Mosquitto, bare_hub, campaign_file, unique_vehicle

pytestmark = pytest.mark.timeout(60)


def _write(
    folder: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return folder / f"{name}.pem", folder / f"{name}.key"


def make_pki(folder: Path, vehicle: str) -> dict[str, Path]:
    """A fleet CA, the broker's certificate for 127.0.0.1 and the vehicle's client certificate."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "anycar test fleet CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    out = {"ca": _write(folder, "ca", ca, ca_key)[0]}

    def issue(name: str, cn: str, server: bool) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
            )
        return _write(folder, name, builder.sign(ca_key, hashes.SHA256()), key)

    out["server_cert"], out["server_key"] = issue("server", "127.0.0.1", True)
    out["client_cert"], out["client_key"] = issue("client", vehicle, False)
    return out


def secure_broker(folder: Path, pki: dict[str, Path], user: str, password: str) -> Mosquitto:
    passwd = folder / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwd), user, password], check=True, capture_output=True
    )
    passwd.chmod(0o600)
    extra = "\n".join(
        [
            "allow_anonymous false",
            f"password_file {passwd}",
            f"cafile {pki['ca']}",
            f"certfile {pki['server_cert']}",
            f"keyfile {pki['server_key']}",
            "require_certificate true",
        ]
    )
    return Mosquitto(folder, extra=extra)


async def test_tls_client_certificate_and_password(tmp_path: Path) -> None:
    vehicle = unique_vehicle("PM")
    pki = make_pki(tmp_path, vehicle)
    broker = secure_broker(tmp_path, pki, vehicle, "s3cret").start()
    (tmp_path / "mqtt.pass").write_text("s3cret\n")
    campaign_file(tmp_path, FAST, "fast.yaml")
    (tmp_path / "hub.yaml").write_text(
        yaml.safe_dump(
            {
                "ports": {"grpc": None, "viss": None, "http": None},
                "uplink": {
                    "broker": f"mqtts://127.0.0.1:{broker.port}",
                    "vehicle_id": vehicle,
                    "username": vehicle,
                    "password_file": "mqtt.pass",
                    "tls": {"ca": "ca.pem", "cert": "client.pem", "key": "client.key"},
                    "campaigns": ["fast.yaml"],
                    "spool": {"path": "uplink.sqlite3"},
                    "reconnect": {"min_s": 0.05, "max_s": 0.3},
                },
            }
        )
    )
    config = HubConfig.load(tmp_path / "hub.yaml")
    assert config.uplink is not None and config.uplink.tls_on and config.uplink.password == "s3cret"
    hub = bare_hub()
    provider = hub.broker.register_provider("car", ["Vehicle.Speed"])
    uplink = UplinkComponent(config.uplink)
    hub.add_component(uplink)
    tls = aiomqtt.TLSParameters(
        ca_certs=str(pki["ca"]),
        certfile=str(pki["client_cert"]),
        keyfile=str(pki["client_key"]),
        cert_reqs=ssl.CERT_REQUIRED,
    )
    try:
        async with Listener(
            vehicle, broker.port, username=vehicle, password="s3cret", tls_params=tls
        ) as fleet:
            await hub.start()
            provider.publish("Vehicle.Speed", 42.0)
            await fleet.wait_for(lambda: any(m["kind"] == "telemetry" for m in fleet.messages))
            assert uplink.link is not None and uplink.link.connected
    finally:
        await hub.stop()
        broker.stop()


async def test_wrong_password_keeps_the_link_down_and_says_why(tmp_path: Path) -> None:
    vehicle = unique_vehicle("PM")
    pki = make_pki(tmp_path, vehicle)
    broker = secure_broker(tmp_path, pki, vehicle, "right").start()
    from anycar.uplink import UplinkConfig
    from anycar.uplink.config import TlsSettings

    cfg = UplinkConfig.from_url(f"mqtts://{vehicle}:wrong@127.0.0.1:{broker.port}", vehicle)
    cfg.tls = TlsSettings(pki["ca"], pki["client_cert"], pki["client_key"])
    cfg.spool_path = tmp_path / "uplink.sqlite3"
    cfg.campaigns = [campaign_file(tmp_path, FAST)]
    cfg.reconnect_min_s, cfg.reconnect_max_s = 0.05, 0.2
    hub = bare_hub()
    provider = hub.broker.register_provider("car", ["Vehicle.Speed"])
    uplink = UplinkComponent(cfg)
    hub.add_component(uplink)
    await hub.start()
    try:
        deadline = time.monotonic() + 10
        while not (uplink.link and uplink.link.failures >= 2):
            assert time.monotonic() < deadline
            provider.publish("Vehicle.Speed", 10.0)
            await asyncio.sleep(0.05)
        assert not uplink.link.connected
        assert "authoriz" in uplink.link.last_error.lower() or "bad user" in uplink.link.last_error.lower()
        assert uplink.spool is not None and uplink.spool.depth > 0  # still collecting
    finally:
        await hub.stop()
        broker.stop()
