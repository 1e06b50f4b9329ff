"""A battery-swap station simulator that speaks only OCPP 2.1 over WebSocket, as a real one would.

Its slots are EVSEs; packs in them charge (within the chargers it has, its grid limit and the
CSMS's charging profiles) and report TransactionEvent and MeterValues; a vehicle at the bay
presents its idToken (Authorize), and on RequestBatterySwap the robot takes the vehicle's pack
(BatteryIn, into an empty slot) and hands a ready one out (BatteryOut), in the layout's
SwapOrder, taking the layout's mechanical time. It knows the CSMS only through OCPP frames.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import after, on
from ocpp.v21 import call, call_result
from ocpp.v21.enums import Action
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from anycar.swap.ocpp21 import MAX_FRAME, SUBPROTOCOL, Endpoint, battery_data
from anycar.swap.policy import Layout, load_layout

log = logging.getLogger("anycar.swap.station")
READY_SOC = 95.0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_iso(value: str) -> float | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


@dataclass
class Pack:
    serial: str
    soc: float
    soh: float
    capacity_kwh: float


@dataclass
class Vehicle:
    """A vehicle at the bay: its idToken and the pack it brings."""

    token: str
    pack: Pack
    takes_pack: bool = True  # False: the driver leaves without the charged pack (BatteryOutTimeout)
    done: asyncio.Future[Pack | None] | None = None
    got: Pack | None = None
    robot_s: float = 0.0  # time the robot (mechanical steps) took, as measured
    flow_s: float | None = None  # Authorize sent -> last BatterySwap answered, robot time included


@dataclass
class Slot:
    evse: int
    pack: Pack | None = None
    faulted: bool = False
    reserved: int | None = None
    reserved_for: str | None = None  # the idToken of the reservation
    reserved_until: float | None = None  # its expiry (station clock); then ReservationStatusUpdate Expired
    tx: str | None = None
    seq: int = 0
    power_w: float = 0.0
    profile: list[tuple[float, float]] = field(
        default_factory=list
    )  # (start epoch, limit W) from TxDefaultProfile

    @property
    def status(self) -> str:
        if self.faulted:
            return "Faulted"
        if self.reserved is not None:
            return "Reserved"
        return "Occupied" if self.pack else "Available"

    def limit_w(self, now: float) -> float | None:
        limit = None
        for start, value in self.profile:
            if start <= now:
                limit = value
        return limit


class _Link(Endpoint):
    """The station's OCPP endpoint: what the CSMS may ask of it."""

    def __init__(self, sim: StationSim, connection: ClientConnection) -> None:
        super().__init__(sim.ident, connection, response_timeout=sim.call_timeout)
        self.sim = sim

    async def call(
        self, payload: Any, suppress: bool = True, unique_id: Any = None, skip_schema_validation: bool = False
    ) -> Any:
        started = time.perf_counter()
        answer = await super().call(
            payload,
            suppress=suppress,
            unique_id=unique_id,
            skip_schema_validation=skip_schema_validation or not self.sim.validate,
        )
        self.sim.latencies.append((type(payload).__name__, time.perf_counter() - started))
        return answer

    @on(Action.request_battery_swap)
    def on_request_swap(
        self, id_token: dict[str, Any], request_id: int, **_: Any
    ) -> call_result.RequestBatterySwap:
        ok = self.sim.can_swap(str(id_token.get("id_token", "")))
        return call_result.RequestBatterySwap(status="Accepted" if ok else "Rejected")

    @after(Action.request_battery_swap)
    def after_request_swap(self, id_token: dict[str, Any], request_id: int, **_: Any) -> None:
        if self.sim.can_swap(str(id_token.get("id_token", ""))):
            self.sim.spawn(self.sim.swap(request_id))

    @on(Action.reserve_now)
    def on_reserve(
        self, id: int, expiry_date_time: str, id_token: dict[str, Any], evse_id: int | None = None, **_: Any
    ) -> call_result.ReserveNow:
        self.sim.reservations_seen.append(id)
        for held in self.sim.slots:  # the same id again replaces the reservation (OCPP H01.FR.02)
            if held.reserved == id:
                held.reserved = held.reserved_for = held.reserved_until = None
        until = _parse_iso(expiry_date_time)
        slot = self.sim.reservable(evse_id)
        if slot is None or until is None or until <= self.sim.now():
            return call_result.ReserveNow(status="Occupied" if slot is None else "Rejected")
        slot.reserved, slot.reserved_for = id, str(id_token.get("id_token", ""))
        slot.reserved_until = until
        self.sim.spawn(self.sim.status(slot))
        return call_result.ReserveNow(status="Accepted")

    @on(Action.cancel_reservation)
    def on_cancel(self, reservation_id: int, **_: Any) -> call_result.CancelReservation:
        for slot in self.sim.slots:
            if slot.reserved == reservation_id:
                slot.reserved = slot.reserved_for = slot.reserved_until = None
                self.sim.spawn(self.sim.status(slot))
                return call_result.CancelReservation(status="Accepted")
        return call_result.CancelReservation(status="Rejected")

    @on(Action.set_charging_profile)
    def on_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        schedules = charging_profile.get("charging_schedule", [])
        if not schedules or schedules[0].get("charging_rate_unit") != "W":
            return call_result.SetChargingProfile(status="Rejected")
        schedule = schedules[0]
        start = datetime.fromisoformat(
            str(schedule.get("start_schedule", _iso(time.time()))).replace("Z", "+00:00")
        ).timestamp()
        periods = [
            (start + p["start_period"], float(p["limit"])) for p in schedule["charging_schedule_period"]
        ]
        if evse_id == 0:
            self.sim.max_w = periods[0][1]
        elif 1 <= evse_id <= len(self.sim.slots):
            self.sim.slots[evse_id - 1].profile = periods
        else:
            return call_result.SetChargingProfile(status="Rejected")
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.get_variables)
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> call_result.GetVariables:
        results = []
        for item in get_variable_data:
            comp, var = item["component"]["name"], item["variable"]["name"]
            value = self.sim.variables().get((comp, var))
            result: dict[str, Any] = {"component": {"name": comp}, "variable": {"name": var}}
            if value is None:
                result["attributeStatus"] = "UnknownVariable"
            else:
                result.update(attributeStatus="Accepted", attributeValue=value)
            results.append(result)
        return call_result.GetVariables(get_variable_result=results)

    @on(Action.set_variables)
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> call_result.SetVariables:
        results = []
        for item in set_variable_data:
            comp, var, value = item["component"]["name"], item["variable"]["name"], item["attribute_value"]
            status = "Rejected"
            if (comp, var) == ("OCPPCommCtrlr", "HeartbeatInterval") and value.isdigit() and int(value) > 0:
                self.sim.heartbeat_s = int(value)
                status = "Accepted"
            elif (comp, var) not in self.sim.variables():
                status = "UnknownVariable"
            results.append(
                {"attributeStatus": status, "component": {"name": comp}, "variable": {"name": var}}
            )
        return call_result.SetVariables(set_variable_result=results)

    @on(Action.reset)
    def on_reset(self, type: str, **_: Any) -> call_result.Reset:
        return call_result.Reset(status="Accepted")

    @after(Action.reset)
    def after_reset(self, type: str, **_: Any) -> None:
        self.sim.spawn(self.sim.reboot("RemoteReset"))


class StationSim:
    """One simulated station. ``await run()`` keeps it connected until ``stop()``."""

    def __init__(
        self,
        ident: str,
        url: str,
        layout: Layout | str = "pickman-8",
        *,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        speed: float = 1.0,
        meter_s: float = 60.0,
        status_s: float = 60.0,
        tick_s: float = 1.0,
        clock_offset_s: float = 0.0,
        out_timeout_s: float = 30.0,
        call_timeout: float = 30.0,
        firmware: str = "1.0.0",
        validate: bool = True,  # False: the station does not check its own frames (the CSMS still does)
        packs: list[Pack] | None = None,  # the packs in slots 1.. at start; None: the layout's own
        volatile_profiles: bool = False,  # True: a reboot forgets the charging profiles (grid limit, plan)
    ) -> None:
        self.volatile_profiles = volatile_profiles
        self.ident, self.url = ident, url.rstrip("/")
        self.layout = load_layout(layout) if isinstance(layout, str) else layout
        self.password, self.ssl_context = password, ssl_context
        self.speed, self.meter_s, self.status_s, self.tick_s = speed, meter_s, status_s, tick_s
        self.clock_offset_s, self.out_timeout_s, self.call_timeout = (
            clock_offset_s,
            out_timeout_s,
            call_timeout,
        )
        self.firmware = firmware
        self.validate = validate
        self.heartbeat_s = 60
        self.max_w = self.layout.grid_limit_kw * 1000
        lay = self.layout
        self.slots = [Slot(i) for i in range(1, lay.slots + 1)]
        if packs is not None:  # a station whose packs carry the makers' serials (the demo's PICKMAN packs)
            if len(packs) > lay.slots - 1:
                raise ValueError(
                    f"station {ident}: {len(packs)} packs for {lay.slots} slots (one stays empty)"
                )
            for slot, pack in zip(self.slots, packs, strict=False):
                slot.pack = pack
        else:
            for slot in self.slots[: lay.slots - lay.empty_slots]:
                slot.pack = Pack(f"{ident}-P{slot.evse:02d}", lay.soc, lay.soh, lay.capacity_kwh)
        self.bay: Vehicle | None = None
        self.swapping = False
        self.link: _Link | None = None
        self.latencies: list[tuple[str, float]] = []
        self.errors: list[str] = []
        self.booted = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._session_tasks: list[asyncio.Task[Any]] = []
        self._reboot = asyncio.Event()
        self._powered = asyncio.Event()
        self._powered.set()
        self.boot_reason = "PowerUp"
        self.reservations_seen: list[int] = []  # every ReserveNow id received, in order (its log)

    # what the station says about itself -------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.clock_offset_s

    def variables(self) -> dict[tuple[str, str], str]:
        return {
            ("OCPPCommCtrlr", "HeartbeatInterval"): str(self.heartbeat_s),
            ("BatterySwapCtrlr", "SwapOrder"): self.layout.swap_order,
            ("ChargingStation", "Model"): self.layout.model,
            ("SmartChargingCtrlr", "ExternalControlSignalsEnabled"): "false",
        }

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, ConnectionClosed):
                self.errors.append(f"{type(exc).__name__}: {exc}")

    # the connection --------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        if self.password is None:
            return {}
        raw = base64.b64encode(f"{self.ident}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}

    async def connect_once(self) -> None:
        """One connection: boot, report every slot, then the periodic loops until it drops."""
        async with connect(
            f"{self.url}/{self.ident}",
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            additional_headers=self._headers(),
            ssl=self.ssl_context,
            max_size=MAX_FRAME,
            ping_interval=None,
            open_timeout=60,
        ) as ws:
            self.link = _Link(self, ws)
            reader = asyncio.ensure_future(self.link.start())
            try:
                boot = await self.link.call(
                    call.BootNotification(
                        charging_station={
                            "model": self.layout.model,
                            "vendorName": self.layout.vendor,
                            "firmwareVersion": self.firmware,
                            "serialNumber": self.ident[:25],
                        },
                        reason=self.boot_reason,
                    )
                )
                self.heartbeat_s = int(boot.interval)
                for slot in self.slots:
                    await self.status(slot)
                self.booted.set()
                self._session_tasks = [
                    asyncio.ensure_future(self._every(lambda: self.heartbeat_s, self.heartbeat)),
                    asyncio.ensure_future(self._every(lambda: self.status_s, self.status_all)),
                    asyncio.ensure_future(self._every(lambda: self.meter_s, self.meter_all)),
                    asyncio.ensure_future(self._every(lambda: self.tick_s, self.charge)),
                    asyncio.ensure_future(self._every(lambda: self.tick_s, self.expire_reservations)),
                ]
                stopper = asyncio.ensure_future(self._stop.wait())
                rebooter = asyncio.ensure_future(self._reboot.wait())
                await asyncio.wait([reader, stopper, rebooter], return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                rebooter.cancel()
            finally:
                self.booted.clear()
                for task in self._session_tasks:
                    task.cancel()
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await reader
                self.link = None

    async def run(self, *, retry_s: float = 2.0) -> None:
        """Stay connected (reconnecting after drops) until ``stop()``; a refused login ends it."""
        while not self._stop.is_set():
            if not self._powered.is_set():  # powered off: offline until power_on() (or stop())
                stopper = asyncio.ensure_future(self._stop.wait())
                powered = asyncio.ensure_future(self._powered.wait())
                await asyncio.wait([stopper, powered], return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                powered.cancel()
                continue
            try:
                await self.connect_once()
            except InvalidStatus as exc:
                self.errors.append(f"refused: HTTP {exc.response.status_code}")
                raise
            except (OSError, ConnectionClosed, TimeoutError) as exc:
                log.info("station %s: connection lost (%s); retrying", self.ident, exc)
            if self._reboot.is_set():
                self._reboot.clear()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), retry_s)

    async def stop(self) -> None:
        self._stop.set()
        for task in list(self._tasks):
            task.cancel()

    async def reboot(self, reason: str = "RemoteReset") -> None:
        """Drop the connection (a half-finished swap is lost, as in a real power cycle) and boot again."""
        await asyncio.sleep(0.05)
        self.boot_reason = reason
        self.swapping = False
        if self.bay and self.bay.done and not self.bay.done.done():
            self.bay.done.set_result(None)
        self.bay = None
        if self.volatile_profiles:  # OCPP asks for persistent profiles; not every station keeps them
            self.max_w = self.layout.grid_limit_kw * 1000
            for slot in self.slots:
                slot.profile = []
        self._reboot.set()

    async def power_off(self) -> None:
        """Lose power: the connection drops and the station stays offline until ``power_on``. Its
        reservations are kept (a station keeps them in non-volatile memory); a swap under way is lost."""
        self._powered.clear()
        await self.reboot("PowerUp")

    def power_on(self, reason: str = "PowerUp") -> None:
        """Power back: the station boots (BootNotification with ``reason``) and reconnects."""
        self.boot_reason = reason
        self._powered.set()

    async def expire_reservations(self) -> None:
        """Reservations past their expiry end here, each told to the CSMS (ReservationStatusUpdate)."""
        now = self.now()
        for slot in self.slots:
            if slot.reserved is not None and slot.reserved_until is not None and slot.reserved_until <= now:
                ended = slot.reserved
                slot.reserved = slot.reserved_for = slot.reserved_until = None
                await self._send(
                    call.ReservationStatusUpdate(reservation_id=ended, reservation_update_status="Expired")
                )
                await self.status(slot)

    async def _every(self, interval: Any, what: Any) -> None:
        while True:
            await asyncio.sleep(interval())
            await what()

    # periodic messages -------------------------------------------------------------------------
    async def _send(self, payload: Any) -> Any:
        if self.link is None:
            return None
        return await self.link.call(payload)

    async def heartbeat(self) -> None:
        await self._send(call.Heartbeat())

    async def status(self, slot: Slot) -> None:
        await self._send(
            call.StatusNotification(
                timestamp=_iso(self.now()), connector_status=slot.status, evse_id=slot.evse, connector_id=1
            )
        )

    async def status_all(self) -> None:
        for slot in self.slots:
            await self.status(slot)

    def _sample(self, slot: Slot) -> list[dict[str, Any]]:
        pack = slot.pack
        values: list[dict[str, Any]] = [
            {
                "value": round(slot.power_w, 1),
                "measurand": "Power.Active.Import",
                "unitOfMeasure": {"unit": "W"},
            }
        ]
        if pack:
            values.append(
                {"value": round(pack.soc, 2), "measurand": "SoC", "unitOfMeasure": {"unit": "Percent"}}
            )
        return [{"timestamp": _iso(self.now()), "sampledValue": values}]

    async def meter_all(self) -> None:
        for slot in self.slots:
            if slot.tx is not None:
                slot.seq += 1
                await self._send(
                    call.TransactionEvent(
                        event_type="Updated", timestamp=_iso(self.now()), trigger_reason="MeterValuePeriodic", seq_no=slot.seq,
                        transaction_info={"transactionId": slot.tx, "chargingState": "Charging"},
                        evse={"id": slot.evse, "connectorId": 1}, meter_value=self._sample(slot),
                    )
                )  # fmt: skip
            else:
                await self._send(call.MeterValues(evse_id=slot.evse, meter_value=self._sample(slot)))

    async def charge(self) -> None:
        """One physics step: packs below full charge, chargers and the grid limit shared in slot order."""
        now = self.now()
        dt = self.tick_s * self.speed
        budget = self.max_w
        chargers = self.layout.chargers
        for slot in self.slots:
            pack = slot.pack
            want = pack is not None and pack.soc < 100.0 and not slot.faulted and chargers > 0 and budget > 0
            if pack is not None and want:
                limit = slot.limit_w(now)
                power = min(
                    self.layout.charger_kw * 1000, budget, limit if limit is not None else float("inf")
                )
                slot.power_w = max(power, 0.0)
                if slot.power_w > 0:
                    chargers -= 1
                    budget -= slot.power_w
                    pack.soc = min(
                        100.0, pack.soc + slot.power_w * dt / 3600 / 1000 / pack.capacity_kwh * 100
                    )
                if slot.tx is None and slot.power_w > 0:
                    slot.tx, slot.seq = uuid.uuid4().hex[:36], 0
                    await self._send(
                        call.TransactionEvent(
                            event_type="Started", timestamp=_iso(now), trigger_reason="ChargingStateChanged", seq_no=0,
                            transaction_info={"transactionId": slot.tx, "chargingState": "Charging"},
                            evse={"id": slot.evse, "connectorId": 1}, meter_value=self._sample(slot),
                        )
                    )  # fmt: skip
            else:
                slot.power_w = 0.0
            if slot.tx is not None and (pack is None or pack.soc >= 100.0):
                tx, slot.tx = slot.tx, None
                slot.seq += 1
                await self._send(
                    call.TransactionEvent(
                        event_type="Ended", timestamp=_iso(now), trigger_reason="SoCLimitReached" if pack else "EVDeparted",
                        seq_no=slot.seq, transaction_info={"transactionId": tx, "chargingState": "Idle", "stoppedReason": "SOCLimitReached" if pack else "EVDisconnected"},
                        evse={"id": slot.evse, "connectorId": 1}, meter_value=self._sample(slot) if pack else None,
                    )
                )  # fmt: skip

    # the swap ----------------------------------------------------------------------------------
    def ready_slot(self, token: str | None = None) -> Slot | None:
        """The slot whose pack goes out: the one reserved for ``token``, else the fullest unreserved."""
        best = None
        for slot in self.slots:
            pack = slot.pack
            if pack is None or slot.faulted or pack.soc < READY_SOC or pack.soh < 70:
                continue
            if token is not None and slot.reserved_for == token:
                return slot
            if slot.reserved is not None:
                continue
            if best is None or (best.pack is not None and pack.soc > best.pack.soc):
                best = slot
        return best

    def reservable(self, evse_id: int | None) -> Slot | None:
        if evse_id:
            slot = self.slots[evse_id - 1] if 1 <= evse_id <= len(self.slots) else None
            return slot if slot and slot.pack and slot.reserved is None else None
        return self.ready_slot()

    def can_swap(self, token: str) -> bool:
        return (
            self.bay is not None and self.bay.token == token and not self.swapping
            and any(s.pack is None and not s.faulted and s.reserved is None for s in self.slots)
            and self.ready_slot(token) is not None
        )  # fmt: skip

    async def arrive(self, vehicle: Vehicle, *, timeout: float = 120.0) -> Pack | None:
        """A vehicle parks at the bay and presents its idToken; returns the pack it leaves with."""
        if self.bay is not None:
            raise RuntimeError(f"station {self.ident}: the bay is taken")
        vehicle.done = asyncio.get_running_loop().create_future()
        self.bay = vehicle
        started = time.perf_counter()
        try:
            answer = await self._send(call.Authorize(id_token={"idToken": vehicle.token, "type": "Central"}))
            if answer is None or answer.id_token_info["status"] != "Accepted":
                return None
            got = await asyncio.wait_for(vehicle.done, timeout)
            vehicle.flow_s = time.perf_counter() - started
            return got
        finally:
            if self.bay is vehicle:
                self.bay = None

    async def swap(self, request_id: int) -> None:
        vehicle = self.bay
        if vehicle is None or self.swapping:
            return
        self.swapping = True
        try:
            half = self.layout.mechanical_s / 2 / self.speed
            steps = ["In", "Out"] if self.layout.swap_order == "In-Out" else ["Out", "In"]
            for step in steps:
                robot = time.perf_counter()
                await asyncio.sleep(half)
                vehicle.robot_s += time.perf_counter() - robot
                if self.bay is not vehicle:  # rebooted in between
                    return
                if step == "In":
                    await self._battery_in(vehicle, request_id)
                elif not await self._battery_out(vehicle, request_id):
                    if vehicle.done and not vehicle.done.done():
                        vehicle.done.set_result(None)
                    return
            if vehicle.done and not vehicle.done.done():
                vehicle.done.set_result(vehicle.got)
        finally:
            self.swapping = False

    async def _battery_in(self, vehicle: Vehicle, request_id: int) -> None:
        slot = next(s for s in self.slots if s.pack is None and not s.faulted and s.reserved is None)
        slot.pack = vehicle.pack
        await self._send(
            call.BatterySwap(
                battery_data=[battery_data(slot.evse, vehicle.pack.serial, round(vehicle.pack.soc, 2), round(vehicle.pack.soh, 2))],
                event_type="BatteryIn", id_token={"idToken": vehicle.token, "type": "Central"}, request_id=request_id,
            )
        )  # fmt: skip
        await self.status(slot)

    async def _battery_out(self, vehicle: Vehicle, request_id: int) -> bool:
        slot = self.ready_slot(vehicle.token)
        if slot is None or slot.pack is None:
            return False
        pack = slot.pack
        if not vehicle.takes_pack:
            await asyncio.sleep(self.out_timeout_s / self.speed)
            await self._send(
                call.BatterySwap(
                    battery_data=[battery_data(slot.evse, pack.serial, round(pack.soc, 2), round(pack.soh, 2))],
                    event_type="BatteryOutTimeout", id_token={"idToken": vehicle.token, "type": "Central"}, request_id=request_id,
                )
            )  # fmt: skip
            if vehicle.done and not vehicle.done.done():
                vehicle.done.set_result(None)
            return False
        slot.pack = None
        slot.reserved = slot.reserved_for = slot.reserved_until = None
        vehicle.got = pack
        await self._send(
            call.BatterySwap(
                battery_data=[battery_data(slot.evse, pack.serial, round(pack.soc, 2), round(pack.soh, 2))],
                event_type="BatteryOut", id_token={"idToken": vehicle.token, "type": "Central"}, request_id=request_id,
            )
        )  # fmt: skip
        await self.status(slot)
        return True

    async def firmware_status(self, status: str, request_id: int = 1) -> None:
        await self._send(call.FirmwareStatusNotification(status=status, request_id=request_id))


def client_tls(ca: str, cert: str | None = None, key: str | None = None) -> ssl.SSLContext:
    """TLS for a station: the CSMS's CA, and for profile 3 the station's own certificate."""
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx
