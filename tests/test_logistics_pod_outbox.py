"""A POD's webhooks are sent once per POD even when its ingest batch is rolled back and retried
(issue 15): PostgreSQL, a POD signed by a hub key through the ingest's own path, the fleet's
``WebhookSender`` posting to a real HTTP receiver. The first commit of the batch fails after the
POD was judged (the database going away mid-batch), the ingest retries the batch as its worker
does, and the receiver gets one ``delivery_delivered`` with a stable ``X-Anycar-Delivery``; two
fleet processes draining the outbox at once still send each row once."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from anycar.fleet import registry, webhooks
from anycar.fleet.store import Store
from anycar.http_listener import HttpListener
from anycar.logistics import board, service
from anycar.logistics.execution import PodJudge, PodOutbox
from anycar.logistics.execution_tables import deliveries, pod_outbox, pods
from anycar.logistics.orders import parse_order
from anycar.logistics.settings import service_area
from fleet_support import eventually, fleet_engine, vin
from pod_support import PodHub

pytestmark = pytest.mark.timeout(120)
DEPOT = {"lat": 60.170, "lon": 24.945}


class Receiver:
    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.listener = HttpListener(
            Starlette(routes=[Route("/hook", self.hook, methods=["POST"])]), "127.0.0.1", 0, what="receiver"
        )

    async def hook(self, request: Request) -> Response:
        self.got.append((request.headers["x-anycar-delivery"], json.loads(await request.body())))
        return Response(status_code=204)


class FailsOnce:
    """The store's ``pod`` handler as the fleet wires it, and then the database failing once,
    after the POD was judged and its rows written, so the whole batch is rolled back."""

    def __init__(self, judge: PodJudge) -> None:
        self.judge, self.failed = judge, False

    def __call__(self, conn: Any, ref: Any, doc: dict[str, Any]) -> None:
        self.judge(conn, ref, doc)
        if not self.failed:
            self.failed = True
            raise RuntimeError("server closed the connection unexpectedly")


async def test_a_retried_batch_sends_the_pod_webhook_once(tmp_path: Path) -> None:
    with fleet_engine("postgres", tmp_path) as engine:
        wire = f"PM-{uuid.uuid4().hex[:6]}"
        registry.add_vehicle(engine, vin(3), "kaiyun_pickman", tenant="acme", wire_id=wire)
        tid = registry.tenant_id(engine, "acme")
        board.add_orders(
            engine,
            tid,
            [parse_order({"id": "D-1", "lat": 60.1712, "lon": 24.9480, "weight_kg": 2.0}, service_area())],
            {},
        )
        proposal = service.propose(engine, tid, {"depot": DEPOT, "time_limit_s": 0.3})
        plan_id = int(proposal["id"])
        assert service.accept(engine, tid, plan_id)["pushed"][0]["version"] == 1
        with engine.connect() as conn:
            pin = conn.execute(select(deliveries.c.pin).where(deliveries.c.order_ref == "D-1")).scalar()

        receiver = Receiver()
        await receiver.listener.start()
        sender = webhooks.WebhookSender(engine, backoff_s=0.05)
        await sender.start()
        outbox = PodOutbox(engine, sender, interval_s=0.1)
        await outbox.start()
        try:
            webhooks.add(
                engine,
                tid,
                f"http://127.0.0.1:{receiver.listener.port}/hook",
                ["delivery_delivered", "delivery_failed", "alert"],
            )
            store = Store(engine)
            handler = FailsOnce(PodJudge())
            store.handlers["pod"] = handler
            store.after_commit.append(outbox.wake)
            hub = PodHub(store, wire)
            message = hub.accepted(hub.record("D-1", plan_id, lat=60.1712, lon=24.9480, drop_kg=2.0, pin=pin))

            # The ingest worker's loop: the commit fails, the same batch is committed again.
            with pytest.raises(RuntimeError):
                store.commit([message])
            assert handler.failed
            with engine.connect() as conn:
                assert conn.execute(select(func.count()).select_from(pod_outbox)).scalar() == 0
            assert store.commit([message]).messages == 1
            await eventually(lambda: receiver.got, 20, "the delivered webhook")
            await asyncio.sleep(0.6)  # several more outbox passes and sender retries' worth
            assert [body["type"] for _, body in receiver.got] == ["delivery_delivered"]
            ((delivery_id, body),) = receiver.got
            assert body["order"] == "D-1" and body["exceptions"] == [] and delivery_id.startswith("pod-")
            with engine.connect() as conn:
                assert conn.execute(select(func.count()).select_from(pods)).scalar() == 1
                assert all(sent is not None for sent in conn.execute(select(pod_outbox.c.sent)).scalars())

            # A hub sending the same POD again (same boot and seq) is a duplicate: nothing more.
            assert store.commit([message]).messages == 0

            # Two fleet processes draining the same unsent rows: each row is handed over once.
            await outbox.stop()
            with engine.begin() as conn:
                for i in range(20):
                    conn.execute(
                        pod_outbox.insert().values(
                            tenant_id=tid, kind="delivery_failed", item={"order": f"X-{i}"}, created=0.0
                        )
                    )
            a, b = PodOutbox(engine, sender, batch=5), PodOutbox(engine, sender, batch=5)
            while sum(await asyncio.gather(asyncio.to_thread(a.drain), asyncio.to_thread(b.drain))):
                pass
            assert a.sent + b.sent == 20
            await eventually(lambda: len(receiver.got) == 21, 20, "the 20 failed-delivery webhooks")
            await asyncio.sleep(0.3)
            ids = [d for d, body in receiver.got if body["type"] == "delivery_failed"]
            assert len(ids) == 20 and len(set(ids)) == 20
            assert sorted(body["order"] for _, body in receiver.got[1:]) == sorted(
                f"X-{i}" for i in range(20)
            )
        finally:
            await outbox.stop()
            await sender.stop()
            await receiver.listener.stop()
