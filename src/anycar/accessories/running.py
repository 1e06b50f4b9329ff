"""What a running accessory sends and receives: its publishes, its own actuation and
subscription requests, commands forwarded to it, and the watch on its heartbeats.

Functions of the manager's state, kept apart from the lifecycle in ``manager.py``.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from anycar.accessories.errors import ProtocolError
from anycar.accessories.protocol import error_message
from anycar.accessories.session import Session
from anycar.broker import ActuationRejected, ActuationRequest
from anycar.errors import AnycarError
from anycar.policy import ux
from anycar.policy.errors import Restricted
from anycar.supervisor import log_task_failure

if TYPE_CHECKING:
    from anycar.accessories.manager import AccessoryManager, Fitted


def seen(mgr: AccessoryManager, session: Session) -> None:
    session.last_seen = time.monotonic()
    if session.instance is None:
        return
    fitted = mgr.fitted.get(session.instance)
    if fitted is not None and fitted.session is session and fitted.silent:
        fitted.silent = False
        mgr.set_status(fitted)
        mgr.events.log("available", fitted.instance, f"{fitted.instance} is heard again")


async def handle(mgr: AccessoryManager, session: Session, msg: dict[str, Any]) -> None:
    kind = msg["type"]
    if kind == "heartbeat":
        return
    if kind == "command_result":
        fut = session.pending.get(str(msg["id"]))
        if fut is not None and not fut.done():
            fut.set_result((bool(msg["ok"]), str(msg.get("reason", ""))))
        return
    if kind == "update_result":
        upd = session.updates.get(str(msg["id"]))
        if upd is not None and not upd.done():
            upd.set_result(msg)
        return
    if kind == "hello":
        raise ProtocolError("hello was already received", field="type")
    if kind == "bye":
        await session.close("bye")
        return
    fitted = mgr.fitted.get(session.instance) if session.instance else None
    if fitted is None or fitted.session is not session:
        raise ProtocolError(
            f"{kind} needs a commissioned accessory; this one awaits commissioning", field="type"
        )
    if kind == "publish":
        await publish(mgr, session, fitted, msg)
    elif kind == "actuate":
        session.spawn(actuate_for(mgr, session, fitted, msg))
    elif kind == "subscribe":
        await subscribe(mgr, session, fitted, msg)


async def publish(mgr: AccessoryManager, session: Session, fitted: Fitted, msg: dict[str, Any]) -> None:
    items: list[tuple[str, Any]] = []
    errors: list[tuple[str, AnycarError]] = []
    restrictions = fitted.load.restrictions if fitted.load else frozenset()
    for name, value in msg["values"].items():
        path = fitted.binding.paths.get(name)
        if path is None:
            errors.append((name, ProtocolError(f"{fitted.instance} has no signal named {name!r}")))
            continue
        why = ux.violation(restrictions, name, value, mgr.policy.driving.max_string_length)
        if why is not None:
            mgr.policy.refuse(fitted.instance, f"{fitted.instance}.{name} refused: {why}", path=path)
            errors.append((name, Restricted(why, path=path)))
            continue
        items.append((path, value))
    if items:
        for path, exc in fitted.provider.publish_many(items).items():
            errors.append((fitted.by_path.get(path, path), exc))
    if errors:
        name, first = errors[0]
        out = error_message(first, msg.get("id"))
        out["field"] = f"values.{name}"
        if len(errors) > 1:
            out["message"] += f" (and {len(errors) - 1} more refused: {', '.join(n for n, _ in errors[1:])})"
        await session.send(out)
    elif "id" in msg:
        await session.send({"type": "result", "id": msg["id"], "ok": True})


async def actuate_for(mgr: AccessoryManager, session: Session, fitted: Fitted, msg: dict[str, Any]) -> None:
    path, msg_id = msg["path"], msg["id"]
    try:
        mgr.broker.catalog.get(path)
        mgr.policy.check_actuate(fitted.instance, path)
        if fitted.load is not None and fitted.load.shed_reason:
            raise Restricted(f"{fitted.instance} is shed ({fitted.load.shed_reason})", path=path)
        result = await mgr.broker.actuate(path, msg["value"], requester=f"accessory:{fitted.instance}")
    except AnycarError as exc:
        await session.send(error_message(exc, msg_id))
        return
    await session.send(
        {
            "type": "result",
            "id": msg_id,
            "ok": result.ok,
            "status": str(result.status),
            "reason": result.reason,
        }
    )


async def subscribe(mgr: AccessoryManager, session: Session, fitted: Fitted, msg: dict[str, Any]) -> None:
    msg_id = str(msg["id"])
    try:
        for sig in mgr.broker.catalog.resolve_all(msg["paths"]):
            mgr.policy.check_read(fitted.instance, sig.path)
        sub = mgr.broker.subscribe(
            msg["paths"], name=f"accessory:{fitted.instance}:{msg_id}", queue_size=1000
        )
    except AnycarError as exc:
        await session.send(error_message(exc, msg["id"]))
        return
    old = session.subscriptions.pop(msg_id, None)
    if old is not None:
        old[0].close()
        old[1].cancel()
    task = asyncio.create_task(forward(mgr, session, msg["id"], sub), name=f"accessory-forward-{msg_id}")
    task.add_done_callback(log_task_failure)
    session.subscriptions[msg_id] = (sub, task)
    await session.send({"type": "result", "id": msg["id"], "ok": True})


async def forward(mgr: AccessoryManager, session: Session, msg_id: Any, sub: Any) -> None:
    async for batch in sub:
        ok = await session.send(
            {
                "type": "values",
                "id": msg_id,
                "values": [{"path": dp.path, "value": dp.value, "ts": dp.timestamp} for dp in batch],
            }
        )
        if not ok:
            break


# -- actuation requests to an accessory -------------------------------------------------
def actuator_for(mgr: AccessoryManager, instance: str) -> Any:
    async def on_actuate(req: ActuationRequest) -> None:
        fitted = mgr.fitted.get(instance)
        if fitted is None:
            raise ConnectionError(f"{instance} is not fitted")
        name = fitted.by_path[req.path]
        load = fitted.load
        if load is not None and load.shed_reason and not stands_down(fitted, name, req.value):
            mgr.policy.refuse(instance, f"{req.path} refused: {instance} is shed ({load.shed_reason})")
            raise ActuationRejected(f"{instance} is shed: {load.shed_reason}")
        why = ux.violation(
            load.restrictions if load else frozenset(),
            name,
            req.value,
            mgr.policy.driving.max_string_length,
        )
        if why is not None:
            mgr.policy.refuse(instance, f"{req.path}={req.value!r} refused: {why}", path=req.path)
            raise ActuationRejected(why)
        session = fitted.session
        if session is None or session.closed or fitted.silent:
            raise ConnectionError(f"{instance} is not connected")
        cid = session.next_id()
        fut: asyncio.Future[tuple[bool, str]] = asyncio.get_running_loop().create_future()
        session.pending[cid] = fut
        try:
            sent = await session.send(
                {"type": "command", "id": cid, "name": name, "path": req.path, "value": req.value}
            )
            if not sent:
                raise ConnectionError(f"{instance} went away")
            ok, reason = await fut
        finally:
            session.pending.pop(cid, None)
        if not ok:
            raise ActuationRejected(reason or f"{instance} refused")

    return on_actuate


def stands_down(fitted: Fitted, name: str, value: Any) -> bool:
    """Whether this command only stops the accessory's work (its trait's ``working`` signal to
    false or 0: a cooler off, a light off): what shedding asks of it anyway, so a shed accessory
    takes it, and an owner's "turn it off" is never refused for want of power."""
    if not any(t.working == name for t in fitted.manifest.traits):
        return False
    return value is False or (not isinstance(value, bool) and isinstance(value, (int, float)) and value == 0)


async def watch_heartbeats(mgr: AccessoryManager) -> None:
    step = max(0.02, min(mgr.limits.heartbeat_interval_s / 2, 0.5))
    while True:
        await asyncio.sleep(step)
        now = time.monotonic()
        for fitted in list(mgr.fitted.values()):
            session = fitted.session
            if session is None or fitted.silent:
                continue
            quiet = now - session.last_seen
            if quiet > mgr.limits.heartbeat_timeout_s:
                fitted.silent = True
                fitted.provider.mark_unavailable()
                mgr.set_status(fitted)
                mgr.events.log(
                    "unavailable",
                    fitted.instance,
                    f"{fitted.instance} silent for {quiet:.1f} s; marked unavailable",
                )
