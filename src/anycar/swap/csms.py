"""The CSMS: OCPP 2.1 over WebSocket (subprotocol ``ocpp2.1``) for battery-swap stations.

A fleet component (``start()`` / ``stop()``). Who a station is gets settled in the HTTP upgrade,
before a single OCPP frame is read: its identity is the URL's last path segment; an unknown one
is answered 404; security profile 2 needs TLS and HTTP basic auth with the station's minted
password (``user == identity``), profile 3 a TLS client certificate from the CSMS's CA whose
common name is the identity; anything else is 401. Frames are bounded (64 KiB) and validated
by the ``ocpp`` library against OCA's schemas (``anycar.swap.ocpp21`` fixes the CALLERROR codes
and BatteryData's field names); each station is one :class:`StationSession`.

Station → CSMS: BootNotification, Heartbeat, StatusNotification (per slot), Authorize,
TransactionEvent and MeterValues (each pack's charging), BatterySwap, FirmwareStatusNotification,
ReservationStatusUpdate. CSMS → station: RequestBatterySwap (``request_swap``), ReserveNow /
CancelReservation, SetChargingProfile (``set_grid_limit``, ``send_plan``), GetVariables /
SetVariables, Reset.

A reservation for a station that is offline is held (``queued``) and sent when the station
connects (after its BootNotification, or its first message when it reconnects without a reboot);
its outcome is recorded (the station's answer, or ``expired`` when its expiry passed first: it is
then never sent); a cancellation while the station is offline is held the same way.

Slot states and meter values arrive in floods (a station reports every slot every minute); they
are kept in memory and written by a flusher once a second, one transaction for all stations, so a
thousand stations cost a handful of commits per second. Swaps are written when they happen.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.routing import after, on
from ocpp.v21 import call, call_result
from ocpp.v21.enums import Action
from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Engine
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from anycar.swap import inventory
from anycar.swap import tables as t
from anycar.swap.ocpp21 import MAX_FRAME, SUBPROTOCOL, Endpoint, read_battery
from anycar.swap.policy import Policy, load_layout, load_policy
from anycar.swap.registry import check_password, station_auth

log = logging.getLogger("anycar.swap.csms")
HELD = ("queued", "cancel_queued")  # reservation messages the CSMS holds for an offline station
OPEN_RESERVATIONS = ("queued", "pending", "active", "cancel_queued")
HOLDS_A_PACK = ("queued", "pending", "active")  # a pack is set aside for the vehicle (or will be)
TOKEN_TYPE = "Central"  # nosec B105 # an OCPP IdTokenEnumType value, not a secret


def now_iso(ts: float | None = None) -> str:
    return (
        datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def parse_iso(value: str) -> float | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


_SLOT_STATUS = (
    update(t.slots)
    .where(t.slots.c.station_id == bindparam("b_station"), t.slots.c.evse_id == bindparam("b_evse"))
    .values(status=bindparam("b_status"), updated=bindparam("b_now"))
)


class SwapError(RuntimeError):
    """A swap that cannot be started; ``reason`` is stable (offline, unknown_token, no_ready_pack, ...)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass
class SwapResult:
    id: int
    state: str  # done disputed timeout aborted rejected
    reason: str | None = None
    pack_old: str | None = None
    pack_new: str | None = None
    energy_kwh: float | None = None
    amount: float | None = None
    latency_ms: float | None = None  # CSMS time of the flow, the station's mechanical time left out


@dataclass
class _Pending:
    """One swap between RequestBatterySwap and its last BatterySwap event, in memory."""

    id: int
    station: str
    vehicle_id: int
    tenant_id: int
    token: str
    reservation_id: int | None
    requested: float
    done: asyncio.Future[SwapResult]
    events: dict[str, float] = field(default_factory=dict)  # event type -> when it was recorded
    busy_ms: float = 0.0  # time the CSMS spent on this swap's messages
    mechanical_from: float | None = None


class StationSession(Endpoint):
    """One connected station: the handlers of what it sends, and calls to it."""

    def __init__(self, csms: Csms, ident: str, tenant_id: int, connection: ServerConnection) -> None:
        super().__init__(ident, connection, response_timeout=csms.call_timeout, handled=csms.handled)
        self.csms = csms
        self.tenant_id = tenant_id
        self.connection = connection
        row = csms.station_row(ident)
        self.layout = csms.layout_of(row.layout)
        # the station may be sent CALLs: it booted on this connection, or (reconnected without a
        # reboot) it sent something else first, which it may only do once it was accepted
        self.accepted = False

    # station -> CSMS -----------------------------------------------------------------------
    @on(Action.boot_notification)
    def on_boot(
        self, charging_station: dict[str, Any], reason: str, **_: Any
    ) -> call_result.BootNotification:
        self.csms.booted(self.id, reason, charging_station)
        return call_result.BootNotification(
            current_time=now_iso(self.csms.clock()), interval=self.csms.policy.heartbeat_s, status="Accepted"
        )

    @after(Action.boot_notification)
    def after_boot(self, **_: Any) -> None:
        self._accepted()
        # a station that booted may have lost its charging profiles: the grid limit and the
        # plan the CSMS last sent it go again (a station that kept them just accepts them again)
        self.csms.spawn(self.csms.restore_profiles(self.id))

    async def _handle_call(self, msg: Any) -> Any:
        result = await super()._handle_call(msg)
        if not self.accepted and msg.action != Action.boot_notification:
            self._accepted()
        return result

    def _accepted(self) -> None:
        """From now on the station takes CALLs: send what the CSMS held for it while it was away."""
        self.accepted = True
        self.csms.spawn(self.csms.deliver_held(self.id))

    @on(Action.reservation_status_update)
    def on_reservation_status(
        self, reservation_id: int, reservation_update_status: str, **_: Any
    ) -> call_result.ReservationStatusUpdate:
        self.csms.reservation_ended(self.id, reservation_id, reservation_update_status)
        return call_result.ReservationStatusUpdate()

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        self.csms.seen(self.id)
        return call_result.Heartbeat(current_time=now_iso(self.csms.clock()))

    @on(Action.status_notification)
    def on_status(
        self, timestamp: str, connector_status: str, evse_id: int, **_: Any
    ) -> call_result.StatusNotification:
        self.csms.check_clock(self.id, timestamp)
        self.csms.pending_status[(self.id, evse_id)] = connector_status
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_token: dict[str, Any], **_: Any) -> call_result.Authorize:
        status = self.csms.authorize(self.id, str(id_token.get("id_token", "")))
        return call_result.Authorize(id_token_info={"status": status})

    @after(Action.authorize)
    def after_authorize(self, id_token: dict[str, Any], **_: Any) -> None:
        token = str(id_token.get("id_token", ""))
        if self.csms.last_authorize.pop((self.id, token), None) == "Accepted":
            self.csms.spawn(self.csms.request_swap(self.id, token))

    @on(Action.transaction_event)
    def on_transaction(
        self,
        timestamp: str,
        evse: dict[str, Any] | None = None,
        meter_value: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> call_result.TransactionEvent:
        self.csms.check_clock(self.id, timestamp)
        if evse and meter_value:
            self._meter(int(evse["id"]), meter_value)
        return call_result.TransactionEvent()

    @on(Action.meter_values)
    def on_meter_values(
        self, evse_id: int, meter_value: list[dict[str, Any]], **_: Any
    ) -> call_result.MeterValues:
        self._meter(evse_id, meter_value)
        return call_result.MeterValues()

    def _meter(self, evse_id: int, meter_value: list[dict[str, Any]]) -> None:
        for sample in meter_value:
            self.csms.check_clock(self.id, str(sample.get("timestamp", "")))
            for value in sample.get("sampled_value", []):
                if value.get("measurand") == "SoC":
                    self.csms.pending_soc.setdefault(self.id, {})[evse_id] = float(value["value"])

    @on(Action.battery_swap)
    def on_battery_swap(
        self,
        battery_data: list[dict[str, Any]],
        event_type: str,
        id_token: dict[str, Any],
        request_id: int,
        **_: Any,
    ) -> call_result.BatterySwap:
        self.csms.battery_swap(self.id, event_type, request_id, [read_battery(b) for b in battery_data])
        return call_result.BatterySwap()

    @on(Action.firmware_status_notification)
    def on_firmware(self, status: str, **_: Any) -> call_result.FirmwareStatusNotification:
        self.csms.update_station(self.id, firmware_status=status)
        return call_result.FirmwareStatusNotification()


class Csms:
    """The OCPP 2.1 server of the fleet cloud (a component: ``start()`` / ``stop()``)."""

    name = "ocpp"

    def __init__(
        self,
        engine: Engine,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        policy: Policy | None = None,
        call_timeout: float = 30.0,
        flush_interval: float = 1.0,
        migrate: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.migrate = migrate
        # the room's "now" (FleetConfig.clock): what a station's day, a swap's and a
        # reservation's stamps, expiries and the skew of a station's clock are measured on
        self.clock = clock
        self.host, self._port = host, port
        self.ssl_context = ssl_context
        self.policy = policy or load_policy()
        self.call_timeout = call_timeout
        self.flush_interval = flush_interval
        self.sessions: dict[str, StationSession] = {}
        self.pending_status: dict[tuple[str, int], str] = {}
        self.pending_soc: dict[str, dict[int, float]] = {}
        self.pending_seen: set[str] = set()
        self.last_authorize: dict[tuple[str, str], str] = {}
        self.swaps: dict[int, _Pending] = {}
        self.skew: dict[str, float] = {}
        self.stats = {"connections": 0, "refused": 0, "messages": 0, "flushes": 0}
        self.handled: list[float] | None = None  # set to a list to record each CALL's handling time (bench)
        self.flows_ms: list[float] | None = None  # the same for each completed swap's CSMS time (bench)
        self._server: Server | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._rows: dict[str, Any] = {}
        self._layouts: dict[str, Any] = {}
        self._delivering: dict[str, asyncio.Lock] = {}
        self.sweep_interval = 10.0  # seconds between looks at held and expired reservations
        # the charging plan last sent to each station and its answers, and the demand it was made
        # for: sent again under a new grid limit (in memory: a restarted CSMS plans afresh)
        self.plans: dict[str, tuple[Any, dict[int, str]]] = {}
        self._plan_demand: dict[str, list[float] | None] = {}
        self.limits: dict[str, float] = {}  # the grid limit last accepted by each station (kW)

    # component -------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.migrate:  # the swap tables, after the fleet's (run by anycar fleet serve before)
            from anycar.swap.migrate import upgrade

            upgrade(self.engine)
        self._server = await serve(
            self._serve,
            self.host,
            self._port,
            ssl=self.ssl_context,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            process_request=self._authenticate,
            max_size=MAX_FRAME,
            # no permessage-deflate: OCPP frames are a few hundred bytes, and compressing each one
            # cost ~20 % of the CSMS's CPU (zlib flush per frame) for almost no bytes saved
            compression=None,
            ping_interval=None,  # OCPP's Heartbeat is the liveness check
        )
        self._flusher = asyncio.create_task(self._flush_loop())

    async def stop(self) -> None:
        if self._flusher:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self._server:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        self.flush()

    @property
    def port(self) -> int:
        if self._server is None:
            return self._port
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def url(self) -> str:
        return f"{'wss' if self.ssl_context else 'ws'}://{self.host}:{self.port}/ocpp"

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        """A background task (a swap, a delivery of held reservations) that failed says so in the log."""
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, ConnectionClosed | SwapError):
            log.error("ocpp: background task failed: %s: %s", type(exc).__name__, exc, exc_info=exc)

    # the upgrade: who is it ------------------------------------------------------------------
    def _authenticate(self, connection: ServerConnection, request: Request) -> Response | None:
        ident = request.path.rstrip("/").rsplit("/", 1)[-1]
        auth = station_auth(self.engine, ident)
        if auth is None:
            return self._refuse(connection, HTTPStatus.NOT_FOUND, f"unknown station {ident[:48]!r}")
        if auth.security_profile == 3:
            cert = connection.transport.get_extra_info("peercert") if self.ssl_context else None
            names = [v for rdn in (cert or {}).get("subject", ()) for k, v in rdn if k == "commonName"]
            if names != [ident]:
                return self._refuse(
                    connection, HTTPStatus.UNAUTHORIZED, f"station {ident}: no client certificate for it"
                )
        else:
            user, password = _basic(request.headers)
            if user != ident or not check_password(auth.password_hash, password):
                return self._refuse(
                    connection,
                    HTTPStatus.UNAUTHORIZED,
                    f"station {ident}: wrong user or password",
                    basic=True,
                )
        return None

    def _refuse(
        self, connection: ServerConnection, status: HTTPStatus, why: str, *, basic: bool = False
    ) -> Response:
        self.stats["refused"] += 1
        log.warning("ocpp: refused %s: %s", connection.remote_address, why)
        response = connection.respond(status, why + "\n")
        if basic:
            response.headers["WWW-Authenticate"] = 'Basic realm="anycar-ocpp", charset="UTF-8"'
        return response

    async def _serve(self, connection: ServerConnection) -> None:
        ident = connection.request.path.rstrip("/").rsplit("/", 1)[-1] if connection.request else ""
        if connection.subprotocol != SUBPROTOCOL:
            await connection.close(1002, "subprotocol ocpp2.1 required")
            return
        auth = station_auth(self.engine, ident)
        if auth is None:
            await connection.close(1008, "unknown station")
            return
        old = self.sessions.get(ident)
        if old is not None:  # a rebooted station reconnects before its old TCP connection timed out
            await old.connection.close(1000, "replaced by a new connection")
        session = StationSession(self, ident, auth.tenant_id, connection)
        self.sessions[ident] = session
        self.stats["connections"] += 1
        self.seen(ident)  # online from the next flush (one transaction for every station's news)
        try:
            await session.start()
        except ConnectionClosed:
            pass
        finally:
            if self.sessions.get(ident) is session:
                del self.sessions[ident]
                self.pending_seen.discard(ident)  # else the next flush would mark it online again
                self.update_station(ident, online=False)
                self._abort_swaps(ident, "station went offline mid-swap")

    # state kept for the flusher ---------------------------------------------------------------
    def station_row(self, ident: str) -> Any:
        row = self._rows.get(ident)
        if row is None:
            with self.engine.connect() as conn:
                row = conn.execute(select(t.stations).where(t.stations.c.id == ident)).first()
            self._rows[ident] = row
        return row

    def layout_of(self, name: str) -> Any:
        """The station layout, parsed once per name: a thousand stations reconnecting after a CSMS
        restart would otherwise parse the same YAML a thousand times (2.6 ms each)."""
        layout = self._layouts.get(name)
        if layout is None:
            layout = self._layouts[name] = load_layout(name)
        return layout

    def seen(self, ident: str) -> None:
        self.pending_seen.add(ident)

    def update_station(self, ident: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.stations).where(t.stations.c.id == ident).values(**values))

    def booted(self, ident: str, reason: str, station: dict[str, Any]) -> None:
        self._abort_swaps(ident, f"station rebooted ({reason}) mid-swap")
        self.update_station(
            ident, online=True, last_seen=self.clock(), boot_reason=reason[:32],
            vendor=str(station.get("vendor_name", ""))[:50], model=str(station.get("model", ""))[:50],
            firmware=str(station.get("firmware_version", ""))[:50],
        )  # fmt: skip

    def check_clock(self, ident: str, stamp: str) -> None:
        """A station whose clock is off by more than the policy allows gets one alert per session;
        its timestamps are not used for anything (the CSMS records its own receive time)."""
        ts = parse_iso(stamp)
        if ts is None:
            return
        skew = ts - self.clock()
        if (
            abs(skew) > self.policy.max_clock_skew_s
            and abs(self.skew.get(ident, 0.0)) <= self.policy.max_clock_skew_s
        ):
            with self.engine.begin() as conn:
                inventory.alert(conn, ident, "clock_skew", f"station clock {skew:+.0f} s off; CSMS time used")
                conn.execute(update(t.stations).where(t.stations.c.id == ident).values(clock_skew_s=skew))
        self.skew[ident] = skew

    async def _flush_loop(self) -> None:
        swept = time.monotonic()
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                self.flush()
            except Exception:  # a database hiccup: keep the pending state, try again next second
                log.exception("ocpp: flush failed; retrying")
            if time.monotonic() - swept >= self.sweep_interval:
                swept = time.monotonic()
                try:
                    await self._sweep_held()
                except Exception:  # the same: held reservations stay held, looked at again later
                    log.exception("ocpp: reservation sweep failed; retrying")

    def flush(self) -> None:
        """Write the coalesced slot states, SoCs and last-seen times in one transaction
        (each kind one executemany of one compiled statement)."""
        if not (self.pending_status or self.pending_soc or self.pending_seen):
            return
        status, socs, seen = self.pending_status, self.pending_soc, self.pending_seen
        now = self.clock()
        with self.engine.begin() as conn:
            if status:
                conn.execute(
                    _SLOT_STATUS,
                    [
                        {"b_station": st, "b_evse": evse, "b_status": value, "b_now": now}
                        for (st, evse), value in status.items()
                    ],
                )
            inventory.apply_soc(
                conn,
                self.policy,
                {(st, evse): soc for st, by_evse in socs.items() for evse, soc in by_evse.items()},
            )
            if seen:
                conn.execute(
                    update(t.stations).where(t.stations.c.id.in_(seen)).values(last_seen=now, online=True)
                )
        self.pending_status, self.pending_soc, self.pending_seen = {}, {}, set()
        self.stats["flushes"] += 1

    # authorisation and the swap flow ----------------------------------------------------------
    def _vehicle(self, conn: Any, token: str) -> Any:
        from anycar.fleet import db as fleet_db

        v = fleet_db.vehicles.c
        return conn.execute(
            select(v.id, v.tenant_id, v.revoked)
            .select_from(t.id_tokens.join(fleet_db.vehicles, t.id_tokens.c.vehicle_id == v.id))
            .where(t.id_tokens.c.token == token, t.id_tokens.c.revoked.is_(False))
        ).first()

    def _check_swap(self, conn: Any, station: str, token: str) -> tuple[Any, int | None]:
        """The vehicle behind ``token`` and its reservation here; raises SwapError when no swap can start."""
        vehicle = self._vehicle(conn, token)
        if vehicle is None or vehicle.revoked:
            raise SwapError("unknown_token", f"idToken not issued to a vehicle in service at {station}")
        if any(p.vehicle_id == vehicle.id for p in self.swaps.values()):
            raise SwapError("busy", f"vehicle {vehicle.id} already has a swap under way")
        r = t.reservations.c
        now = self.clock()
        conn.execute(
            update(t.reservations).where(r.status == "active", r.expires < now).values(status="expired")
        )
        holds = (r.station_id == station, r.status.in_(HOLDS_A_PACK), r.expires >= now)
        mine = conn.execute(select(r.id).where(*holds, r.vehicle_id == vehicle.id)).scalar()
        if mine is None:
            others = conn.execute(select(r.id).where(*holds)).all()
            ready = inventory.ready_count(conn, station) - sum(
                1 for p in self.swaps.values() if p.station == station
            )
            if ready - len(others) < 1:
                raise SwapError(
                    "no_ready_pack",
                    f"{station}: {max(ready, 0)} ready packs, {len(others)} reserved for others",
                )
        return vehicle, mine

    def authorize(self, station: str, token: str) -> str:
        try:
            with self.engine.begin() as conn:
                self._check_swap(conn, station, token)
            status = "Accepted"
        except SwapError as exc:
            status = {"unknown_token": "Unknown", "busy": "ConcurrentTx"}.get(exc.reason, "NotAtThisTime")  # nosec B105 # OCPP AuthorizationStatus values
        self.last_authorize[(station, token)] = status
        return status

    async def request_swap(self, station: str, token: str) -> SwapResult:
        """Send RequestBatterySwap for the vehicle behind ``token`` and wait for the swap to end."""
        session = self.sessions.get(station)
        if session is None:
            raise SwapError("offline", f"station {station} is not connected")
        started = time.perf_counter()
        self.flush()  # decisions see the latest slot states and SoCs
        request_id = secrets.randbelow(2**31 - 2) + 1
        with self.engine.begin() as conn:
            vehicle, reservation = self._check_swap(conn, station, token)
            conn.execute(
                t.swaps.insert().values(
                    id=request_id, station_id=station, vehicle_id=vehicle.id, tenant_id=vehicle.tenant_id,
                    reservation_id=reservation, state="requested", requested=self.clock(),
                )
            )  # fmt: skip
        loop = asyncio.get_running_loop()
        pending = _Pending(
            request_id,
            station,
            vehicle.id,
            vehicle.tenant_id,
            token,
            reservation,
            self.clock(),
            loop.create_future(),
        )
        self.swaps[request_id] = pending
        pending.busy_ms += (time.perf_counter() - started) * 1000
        sent = time.perf_counter()
        try:
            answer = await session.call(
                call.RequestBatterySwap(
                    id_token={"idToken": token, "type": TOKEN_TYPE}, request_id=request_id
                ),
                suppress=False,
            )
        except Exception as exc:  # timeout, CALLERROR, connection lost: the swap never started
            self._finish(pending, "rejected", f"RequestBatterySwap failed: {type(exc).__name__}: {exc}"[:300])
            return pending.done.result()
        pending.busy_ms += (time.perf_counter() - sent) * 1000
        pending.mechanical_from = time.perf_counter()
        if answer.status != "Accepted":
            self._finish(pending, "rejected", f"station answered {answer.status}")
            return pending.done.result()
        with self.engine.begin() as conn:
            conn.execute(update(t.swaps).where(t.swaps.c.id == request_id).values(accepted=self.clock()))
        try:
            return await asyncio.wait_for(asyncio.shield(pending.done), self.policy.swap_timeout_s)
        except TimeoutError:
            self._finish(
                pending, "timeout", f"no BatteryIn/BatteryOut within {self.policy.swap_timeout_s:g} s"
            )
            return pending.done.result()

    def battery_swap(
        self, station: str, event: str, request_id: int, batteries: list[tuple[int, str, float, float]]
    ) -> None:
        """One BatterySwap event: packs move (the station's word is the physical truth), the swap advances."""
        started = time.perf_counter()
        pending = self.swaps.get(request_id)
        layout = self.sessions[station].layout if station in self.sessions else None
        capacity, chemistry = (layout.capacity_kwh, layout.chemistry) if layout else (0.0, "unknown")
        with self.engine.begin() as conn:
            row = conn.execute(select(t.swaps).where(t.swaps.c.id == request_id)).first()
            if row is None or row.station_id != station:
                inventory.alert(
                    conn,
                    station,
                    "unknown_request",
                    f"BatterySwap {event} for request {request_id} this CSMS never sent",
                )
                self._move(conn, station, event, batteries, None, None, capacity, chemistry)
                return
            column = {"BatteryIn": "in_ts", "BatteryOut": "out_ts"}.get(event)
            if (column and getattr(row, column) is not None) or (
                pending is not None and event in pending.events
            ):
                inventory.alert(
                    conn,
                    station,
                    "duplicate_event",
                    f"BatterySwap {event} for swap {request_id} again; ignored",
                    request_id,
                )
                return
            late = pending is None
            found = self._move(
                conn, station, event, batteries, row.vehicle_id, request_id, capacity, chemistry
            )
            if late:  # the swap had already ended (timeout, offline): the packs moved, the swap stays ended
                inventory.alert(
                    conn,
                    station,
                    "late_event",
                    f"BatterySwap {event} after swap {request_id} ended ({row.state})",
                    request_id,
                )
            values: dict[str, Any] = {}
            if event == "BatteryIn" and batteries:
                values = {"in_ts": self.clock(), "pack_old": batteries[0][1], "soc_old": batteries[0][2]}
            elif event == "BatteryOut" and batteries:
                values = {"out_ts": self.clock(), "pack_new": batteries[0][1], "soc_new": batteries[0][2]}
            if found:
                values["reason"] = "; ".join(a.detail for a in found)[:500]
                if not late:
                    values["state"] = "disputed"
            if values:
                conn.execute(update(t.swaps).where(t.swaps.c.id == request_id).values(**values))
        if pending is None:
            return
        pending.busy_ms += (time.perf_counter() - started) * 1000
        if event == "BatteryOutTimeout":
            self._finish(pending, "timeout", "the charged pack was not taken (BatteryOutTimeout)")
            return
        pending.events[event] = self.clock()
        if {"BatteryIn", "BatteryOut"} <= set(pending.events):
            self._complete(pending)

    def _move(
        self,
        conn: Any,
        station: str,
        event: str,
        batteries: list[tuple[int, str, float, float]],
        vehicle_id: int | None,
        swap_id: int | None,
        capacity: float,
        chemistry: str,
    ) -> list[inventory.Alert]:
        found: list[inventory.Alert] = []
        for evse, serial, soc, soh in batteries:
            if event == "BatteryIn":
                found += inventory.into_slot(
                    conn, self.policy, serial=serial, station=station, evse=evse, soc=soc, soh=soh, vehicle_id=vehicle_id,
                    swap_id=swap_id, default_capacity=capacity, default_chemistry=chemistry,
                )  # fmt: skip
            elif event == "BatteryOut" and vehicle_id is not None:
                found += inventory.out_to_vehicle(
                    conn, serial=serial, station=station, evse=evse, soc=soc, soh=soh, vehicle_id=vehicle_id,
                    swap_id=swap_id, default_capacity=capacity, default_chemistry=chemistry,
                )  # fmt: skip
        for a in found:
            inventory.alert(conn, station, a.kind, a.detail, swap_id)
        return found

    def _complete(self, pending: _Pending) -> None:
        started = time.perf_counter()
        with self.engine.begin() as conn:
            row = conn.execute(select(t.swaps).where(t.swaps.c.id == pending.id)).one()
            p = t.packs.c
            cap_new = conn.execute(select(p.capacity_kwh).where(p.serial == row.pack_new)).scalar() or 0.0
            cap_old = conn.execute(select(p.capacity_kwh).where(p.serial == row.pack_old)).scalar() or cap_new
            energy = max(0.0, (row.soc_new or 0.0) / 100 * cap_new - (row.soc_old or 0.0) / 100 * cap_old)
            station = self.station_row(pending.station)
            tariff = station.tariff
            price = (
                float(tariff[datetime.fromtimestamp(self.clock(), UTC).hour])
                if tariff
                else self.policy.price_per_kwh
            )
            disputed = row.state == "disputed"
            amount = None if disputed else round(energy * price + self.policy.swap_fee, 2)
            now = self.clock()
            conn.execute(
                update(t.swaps).where(t.swaps.c.id == pending.id).values(
                    state="disputed" if disputed else "done", finished=now, energy_kwh=round(energy, 4),
                    amount=amount, currency=self.policy.currency,
                )
            )  # fmt: skip
            if pending.reservation_id is not None:
                conn.execute(
                    update(t.reservations)
                    .where(t.reservations.c.id == pending.reservation_id)
                    .values(status="used")
                )
        pending.busy_ms += (time.perf_counter() - started) * 1000
        if self.flows_ms is not None:
            self.flows_ms.append(pending.busy_ms)
        self.swaps.pop(pending.id, None)
        if not pending.done.done():
            pending.done.set_result(
                SwapResult(
                    pending.id,
                    "disputed" if disputed else "done",
                    row.reason,
                    row.pack_old,
                    row.pack_new,
                    round(energy, 4),
                    amount,
                    round(pending.busy_ms, 2),
                )
            )

    def _finish(self, pending: _Pending, state: str, reason: str) -> None:
        """End a swap that did not complete: nothing billed, its reservation (if any) stays for a retry."""
        with self.engine.begin() as conn:
            conn.execute(
                update(t.swaps)
                .where(t.swaps.c.id == pending.id)
                .values(state=state, reason=reason[:500], finished=self.clock())
            )
            if state in ("timeout", "aborted"):
                inventory.alert(conn, pending.station, f"swap_{state}", reason, pending.id)
        self.swaps.pop(pending.id, None)
        if not pending.done.done():
            pending.done.set_result(SwapResult(pending.id, state, reason))

    def _abort_swaps(self, station: str, reason: str) -> None:
        for pending in [p for p in self.swaps.values() if p.station == station]:
            self._finish(pending, "aborted", reason)

    # CSMS -> station --------------------------------------------------------------------------
    def _session(self, station: str) -> StationSession:
        session = self.sessions.get(station)
        if session is None:
            raise SwapError("offline", f"station {station} is not connected")
        return session

    # reservations: sent at once, or held while the station is offline and sent when it connects --
    def _accepted_session(self, station: str) -> StationSession | None:
        session = self.sessions.get(station)
        return session if session is not None and session.accepted else None

    async def reserve(
        self, station: str, token: str, *, minutes: float = 30.0, evse_id: int | None = None
    ) -> tuple[int, str]:
        """ReserveNow a pack for the vehicle behind ``token``: (reservation id, status).

        The status is the station's answer (Accepted, Occupied, Faulted, Rejected, Unavailable),
        or ``Queued`` when the station is not connected (or its link failed before it answered):
        the CSMS holds the reservation and sends it when the station connects, unless it has
        expired by then (``expired``, never sent)."""
        if self.station_row(station) is None:
            raise SwapError("unknown_station", f"no station {station[:48]!r} is registered")
        now = self.clock()
        session = self._accepted_session(station)
        with self.engine.begin() as conn:
            vehicle = self._vehicle(conn, token)
            if vehicle is None:
                raise SwapError("unknown_token", "idToken not issued to a vehicle")
            reservation_id = secrets.randbelow(2**31 - 2) + 1
            conn.execute(
                t.reservations.insert().values(
                    id=reservation_id, station_id=station, vehicle_id=vehicle.id, token=token, evse_id=evse_id,
                    expires=now + minutes * 60, status="pending" if session else "queued", created=now, updated=now,
                    detail=None if session else "held by the CSMS: the station is offline; sent when it connects",
                )
            )  # fmt: skip
        if session is None:
            log.info("ocpp: reservation %s for %s held until the station connects", reservation_id, station)
            return reservation_id, "Queued"
        return reservation_id, await self._send_reserve(session, self._reservation(reservation_id))

    def _reservation(self, reservation_id: int) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(t.reservations).where(t.reservations.c.id == reservation_id)).first()

    def _set_reservation(self, reservation_id: int, **values: Any) -> None:
        values["updated"] = self.clock()
        if isinstance(values.get("detail"), str):
            values["detail"] = values["detail"][:500]
        with self.engine.begin() as conn:
            conn.execute(update(t.reservations).where(t.reservations.c.id == reservation_id).values(**values))

    async def _send_reserve(self, session: StationSession, row: Any) -> str:
        """Send one stored reservation and record the station's answer; a link that fails before
        the answer leaves it queued (ReserveNow again with the same id replaces it: no double)."""
        self._set_reservation(row.id, status="pending")
        try:
            answer = await session.call(
                call.ReserveNow(
                    id=row.id,
                    expiry_date_time=now_iso(row.expires),
                    id_token={"idToken": row.token, "type": TOKEN_TYPE},
                    evse_id=row.evse_id,
                ),
                suppress=False,
            )
        except OCPPError as exc:  # the station answered with a CALLERROR: it will not hold it
            self._set_reservation(row.id, status="rejected", answer=exc.code[:24], sent=self.clock(),
                                  detail=f"the station answered {exc.code}: {exc.description}")  # fmt: skip
            return str(exc.code)
        except (ConnectionClosed, TimeoutError) as exc:
            self._set_reservation(row.id, status="queued",
                                  detail=f"not answered ({type(exc).__name__}); sent again when the station connects")  # fmt: skip
            return "Queued"
        status = str(answer.status)
        self._set_reservation(
            row.id, status="active" if status == "Accepted" else "rejected", answer=status, sent=self.clock(),
            detail=None if status == "Accepted" else f"the station answered {status}",
        )  # fmt: skip
        return status

    async def cancel_reservation(self, station: str, reservation_id: int) -> str:
        """CancelReservation: the station's answer (Accepted / Rejected); ``Withdrawn`` for a
        reservation still held by the CSMS (it never reached the station); ``Queued`` when the
        station holds it but is offline now (sent when it connects)."""
        row = self._reservation(reservation_id)
        mine = row is not None and row.station_id == station
        if mine and row.status == "queued":
            self._set_reservation(reservation_id, status="cancelled", detail="withdrawn before it was sent")
            return "Withdrawn"
        session = self._accepted_session(station)
        if session is None:
            if mine and row.status in ("pending", "active", "cancel_queued"):
                self._set_reservation(reservation_id, status="cancel_queued",
                                      detail="cancelled while the station is offline; sent when it connects")  # fmt: skip
                return "Queued"
            raise SwapError("offline", f"station {station} is not connected")
        return await self._send_cancel(session, reservation_id, mine and row.status in OPEN_RESERVATIONS)

    async def _send_cancel(self, session: StationSession, reservation_id: int, open_here: bool) -> str:
        try:
            answer = await session.call(call.CancelReservation(reservation_id=reservation_id), suppress=False)
        except OCPPError as exc:  # a CALLERROR: the station will not hold it for anyone either way
            if open_here:
                self._set_reservation(reservation_id, status="cancelled", answer=exc.code[:24],
                                      detail=f"the station answered {exc.code}: {exc.description}")  # fmt: skip
            return str(exc.code)
        except (ConnectionClosed, TimeoutError):
            if open_here:
                self._set_reservation(reservation_id, status="cancel_queued",
                                      detail="cancel not answered; sent again when the station connects")  # fmt: skip
            return "Queued"
        status = str(answer.status)
        if open_here:  # Rejected: the station holds no such reservation, so none is held for the vehicle
            self._set_reservation(
                reservation_id, status="cancelled", answer=status,
                detail=None if status == "Accepted" else "the station answered Rejected: it held no such reservation",
            )  # fmt: skip
        return status

    async def deliver_held(self, station: str) -> dict[int, str]:
        """Send what was held for ``station`` while it was offline, oldest first: its queued
        reservations (one whose expiry has passed is ``expired`` and not sent) and its queued
        cancellations. Returns each reservation's outcome. One delivery per station at a time;
        a station with nothing held costs one indexed SELECT."""
        lock = self._delivering.setdefault(station, asyncio.Lock())
        outcome: dict[int, str] = {}
        async with lock:
            r = t.reservations.c
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(t.reservations)
                    .where(r.station_id == station, r.status.in_(HELD))
                    .order_by(r.created, r.id)
                ).all()
            if any(row.expires <= self.clock() for row in rows):
                self.expire_reservations(station)
            for row in rows:
                session = self._accepted_session(station)
                if session is None:  # gone again: the rest stays held
                    break
                if row.expires <= self.clock():
                    outcome[row.id] = "expired" if row.status == "queued" else "cancelled"
                    continue
                try:
                    if row.status == "queued":
                        outcome[row.id] = await self._send_reserve(session, row)
                    else:
                        outcome[row.id] = await self._send_cancel(session, row.id, True)
                except Exception:  # this one stays as it is (a pending one is held again later)
                    log.exception("ocpp: %s: reservation %s could not be sent", station, row.id)
        if outcome:
            log.info("ocpp: %s: held reservation messages: %s", station, outcome)
        return outcome

    def expire_reservations(self, station: str | None = None) -> int:
        """Reservations past their expiry: held ones were never sent (``expired``), held
        cancellations need no sending any more (``cancelled``), active ones have ended at the
        station too (``expired``); a ``pending`` one left by a CSMS stopped mid-call is held again."""
        now = self.clock()
        r = t.reservations.c
        scope = [r.station_id == station] if station is not None else []
        with self.engine.begin() as conn:
            n = conn.execute(
                update(t.reservations).where(*scope, r.status == "queued", r.expires <= now)
                .values(status="expired", updated=now, detail="expired before the station connected: never sent")
            ).rowcount  # fmt: skip
            n += conn.execute(
                update(t.reservations).where(*scope, r.status == "cancel_queued", r.expires <= now)
                .values(status="cancelled", updated=now, detail="cancelled; it expired before the station connected")
            ).rowcount  # fmt: skip
            n += conn.execute(
                update(t.reservations).where(*scope, r.status == "active", r.expires <= now)
                .values(status="expired", updated=now)
            ).rowcount  # fmt: skip
            stale = now - 2 * self.call_timeout  # longer than any call in flight can take
            n += conn.execute(
                update(t.reservations).where(*scope, r.status == "pending", r.updated < stale)
                .values(status="queued", updated=now, detail="its answer was lost; sent again")
            ).rowcount  # fmt: skip
        return int(n)

    def reservation_ended(self, station: str, reservation_id: int, status: str) -> None:
        """ReservationStatusUpdate: the station ended a reservation on its own (Expired, Removed,
        NoTransaction: reserved, but the vehicle never swapped)."""
        r = t.reservations.c
        ended = "cancelled" if status == "Removed" else "expired"
        with self.engine.begin() as conn:
            conn.execute(
                update(t.reservations)
                .where(r.id == reservation_id, r.station_id == station, r.status.in_(OPEN_RESERVATIONS))
                .values(status=ended, answer=status[:24], updated=self.clock(), detail=f"the station reported {status}")
            )  # fmt: skip

    async def _sweep_held(self) -> None:
        """Every few seconds: expire what is past its expiry, and deliver what is still held for a
        connected station (its link failed mid-delivery, or it was made in the moment it connected)."""
        self.expire_reservations()
        r = t.reservations.c
        with self.engine.connect() as conn:
            waiting = set(conn.execute(select(r.station_id).where(r.status.in_(HELD)).distinct()).scalars())
        for station in waiting:
            running = self._delivering.get(station)
            if self._accepted_session(station) is not None and (running is None or not running.locked()):
                self.spawn(self.deliver_held(station))

    async def set_grid_limit(self, station: str, kw: float, *, replan: bool = True) -> str:
        """The station's grid connection as a ChargingStationMaxProfile on EVSE 0 (and, with
        ``replan``, its charging plan again under it)."""
        profile = {
            "id": 1, "stackLevel": 0, "chargingProfilePurpose": "ChargingStationMaxProfile", "chargingProfileKind": "Absolute",
            "chargingSchedule": [{"id": 1, "chargingRateUnit": "W", "startSchedule": now_iso(self.clock()), "chargingSchedulePeriod": [{"startPeriod": 0, "limit": round(kw * 1000, 1)}]}],
        }  # fmt: skip
        answer = await self._session(station).call(
            call.SetChargingProfile(evse_id=0, charging_profile=profile), suppress=False
        )
        if answer.status == "Accepted":
            self.update_station(station, grid_limit_kw=kw)
            self._rows.pop(station, None)
            self.limits[station] = kw
            if replan:
                await self._replan_after_limit(station)
        return str(answer.status)

    async def restore_profiles(self, station: str) -> dict[str, Any]:
        """After a BootNotification: send the station its grid limit and a fresh charging plan
        (for the demand it was last planned for) again, as they were before it rebooted. What was
        sent: ``{"grid_limit": answer, "plan": {evse: answer}}`` (keys only for what it had)."""
        sent: dict[str, Any] = {}
        try:
            if station in self.limits:
                sent["grid_limit"] = await self.set_grid_limit(station, self.limits[station], replan=False)
            if station in self.plans:
                sent["plan"] = (await self.charge_plan(station, demand=self._plan_demand.get(station)))[1]
        except (SwapError, OCPPError, ConnectionClosed, TimeoutError) as exc:  # gone again: next boot
            log.warning("ocpp: %s: charging profiles not restored after its boot: %s", station, exc)
        if sent:
            log.info("ocpp: %s: charging profiles restored after its boot: %s", station, sent)
        return sent

    async def _replan_after_limit(self, station: str) -> None:
        """A station that was sent a charging plan gets it again under its new grid limit: the
        plan's hourly limits were shared out under the old one (a lower limit would leave the
        station capping them itself, in slot order rather than by the plan's deadlines)."""
        if station in self.plans:
            await self.charge_plan(station, demand=self._plan_demand.get(station))

    async def send_plan(self, station: str, plan: Any) -> dict[int, str]:
        """A charging plan (``anycar.swap.plan.Plan``) as one TxDefaultProfile per slot."""
        session = self._session(station)
        answers: dict[int, str] = {}
        for evse, profile in plan.profiles().items():
            answer = await session.call(
                call.SetChargingProfile(evse_id=evse, charging_profile=profile), suppress=False
            )
            answers[evse] = str(answer.status)
        return answers

    async def charge_plan(
        self, station: str, demand: list[float] | None = None
    ) -> tuple[Any, dict[int, str]]:
        """Make the station's charging plan from the inventory and send it; (plan, answers per slot)."""
        from anycar.swap.plan import station_plan

        session = self._session(station)
        self.flush()
        plan = station_plan(
            self.engine, station, charger_kw=session.layout.charger_kw, chargers=session.layout.chargers,
            ready_soc=self.policy.ready_soc, demand=demand,
        )  # fmt: skip
        answers = await self.send_plan(station, plan)
        self.plans[station] = (plan, answers)
        self._plan_demand[station] = demand
        return plan, answers

    async def get_variables(self, station: str, names: list[tuple[str, str]]) -> list[dict[str, Any]]:
        data = [{"component": {"name": c}, "variable": {"name": v}} for c, v in names]
        answer = await self._session(station).call(call.GetVariables(get_variable_data=data), suppress=False)
        return list(answer.get_variable_result)

    async def set_variables(self, station: str, values: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
        data = [
            {"component": {"name": c}, "variable": {"name": v}, "attributeValue": value}
            for c, v, value in values
        ]
        answer = await self._session(station).call(call.SetVariables(set_variable_data=data), suppress=False)
        return list(answer.set_variable_result)

    async def reset(self, station: str, kind: str = "OnIdle") -> str:
        answer = await self._session(station).call(call.Reset(type=kind), suppress=False)
        return str(answer.status)


def _basic(headers: Headers) -> tuple[str, str]:
    value = headers.get("Authorization", "")
    if not value.startswith("Basic ") or len(value) > 512:
        return "", ""
    try:
        user, _, password = base64.b64decode(value[6:], validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return user, password


def server_tls(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    """TLS for the CSMS (profile 2); with ``client_ca`` it also verifies client certificates (profile 3)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = (
            ssl.CERT_OPTIONAL
        )  # profile-2 stations send none; a profile-3 station's is checked in the upgrade
    return ctx
