"""The logistics room as a fleet component: its REST routes, and a start that refuses to run on
broken data files (a vehicle type without a pack size would otherwise fail at the first plan)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from starlette.routing import Route

from anycar.logistics.api import logistics_routes
from anycar.logistics.settings import validate


class LogisticsRoom:
    name = "logistics"

    def __init__(self, engine: Engine, wake: Any = None) -> None:
        self.engine = engine
        self.started = False
        self.wake = wake  # delivery-exec: the command sender's wake, so a pushed route goes at once
        self.notifier: Any = None  # delivery-exec: the webhook sender (the driver page now uses pod_outbox)
        self.csms: Callable[[], Any] = lambda: None  # the swap room's CSMS, when the server runs one
        self.clock: Callable[[], float] = time.time  # the logistics room's "now" (settling reservations)

    def routes(self) -> list[Route]:
        from anycar.logistics.driver_page import driver_routes  # delivery-exec
        from anycar.logistics.execution_api import execution_routes  # delivery-exec

        return (
            logistics_routes(self.engine, self.wake, lambda: self.csms(), lambda: self.clock())
            + execution_routes(self.engine)
            + driver_routes(self.engine)  # its webhooks go through pod_outbox
        )

    async def start(self) -> None:
        problems = validate()
        if problems:
            raise ValueError("logistics data: " + "; ".join(problems))
        self.started = True

    async def stop(self) -> None:
        self.started = False  # nothing held: plans run inside requests
