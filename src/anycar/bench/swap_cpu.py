"""`anycar bench swap-cpu`: the CSMS's CPU per OCPP message, without sockets, so the figure does not
depend on how loaded the machine is.

`anycar bench swap` measures the CSMS as stations see it (TLS, WebSocket, a thousand connections),
but on a machine shared with other work its latencies say more about the machine than about the
code. This one feeds the same frames a station simulator sends (BootNotification once, then per
slot StatusNotification and MeterValues / TransactionEvent, a Heartbeat per station, and whole swap
flows Authorize → RequestBatterySwap → BatteryIn → BatteryOut) straight into each
``StationSession.route_message`` over an in-memory connection, with the real ``Csms`` on a SQLite
file and its flush once per simulated second, and counts the process's CPU time
(``time.process_time``) per message: the OCPP handling (unpack, validation of the CALL and of the
answer, key conversion, the handler, the database) but neither TLS nor WebSocket framing.
``--mode library`` runs the ``ocpp`` library as shipped (its jsonschema validator, its key
conversions, ``inspect.signature`` per call), for the before/after of ``anycar.swap.ocpp21``.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from anycar.errors import ConfigError

PER_SECOND = 316  # messages a second the 1,000-station load sends (docs/performance.md)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Wire:
    """The CSMS side of a WebSocket, in memory: what the CSMS sends is kept; a CALL it sends is
    answered at once as the simulator would (RequestBatterySwap Accepted)."""

    remote_address = ("bench", 0)

    def __init__(self) -> None:
        self.session: Any = None
        self.sent = 0
        self.calls: list[list[Any]] = []

    async def send(self, message: str) -> None:
        self.sent += 1
        if message.startswith("[2,"):  # a CALL of the CSMS's (answers are only counted)
            doc = json.loads(message)
            self.calls.append(doc)
            answer = json.dumps([3, doc[1], {"status": "Accepted"}])
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(self.session.route_message(answer))
            )

    async def close(self, *_: Any) -> None:
        return None


def _frame(action: str, payload: dict[str, Any]) -> str:
    return json.dumps([2, uuid.uuid4().hex, action, payload], separators=(",", ":"))


def _sample(evse: int, soc: float, now: float) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": _iso(now),
            "sampledValue": [
                {"value": 7000.0, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}},
                {
                    "value": round(soc + evse / 10, 2),
                    "measurand": "SoC",
                    "unitOfMeasure": {"unit": "Percent"},
                },
            ],
        }
    ]


def station_minute(slots: int, now: float, tx: dict[int, str]) -> list[tuple[str, str]]:
    """One station's periodic frames of one interval, as the simulator sends them: a Heartbeat,
    a StatusNotification per slot, and per slot MeterValues (idle) or TransactionEvent (charging)."""
    out = [("Heartbeat", _frame("Heartbeat", {}))]
    for evse in range(1, slots + 1):
        status = {"timestamp": _iso(now), "connectorStatus": "Occupied", "evseId": evse, "connectorId": 1}
        out.append(("StatusNotification", _frame("StatusNotification", status)))
    for evse in range(1, slots + 1):
        if evse in tx:
            payload = {
                "eventType": "Updated", "timestamp": _iso(now), "triggerReason": "MeterValuePeriodic", "seqNo": 1,
                "transactionInfo": {"transactionId": tx[evse], "chargingState": "Charging"},
                "evse": {"id": evse, "connectorId": 1}, "meterValue": _sample(evse, 60.0, now),
            }  # fmt: skip
            out.append(("TransactionEvent", _frame("TransactionEvent", payload)))
        else:
            payload = {"evseId": evse, "meterValue": _sample(evse, 99.0, now)}
            out.append(("MeterValues", _frame("MeterValues", payload)))
    return out


async def _measure(
    url: str, passwords: dict[str, str], tokens: list[str], rounds: int, swaps: int
) -> dict[str, Any]:
    from anycar.fleet.db import make_engine
    from anycar.swap.csms import Csms, StationSession
    from anycar.swap.ocpp21 import battery_data
    from anycar.swap.policy import load_layout

    engine = make_engine(url)
    csms = Csms(engine)
    sessions: dict[str, StationSession] = {}
    for ident in passwords:
        wire = _Wire()
        session = StationSession(csms, ident, 1, wire)  # type: ignore[arg-type]  # the in-memory connection
        wire.session = session
        csms.sessions[ident] = session
        sessions[ident] = session
    layout = load_layout(next(iter(sessions.values())).layout.name)
    boot = {
        "chargingStation": {"model": layout.model, "vendorName": layout.vendor, "firmwareVersion": "1.0.0"},
        "reason": "PowerUp",
    }
    for session in sessions.values():
        await session.route_message(_frame("BootNotification", boot))
    csms.flush()
    tx = {evse: uuid.uuid4().hex for evse in range(4, layout.slots - layout.empty_slots + 1)}
    cpu: dict[str, float] = {}
    count: dict[str, int] = {}
    since_flush = 0

    async def feed(kind: str, frame: str, session: StationSession) -> None:
        nonlocal since_flush
        started = time.process_time()
        await session.route_message(frame)
        since_flush += 1
        if since_flush >= PER_SECOND:  # the flusher's one transaction a second, at the load's rate
            csms.flush()
            since_flush = 0
        cpu[kind] = cpu.get(kind, 0.0) + time.process_time() - started
        count[kind] = count.get(kind, 0) + 1

    for round_no in range(rounds + 1):  # round 0 warms the caches and is not counted
        now = time.time()
        for session in sessions.values():
            for kind, frame in station_minute(layout.slots, now, tx):
                await feed(kind, frame, session)
        if round_no == 0:
            cpu.clear()
            count.clear()
    # whole swap flows: Authorize -> (RequestBatterySwap, answered Accepted) -> BatteryIn -> BatteryOut
    flows: list[float] = []
    idents = list(sessions)
    for i in range(swaps):
        session = sessions[idents[i % len(idents)]]
        link: _Wire = session._connection
        token = tokens[i % len(tokens)]
        started = time.process_time()
        await session.route_message(_frame("Authorize", {"idToken": {"idToken": token, "type": "Central"}}))
        for _ in range(50):  # the request_swap task: flush, insert, RequestBatterySwap, its answer
            if link.calls and link.calls[-1][2] == "RequestBatterySwap" and csms.swaps:
                break
            await asyncio.sleep(0)
        if not csms.swaps:
            raise ConfigError(f"bench swap-cpu: swap {i} was not requested ({link.calls[-1:]})")
        request_id = next(iter(csms.swaps))
        evse_free = layout.slots  # the pickman-8 layout's empty slot
        pack = csms.swaps[request_id]
        events = [
            ("BatteryIn", battery_data(evse_free, f"VEH-{i % len(tokens):04d}", 20.0, 95.0)),
            ("BatteryOut", battery_data(1 + i % 3, f"{pack.station}-P{1 + i % 3:02d}", 99.0, 95.0)),
        ]
        for event, data in events:
            payload = {"batteryData": [data], "eventType": event, "idToken": {"idToken": token, "type": "Central"}, "requestId": request_id}  # fmt: skip
            await session.route_message(_frame("BatterySwap", payload))
        await asyncio.sleep(0)
        if csms.swaps:
            raise ConfigError(f"bench swap-cpu: swap {i} did not complete")
        flows.append(time.process_time() - started)
        _put_back(engine, pack.station, 1 + i % 3, evse_free, f"VEH-{i % len(tokens):04d}", pack.vehicle_id)
    engine.dispose()
    total_cpu, total_n = sum(cpu.values()), sum(count.values())
    return {
        "messages": total_n,
        "cpu_us_per_message": round(total_cpu / total_n * 1e6, 1),
        "by_kind_us": {k: round(cpu[k] / count[k] * 1e6, 1) for k in sorted(cpu)},
        "by_kind_messages": dict(sorted(count.items())),
        "swap_flows": len(flows),
        "swap_flow_cpu_ms_mean": round(sum(flows) / len(flows) * 1000, 3) if flows else None,
        "swap_flow_cpu_ms_max": round(max(flows) * 1000, 3) if flows else None,
    }


def _put_back(
    engine: Any, station: str, out_evse: int, in_evse: int, vehicle_pack: str, vehicle_id: int
) -> None:
    """Undo one swap in the tables, so the next flow at this station finds the same stock."""
    from sqlalchemy import update

    from anycar.swap import tables as t

    p = t.packs.c
    with engine.begin() as conn:
        conn.execute(
            update(t.packs).where(p.serial == f"{station}-P{out_evse:02d}")
            .values(state="ready", soc=99.0, station_id=station, evse_id=out_evse, vehicle_id=None)
        )  # fmt: skip
        conn.execute(
            update(t.packs).where(p.serial == vehicle_pack)
            .values(state="in_vehicle", soc=20.0, station_id=None, evse_id=None, vehicle_id=vehicle_id)
        )  # fmt: skip


def run(
    *,
    stations: int = 100,
    rounds: int = 3,
    swaps: int = 30,
    mode: str = "fast",
    profile: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """CPU per message of the CSMS for ``stations`` stations over ``rounds`` intervals, and per swap flow."""
    from anycar.bench.swap import _populate
    from anycar.swap import ocpp21

    if stations < 1 or rounds < 1 or swaps < 0:
        raise ConfigError("--stations and --rounds at least 1, --swaps at least 0")
    ocpp21.set_mode(mode)
    try:
        with tempfile.TemporaryDirectory(prefix="anycar-bench-swap-cpu-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'fleet.sqlite3'}"
            passwords, tokens = _populate(url, stations, max(1, swaps), "pickman-8")
            coro = _measure(url, passwords, tokens, rounds, swaps)
            result = profile(coro) if profile else asyncio.run(coro)
    finally:
        ocpp21.set_mode("fast")  # the process's default again
    result.update(
        benchmark="swap-cpu", stations=stations, rounds=rounds, mode=mode,
        command=f"anycar bench swap-cpu --stations {stations} --rounds {rounds} --swaps {swaps} --mode {mode} --json",
    )  # fmt: skip
    return result
