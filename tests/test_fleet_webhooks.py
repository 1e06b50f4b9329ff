"""Webhooks against a real HTTP receiver on a free port: the HMAC-SHA256 signature of the exact
body, retries with backoff on 5xx (the same delivery id), no retry on a 4xx, a slow receiver
that never blocks ``submit`` (bounded queue, the oldest dropped), URLs refused for SSRF, and an
alert from a committed batch arriving signed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
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
    def __init__(self) -> None:
        self.got: list[tuple[dict, bytes]] = []
        self.statuses: list[int] = []
        self.delay_s = 0.0
        self.listener = HttpListener(
            Starlette(routes=[Route("/hook", self.hook, methods=["POST"])]),
            "127.0.0.1",
            0,
            what="receiver",
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
