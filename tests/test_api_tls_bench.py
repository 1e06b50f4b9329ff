"""TLS when a certificate is configured (wss://, https://), and the API benchmark as a command."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect

from anycar.bench import api as bench_api
from apis_support import hub_config, running_hub


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "anycar-hub")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "hub.pem", folder / "hub.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_viss_and_rest_over_tls(tmp_path) -> None:
    cert, key = self_signed(tmp_path)
    cfg = hub_config()
    cfg.tls_cert, cfg.tls_key = cert, key
    async with running_hub(cfg) as hub:
        hub.broker.register_provider("test", ["Vehicle.Speed"]).publish("Vehicle.Speed", 4.0)
        assert hub.endpoints()["viss"].startswith("wss://") and hub.endpoints()["grpc"].startswith("grpcs://")
        trust = ssl.create_default_context(cafile=str(cert))
        async with connect(f"wss://127.0.0.1:{hub.viss_ws.port}", ssl=trust, subprotocols=["VISSv2"]) as ws:
            await ws.send(json.dumps({"action": "get", "path": "Vehicle.Speed", "requestId": "1"}))
            assert json.loads(await ws.recv())["data"]["dp"]["value"] == "4.0"
        async with httpx.AsyncClient(verify=trust) as http:
            reply = await http.get(f"https://127.0.0.1:{hub.http.port}/Vehicle/Speed")
            assert reply.json()["data"]["dp"]["value"] == "4.0"


def test_bench_api_runs_both_transports_in_separate_processes() -> None:
    """Not a timing test: the command works end to end and delivers what was published."""
    result = bench_api.run(seconds=0.6, rate=2_000, batch=20, signals=20, warmup=0.1)
    for transport in ("grpc", "viss"):
        run = next(r for r in result["runs"] if r["transport"] == transport)
        assert run["published"] > 0 and run["publish_errors"] == 0
        assert run["received"] > 0 and result[transport]["signals_per_s"] > 0
        assert set(result[transport]) == {"signals_per_s", "p50_ms", "p99_ms"}
