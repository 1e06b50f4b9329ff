"""Webhooks against a real HTTP receiver on a free port: the HMAC-SHA256 signature of the exact
body, retries with backoff on 5xx (the same delivery id), no retry on a 4xx, a slow receiver
that never blocks ``submit`` (bounded queue, the oldest dropped), URLs refused for SSRF, and an
alert from a committed batch arriving signed."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import socket
import ssl
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from anycar.fleet import registry, webhooks
from anycar.fleet.domain import DomainPipeline
from anycar.fleet.store import Accepted, Store
from anycar.http_listener import HttpListener
from fleet_domain_support import Drive
from fleet_support import eventually, fleet_engine, vin


class Receiver:
    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        self.got: list[tuple[dict, bytes]] = []
        self.statuses: list[int] = []
        self.delay_s = 0.0
        self.listener = HttpListener(
            Starlette(routes=[Route("/hook", self.hook, methods=["POST"])]),
            "127.0.0.1",
            0,
            what="receiver",
            tls_cert=tls[0] if tls else None,
            tls_key=tls[1] if tls else None,
            force_exit=True,
        )

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        self.got.append((dict(request.headers), body))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return Response(status_code=self.statuses.pop(0) if self.statuses else 204)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.port}/hook"


@pytest.fixture
async def receiver():
    r = Receiver()
    await r.listener.start()
    try:
        yield r
    finally:
        await r.listener.stop()


def test_urls_refused_for_ssrf() -> None:
    for url, message in (
        ("file:///etc/passwd", "scheme 'file' refused"),
        ("gopher://127.0.0.1:70/x", "scheme 'gopher' refused"),
        ("javascript:alert(1)", "scheme 'javascript' refused"),
        ("ftp://example.com/", "scheme 'ftp' refused"),
        ("http://user:pw@example.com/", "credentials in the URL refused"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 refused"),
        ("http://[fe80::1]/", "fe80::1 refused"),
        ("http://0.0.0.0/", "0.0.0.0 refused"),
        ("http://[::ffff:169.254.169.254]/", "(= 169.254.169.254) refused"),
        ("http:///nohost", "no host"),
        ("http://example.com:99999/", "url:"),
        ("https://" + "a" * 2050, "1-2048 characters"),
        (None, "a string"),
    ):
        with pytest.raises(webhooks.WebhookError) as info:
            webhooks.check_url(url)
        assert message in str(info.value), (url, str(info.value))
    assert webhooks.check_url("https://hooks.example.com/anycar") == "https://hooks.example.com/anycar"
    assert webhooks.check_url("http://127.0.0.1:8080/x")  # a receiver on the operator's own host


async def test_signed_retried_and_never_blocking(receiver: Receiver, tmp_path: Path) -> None:
    with fleet_engine("sqlite", tmp_path) as engine:
        tid = registry.tenant_id(engine, "acme", create=True)
        hook = webhooks.add(engine, tid, receiver.url)
        assert len(hook["secret"]) >= 40 and "secret" not in webhooks.listing(engine, tid)[0]
        sender = webhooks.WebhookSender(
            engine, attempts=4, backoff_s=0.05, timeout_s=5, senders=1, queue_max=5
        )
        await sender.start()
        try:
            # 500, 503, then 204: delivered on the third attempt, the same delivery id each time
            receiver.statuses = [500, 503]
            sender.submit(
                tid, "alert", {"tenant_id": tid, "alert": {"id": 7, "type": "low_soc", "message": "ü"}}
            )
            await eventually(lambda: sender.stats.delivered == 1, 20, "a delivery after two retries")
            assert len(receiver.got) == 3 and sender.stats.retries == 2
            ids = {h["x-anycar-delivery"] for h, _ in receiver.got}
            assert len(ids) == 1
            headers, body = receiver.got[-1]
            expected = "sha256=" + hmac.new(hook["secret"].encode(), body, hashlib.sha256).hexdigest()
            assert headers["x-anycar-signature"] == expected
            doc = json.loads(body)
            assert doc["type"] == "alert" and doc["alert"] == {"id": 7, "type": "low_soc", "message": "ü"}
            assert "tenant_id" not in doc
            # a 4xx is final: no retry
            receiver.got.clear()
            receiver.statuses = [410]
            sender.submit(tid, "alert", {"tenant_id": tid, "id": 8})
            await eventually(lambda: sender.stats.failed == 1, 20, "a final 410")
            assert len(receiver.got) == 1
            # a geofence event is not sent to a webhook that only wants alerts
            only_alerts = webhooks.add(engine, tid, receiver.url, ["alert"])
            sender.forget(tid)
            receiver.got.clear()
            sender.submit(tid, "geofence", {"tenant_id": tid, "kind": "enter"})
            await eventually(lambda: len(receiver.got) == 1, 20, "one geofence delivery")
            assert only_alerts["events"] == ["alert"]
            webhooks.remove(engine, tid, only_alerts["id"])
            sender.forget(tid)
            # a slow receiver: submit never waits, the queue stays bounded (the oldest dropped)
            receiver.got.clear()
            receiver.delay_s = 2.0
            started = time.perf_counter()
            for i in range(50):
                sender.submit(tid, "alert", {"tenant_id": tid, "id": 100 + i})
            took = time.perf_counter() - started
            assert took < 0.5, took
            await eventually(lambda: sender.stats.dropped >= 40, 10, "drops")
        finally:
            receiver.delay_s = 0.0
            await sender.stop()
        (row,) = webhooks.listing(engine, tid)
        assert row["delivered"] >= 1 and row["failed"] >= 1 and row["last_status"]


async def test_an_alert_from_a_committed_batch_is_delivered(receiver: Receiver, tmp_path: Path) -> None:
    with fleet_engine("postgres", tmp_path) as engine:
        store = Store(engine)
        sender = webhooks.WebhookSender(engine, backoff_s=0.05)
        domain = DomainPipeline(store, notifier=sender)
        creds = registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme")
        ref = store.vehicle(creds.vehicle)
        assert ref is not None
        hook = webhooks.add(engine, ref.tenant_id, receiver.url)
        await sender.start()
        await domain.start()
        try:
            drive = Drive(creds.vehicle, soc=15.5, wh_per_km=300).leg(200, 36)
            for doc in drive.batches():
                await asyncio.to_thread(store.commit, [Accepted(ref, doc)])
            await eventually(lambda: receiver.got, 30, "the low SoC alert at the receiver")
        finally:
            await domain.stop()
            await sender.stop()
        headers, body = receiver.got[0]
        assert headers["x-anycar-signature"] == webhooks.sign(hook["secret"], body)
        doc = json.loads(body)
        assert doc["type"] == "alert" and doc["alert"]["type"] == "low_soc"
        assert doc["alert"]["vehicle"] == creds.vehicle and doc["alert"]["data"]["soc"] < 15
        assert "tenant_id" not in doc["alert"] and "vehicle_id" not in doc["alert"]
        assert domain.status()["errors"] == 0


# ---- DNS pinning: a resolver of the test's own (a hosts mapping whose answers change) --------------


class Hosts:
    """A name server the test controls: each name answers its list of answers in turn (the last
    one again and again), and every question is counted."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        turns = self.answers.get(host)
        if not turns:
            raise OSError(f"[Errno -2] Name or service not known: {host}")
        return turns.pop(0) if len(turns) > 1 else turns[0]


async def _deliver_one(sender: webhooks.WebhookSender, tid: int, n: int) -> None:
    done = sender.stats.delivered + sender.stats.failed
    sender.submit(tid, "alert", {"tenant_id": tid, "id": n})
    await eventually(lambda: sender.stats.delivered + sender.stats.failed > done, 20, f"delivery {n}")


async def test_a_rebinding_name_is_resolved_once_checked_and_connected_to_as_checked(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the first answer is the receiver, every later one the metadata service: a client that
    # resolved again to connect would go there (or, as the system knows no rebind.test, nowhere)
    hosts = Hosts(
        {
            "rebind.test": [["127.0.0.1"], ["169.254.169.254"]],
            "mixed.test": [["127.0.0.1", "::ffff:169.254.169.254"]],
        }
    )
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a proxy would resolve the name itself: ignored
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    with fleet_engine("sqlite", tmp_path) as engine:
        tid = registry.tenant_id(engine, "acme", create=True)
        port = receiver.listener.port
        hook = webhooks.add(engine, tid, f"http://rebind.test:{port}/hook", ["alert"])
        sender = webhooks.WebhookSender(engine, attempts=1, senders=1, resolve=hosts)
        await sender.start()
        try:
            await _deliver_one(sender, tid, 1)
            assert sender.stats.delivered == 1, sender.stats
            assert hosts.asked == ["rebind.test"]  # one lookup for the check and the connect
            ((headers, body),) = receiver.got
            assert headers["host"] == f"rebind.test:{port}" and json.loads(body)["id"] == 1
            # the next delivery: the name now answers the metadata service, refused before any connect
            await _deliver_one(sender, tid, 2)
            assert sender.stats.failed == 1 and len(receiver.got) == 1
            assert "169.254.169.254 refused" in sender.stats.last_error, sender.stats.last_error
            assert hosts.asked == ["rebind.test", "rebind.test"]
            # one refused address among several refuses the delivery
            webhooks.remove(engine, tid, hook["id"])
            webhooks.add(engine, tid, f"http://mixed.test:{port}/hook", ["alert"])
            sender.forget(tid)
            await _deliver_one(sender, tid, 3)
            assert (
                "::ffff:a9fe:a9fe (= 169.254.169.254) refused" in sender.stats.last_error
                and len(receiver.got) == 1
            )
            # a name that does not resolve is one clear refusal
            webhooks.add(engine, tid, f"http://nowhere.test:{port}/hook", ["alert"])
            sender.forget(tid)
            sender.stats.last_error = ""
            await _deliver_one(sender, tid, 4)
            await eventually(lambda: "nowhere.test" in sender.stats.last_error, 10, "the unresolved name")
            assert "does not resolve" in sender.stats.last_error
        finally:
            await sender.stop()
        rows = {r["url"].split("/")[2].split(":")[0]: r for r in webhooks.listing(engine, tid)}
        assert rows["mixed.test"]["last_status"].startswith(
            "refused: url: address ::ffff:a9fe:a9fe (= 169.254"
        )


def _certificate(folder: Path, name: str) -> tuple[ssl.SSLContext, tuple[str, str]]:
    """A CA (trusted by the returned client context) and a server certificate for DNS ``name``."""
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhook test CA")])

    def build(subject: x509.Name, public: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(hours=1))
        )  # fmt: skip

    ca = build(ca_name, ca_key.public_key()).add_extension(
        x509.BasicConstraints(ca=True, path_length=None), True
    )
    ca_cert = ca.sign(ca_key, hashes.SHA256())
    leaf = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), key.public_key())
    leaf_cert = leaf.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False).sign(
        ca_key, hashes.SHA256()
    )
    (folder / "server.pem").write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    trust = ssl.create_default_context(cadata=ca_cert.public_bytes(serialization.Encoding.PEM).decode())
    return trust, (str(folder / "server.pem"), str(folder / "server.key"))


async def test_https_to_a_pinned_address_verifies_the_names_certificate(tmp_path: Path) -> None:
    trust, files = _certificate(tmp_path, "hooks.example.test")
    receiver = Receiver(tls=files)
    await receiver.listener.start()
    hosts = Hosts({"hooks.example.test": [["127.0.0.1"]], "impostor.test": [["127.0.0.1"]]})
    try:
        with fleet_engine("sqlite", tmp_path) as engine:
            tid = registry.tenant_id(engine, "acme", create=True)
            port = receiver.listener.port
            webhooks.add(engine, tid, f"https://hooks.example.test:{port}/hook", ["alert"])
            sender = webhooks.WebhookSender(engine, attempts=1, senders=1, resolve=hosts, verify=trust)
            await sender.start()
            try:
                await _deliver_one(sender, tid, 1)  # SNI and the certificate check used the name
                assert sender.stats.delivered == 1, sender.stats
                assert receiver.got[0][0]["host"] == f"hooks.example.test:{port}"
                # the same address under another name: its certificate does not match, nothing sent
                webhooks.add(engine, tid, f"https://impostor.test:{port}/hook", ["alert"])
                sender.forget(tid)
                await _deliver_one(sender, tid, 2)
                await eventually(lambda: sender.stats.failed == 1, 10, "the impostor refused")
                assert (
                    "CERTIFICATE_VERIFY_FAILED" in sender.stats.last_error
                    or "certificate" in sender.stats.last_error
                )
                assert len(receiver.got) == 2  # the genuine name got the second alert too
            finally:
                await sender.stop()
    finally:
        await receiver.listener.stop()


def test_the_pinning_uses_only_public_httpx_and_httpcore_interfaces() -> None:
    """No reach into another object's private attributes (``transport._pool`` was one): an
    httpx release that renames its inside cannot silently undo the DNS pinning."""
    import ast
    import inspect

    from anycar.fleet import webhooks as module

    tree = ast.parse(inspect.getsource(module))
    private = [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
        and node.attr != "_mapping"  # SQLAlchemy's Row._mapping is public, documented API
    ]
    assert private == []
    assert issubclass(module.PinnedTransport, httpx.AsyncBaseTransport)


async def test_a_refused_connect_to_the_pinned_address_is_httpx_s_connect_error() -> None:
    """httpcore's errors come out as httpx's (the sender retries on ``httpx.HTTPError``)."""
    from anycar.fleet.webhooks import _PINNED, pinned_transport

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _PINNED.set(("hooks.example", ["127.0.0.1"]))
    async with httpx.AsyncClient(transport=pinned_transport(), trust_env=False) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(f"http://hooks.example:{port}/hook", content=b"{}")
    _PINNED.set(("other.example", ["127.0.0.1"]))  # a name never checked is never connected to
    async with httpx.AsyncClient(transport=pinned_transport(), trust_env=False) as client:
        with pytest.raises(httpx.ConnectError, match="not checked"):
            await client.post(f"http://hooks.example:{port}/hook", content=b"{}")
