"""A stand-in hub for the dashboard's browser tests, until the real hub is integrated.

Real parts: the signal broker, the VSS catalog (with a test overlay for accessory signals), the
vehicle simulator feeding the broker, and the dashboard app. Stand-in parts: the REST
endpoints answer from the example JSON in ``tests/data/dashboard/`` (the shapes of
docs/dashboard.md), and ``/viss`` speaks just the VISS v2 subset the page uses (get, set,
subscribe, unsubscribe, no filters or tokens). At integration the tests point at the hub instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

import anycar.dashboard
from anycar.broker import ActuationRequest, SignalBroker
from anycar.errors import AnycarError
from anycar.model import Catalog, load_overlay
from anycar.model.datatypes import ValueRejected, parse_text, to_text
from anycar.sim.runner import BrokerSink, SimulationRunner
from anycar.sim.simulator import IGNITION, SELECTED_GEAR, SPEED, Simulator
from anycar.sim.status import driving_state

DATA = Path(__file__).parent / "data" / "dashboard"
RESTRICTIONS = {
    "parked": [],
    "idling": ["NO_VIDEO"],
    "moving": ["NO_VIDEO", "NO_KEYBOARD", "NO_CONFIG", "LIMIT_STRING_LENGTH"],
}
ACCESSORY_START = {
    "Vehicle.Cabin.Light.AmbientLight.Row1.DriverSide.IsLightOn": False,
    "Vehicle.Cabin.Light.AmbientLight.Row1.DriverSide.Color": "#FFB347",
    "Vehicle.Cabin.Light.AmbientLight.Row1.DriverSide.Intensity": 60,
    "Vehicle.Accessories.Fan1.FanSpeed": 40,
    "Vehicle.Accessories.Fragrance1.Level": 30,
    "Vehicle.Accessories.Fragrance1.Scent": "CEDAR",
    "Vehicle.Accessories.Cooler1.IsOn": True,
    "Vehicle.Accessories.Cooler1.TargetTemperature": 4.0,
    "Vehicle.Accessories.Cooler1.Temperature": 5.2,
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(number: int, reason: str, message: str) -> dict[str, str]:
    return {"number": str(number), "reason": reason, "message": message}


class StandInHub:
    def __init__(self, speedup: float = 10.0, seed: int = 1) -> None:
        catalog = Catalog.load_default()
        catalog.apply_overlay(load_overlay(DATA / "overlay.yaml"))
        self.broker = SignalBroker(catalog)
        self.sim = Simulator.for_profile("kaiyun_pickman", seed=seed, dt=0.5)
        self.sink = BrokerSink(self.broker, self.sim)
        self.accessories = self.broker.register_provider(
            "test-accessories", list(ACCESSORY_START), on_actuate=self._accessory_actuate
        )
        self.accessories.publish_many(ACCESSORY_START.items())
        self.runner = SimulationRunner(self.sim, [self.sink], speedup=speedup)
        self.actuations: list[tuple[str, Any]] = []

    def _accessory_actuate(self, request: ActuationRequest) -> None:
        # A well-behaved accessory: it takes the value and reports it back.
        self.actuations.append((request.path, request.value))
        self.accessories.publish(request.path, request.value)

    # -- REST --------------------------------------------------------------------------------
    @staticmethod
    def _fixture(name: str) -> Any:
        return json.loads((DATA / f"{name}.json").read_text("utf-8"))

    async def vehicle(self, request: Request) -> JSONResponse:
        return JSONResponse(self._fixture("vehicle"))

    async def accessories_list(self, request: Request) -> JSONResponse:
        return JSONResponse(self._fixture("accessories"))

    async def events(self, request: Request) -> JSONResponse:
        return JSONResponse(self._fixture("events"))

    async def driving(self, request: Request) -> JSONResponse:
        def value(path: str) -> Any:
            dp = self.broker.get(path)
            return None if dp is None else dp.value

        state = driving_state(value(SPEED), value(SELECTED_GEAR), value(IGNITION))
        return JSONResponse({"state": state, "restrictions": RESTRICTIONS[state], "affected": []})

    async def signals(self, request: Request) -> JSONResponse:
        pattern = request.query_params.get("pattern", "Vehicle.**")
        try:
            found = self.broker.catalog.resolve(pattern)
        except AnycarError as exc:
            return JSONResponse({"error": exc.reason, "message": str(exc)}, status_code=exc.code)
        return JSONResponse({"signals": [{"path": s.path, **s.metadata()} for s in found]})

    # -- VISS v2 subset -----------------------------------------------------------------------
    async def viss(self, ws: WebSocket) -> None:
        await ws.accept(subprotocol="VISSv2")
        subs: dict[str, asyncio.Task[None]] = {}
        next_id = 0
        send_lock = asyncio.Lock()

        async def send(msg: dict[str, Any]) -> None:
            async with send_lock:
                await ws.send_text(json.dumps(msg))

        async def forward(sid: str, path: str) -> None:
            sub = self.broker.subscribe([path])
            try:
                while True:
                    for dp in await sub.get():
                        if dp.value is None:
                            continue
                        ts = datetime.fromtimestamp(dp.timestamp, UTC).isoformat(timespec="milliseconds")
                        await send(
                            {
                                "action": "subscription",
                                "subscriptionId": sid,
                                "data": {"path": dp.path, "dp": {"value": to_text(dp.value), "ts": ts}},
                                "ts": _now(),
                            }
                        )
            finally:
                sub.close()

        try:
            while True:
                msg = json.loads(await ws.receive_text())
                action, rid, path = msg.get("action"), msg.get("requestId"), msg.get("path")
                base = {"action": action, "requestId": rid}
                try:
                    if action == "get":
                        dp = self.broker.get(path)
                        if dp is None or dp.value is None:
                            await send({**base, "error": _error(404, "unavailable_data", path), "ts": _now()})
                            continue
                        data = {"path": path, "dp": {"value": to_text(dp.value), "ts": _now()}}
                        await send({**base, "data": data, "ts": _now()})
                    elif action == "set":
                        sig = self.broker.catalog.get(path)
                        value = parse_text(sig.datatype, msg.get("value"))
                        result = await self.broker.actuate(path, value)
                        if result.status.name == "ACCEPTED":
                            await send({**base, "ts": _now()})
                        else:
                            await send(
                                {**base, "error": _error(400, "bad_request", result.reason), "ts": _now()}
                            )
                    elif action == "subscribe":
                        self.broker.catalog.resolve(path)
                        next_id += 1
                        sid = str(next_id)
                        await send({**base, "subscriptionId": sid, "ts": _now()})
                        subs[sid] = asyncio.create_task(forward(sid, path))
                    elif action == "unsubscribe":
                        sid = str(msg.get("subscriptionId"))
                        task = subs.pop(sid, None)
                        if task:
                            task.cancel()
                        await send({**base, "subscriptionId": sid, "ts": _now()})
                    else:
                        await send({**base, "error": _error(400, "bad_request", f"unknown action {action}")})
                except AnycarError as exc:
                    await send({**base, "error": _error(exc.code, exc.reason, str(exc)), "ts": _now()})
                except ValueRejected as exc:
                    await send({**base, "error": _error(400, "bad_request", str(exc)), "ts": _now()})
        except WebSocketDisconnect:
            pass
        finally:
            for task in subs.values():
                task.cancel()

    def app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            task = asyncio.create_task(self.runner.run())
            yield
            self.runner.stop()
            await asyncio.wait_for(task, 5)

        api = [
            Route("/vehicle", self.vehicle),
            Route("/accessories", self.accessories_list),
            Route("/events", self.events),
            Route("/driving-state", self.driving),
            Route("/signals", self.signals),
        ]
        return Starlette(
            routes=[
                Mount("/api", routes=api),
                WebSocketRoute("/viss", self.viss),
                Mount("/", anycar.dashboard.app()),
            ],
            lifespan=lifespan,
        )
