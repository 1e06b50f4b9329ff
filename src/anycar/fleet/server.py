"""What ``anycar fleet serve`` and ``anycar fleet ingest`` run: the database (migrated on start),
N ingest workers, and with ``serve`` the REST API with its live feed and the OsmAnd listener.

Each part is a fleet component (``name``, ``start()``, ``stop()``), started in order and
stopped in reverse; the ready line printed by the command carries the bound ports.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route

from anycar.fleet.api import fleet_api
from anycar.fleet.console import ConsoleConfig, console_app
from anycar.fleet.db import make_engine
from anycar.fleet.domain import DomainPipeline
from anycar.fleet.ingest import GROUP, IngestWorker
from anycar.fleet.keys import load_or_create
from anycar.fleet.live import LiveFeed
from anycar.fleet.livebus import NotifyListener, NotifyPublisher
from anycar.fleet.maintenance import Maintenance
from anycar.fleet.migrate import upgrade
from anycar.fleet.offline import OfflineChecker
from anycar.fleet.osmand import osmand_app
from anycar.fleet.sender import CommandSender
from anycar.fleet.store import Store
from anycar.fleet.trips import load_trip_config
from anycar.fleet.webhooks import WebhookSender
from anycar.http_listener import HttpListener
from anycar.logistics.room import LogisticsRoom
from anycar.wire import signature


def paths_of(routes: list[Any], *prefixes: str) -> dict[str, Any]:
    """ops-console: OpenAPI entries for the rooms' routes (the console shows a page only when the
    server lists its routes in /openapi.json): one operation per method, the route's docstring."""
    out: dict[str, Any] = {}
    for route in routes:
        path = getattr(route, "path", "")
        if not path.startswith(prefixes):
            continue
        for method in sorted(getattr(route, "methods", None) or ()):
            if method == "HEAD":
                continue
            out.setdefault(path, {})[method.lower()] = {
                "summary": (route.endpoint.__doc__ or route.name or path).strip().split("\n")[0],
                "security": [{"bearer": []}],
                "responses": {"200": {"description": "JSON"}},
            }
    return out


class Component(Protocol):
    name: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass
class FleetConfig:
    db_url: str | None = None
    mqtt: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    workers: int = 1
    worker_id: str = ""  # stable across restarts: it names the broker sessions; default: host name
    group: str = GROUP
    vehicles: list[str] = field(default_factory=lambda: ["+"])
    host: str = "127.0.0.1"
    api_port: int | None = 8090  # None: no API (``anycar fleet ingest``)
    osmand_port: int | None = 5055
    live: str = "auto"  # auto: across processes by LISTEN/NOTIFY on PostgreSQL, in-process on SQLite
    maintenance_s: float | None = 300.0  # partitions ahead, retention, dedup pruning; None: off
    offline_check_s: float = 30.0  # how often the offline checker runs
    # fleet-commands: the key that signs commands (default ~/.local/share/anycar/fleet-signing.pem);
    # with ``send_commands`` the server also publishes pending commands (``serve`` does)
    signing_key: Path | None = None
    send_commands: bool = True
    # swap stations (anycar.swap): the OCPP 2.1 CSMS; None: not served
    ocpp_port: int | None = None
    ocpp_cert: str | None = None  # TLS (security profiles 2 and 3); without it plain ws:// (development only)
    ocpp_key: str | None = None
    ocpp_client_ca: str | None = None  # verifies profile-3 stations' client certificates
    dashboard_url: str | None = None  # fleet-console: a vehicle's cabin dashboard, "{vehicle}", "{vin}"
    trips_file: str | None = None  # trips.yaml (default: the packaged one)
    eta_interval_s: float | None = None  # delivery-exec: live ETA pass (None: logistics data/execution.yaml)
    route_repush_s: float | None = None  # expired routes pushed again (None: logistics data/execution.yaml)
    clock: Callable[[], float] | None = (
        None  # tests, simulations: the logistics console's and the CSMS's "now"
    )
    # demo-route: the logistics room's own "now" when it differs from the CSMS's (a simulated
    # delivery day whose stations speak wall time): failures and their retry times, outcomes
    logistics_clock: Callable[[], float] | None = None


def broker_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ValueError(f"--mqtt {url!r}: must look like mqtt://HOST:PORT")
    return parts.hostname, parts.port or 1883


class _Http:
    def __init__(self, name: str, listener: HttpListener) -> None:
        self.name, self.listener = name, listener

    async def start(self) -> None:
        await self.listener.start()

    async def stop(self) -> None:
        await self.listener.stop()


class FleetServer:
    def __init__(self, cfg: FleetConfig) -> None:
        self.cfg = cfg
        host, port = broker_address(cfg.mqtt)
        self.engine = make_engine(cfg.db_url)
        self.store = Store(self.engine)
        self.live = LiveFeed()
        if cfg.live not in ("auto", "local", "postgres"):
            raise ValueError(f"live: {cfg.live!r} is not auto, local or postgres")
        bus = cfg.live == "postgres" or (cfg.live == "auto" and self.engine.dialect.name == "postgresql")
        self.notify = NotifyPublisher(self.engine) if bus else None  # workers -> every API process
        self.listener = NotifyListener(self.engine, self.live) if bus and cfg.api_port is not None else None
        worker_live: Any = self.notify or self.live
        # the domain: webhooks, trips/geofences/rules after each commit, the offline checker
        self.webhooks = WebhookSender(self.engine)
        self.domain = DomainPipeline(
            self.store,
            live=worker_live,
            notifier=self.webhooks,
            cfg=load_trip_config(Path(cfg.trips_file)) if cfg.trips_file else None,
        )
        self.offline = OfflineChecker(
            self.engine, interval_s=cfg.offline_check_s, live=worker_live, notifier=self.webhooks
        )
        base = cfg.worker_id or f"anycar-ingest-{socket.gethostname()}-{os.getuid()}"
        self.workers = [
            IngestWorker(
                self.store,
                host=host,
                port=port,
                username=cfg.mqtt_username,
                password=cfg.mqtt_password,
                worker_id=f"{base}-{i}",
                group=cfg.group,
                vehicles=cfg.vehicles,
                live=worker_live,
            )
            for i in range(cfg.workers)
        ]
        self.sender: CommandSender | None = None
        if cfg.send_commands and cfg.api_port is not None:
            self.sender = CommandSender(
                self.engine,
                load_or_create(cfg.signing_key),
                host=host,
                port=port,
                username=cfg.mqtt_username,
                password=cfg.mqtt_password,
                client_id=f"{base}-commands",
            )
        app = fleet_api(
            self.store,
            self.live,
            self.sender.wake if self.sender else None,
            webhooks_changed=self.webhooks.forget,
            domain_status=self.domain_status,
        )
        self.logistics = LogisticsRoom(  # logistics: orders, plans, re-dispatch
            self.engine, self.sender.wake if self.sender else None
        )
        self.logistics.notifier = self.webhooks  # delivery-exec
        self.logistics.csms = lambda: self.csms  # a plan's swap stops: their reservations at accept
        app.router.routes.extend(self.logistics.routes())
        # ops-console: the console's logistics routes (board, plan, move, outcome, day report)
        from anycar.logistics.console_api import console_logistics_routes

        day_clock = cfg.logistics_clock or cfg.clock or time.time  # demo-route: the delivery day's "now"
        self.logistics.clock = day_clock
        app.router.routes.extend(
            console_logistics_routes(
                self.engine, day_clock, lambda: self.csms, self.sender.wake if self.sender else None
            )
        )
        app.state.openapi["paths"].update(
            paths_of(
                app.router.routes,
                "/api/orders",
                "/api/plans",
                "/api/logistics",
                "/api/deliveries",
                "/api/pods",
            )
        )
        # fleet-console: the operator's web app beside the API, on the same origin
        app.router.routes.extend(
            [
                Route("/", lambda request: RedirectResponse("/console/")),
                Mount("/console", app=console_app(ConsoleConfig(dashboard_url=cfg.dashboard_url))),
            ]
        )
        # delivery-exec: proofs of delivery judged in the ingest's transaction; live ETAs
        from anycar.logistics.execution import EtaComponent, PodJudge, PodOutbox, RouteKeeper
        from anycar.logistics.service import provider as matrix_provider

        self.pods = PodJudge(clock=day_clock)  # demo-route: a failure's time, its retry from it
        self.store.handlers["pod"] = self.pods
        # logistics-rest: the POD webhooks, written in the POD's transaction, sent once after it
        self.pod_outbox = PodOutbox(self.engine, self.webhooks)
        self.store.after_commit.append(self.pod_outbox.wake)
        self.eta = EtaComponent(self.engine, matrix_provider(), self.webhooks, cfg.eta_interval_s)
        self.route_keeper = RouteKeeper(  # a route that expired on an offline hub, sent again
            self.engine, self.sender.wake if self.sender else None, cfg.route_repush_s
        )
        self.api = HttpListener(
            app,
            cfg.host,
            cfg.api_port or 0,
            what="the fleet API",
            force_exit=True,
        )
        self.osmand = HttpListener(
            osmand_app(self.store, worker_live),
            cfg.host,
            cfg.osmand_port or 0,
            what="OsmAnd",
            force_exit=True,
        )
        self.components: list[Any] = [
            *([self.notify] if self.notify else []),
            self.webhooks,
            self.domain,
            self.offline,
            *self.workers,
        ]
        if self.listener is not None:
            self.components.append(self.listener)
        self.maintenance = Maintenance(self.engine, interval_s=cfg.maintenance_s or 300.0)
        if cfg.maintenance_s is not None:
            self.components.insert(0, self.maintenance)
        if self.sender is not None:
            self.components.append(self.sender)
        self.components.append(self.logistics)
        self.components.append(self.eta)  # delivery-exec
        self.components.append(self.route_keeper)
        self.components.append(self.pod_outbox)  # logistics-rest
        if cfg.api_port is not None:
            self.components.append(_Http("api", self.api))
        if cfg.osmand_port is not None:
            self.components.append(_Http("osmand", self.osmand))
        self.csms: Any = None
        if cfg.ocpp_port is not None:
            from anycar.swap.csms import Csms, server_tls

            tls = (
                server_tls(cfg.ocpp_cert, cfg.ocpp_key, cfg.ocpp_client_ca)
                if cfg.ocpp_cert and cfg.ocpp_key
                else None
            )
            self.csms = Csms(
                self.engine,
                host=cfg.host,
                port=cfg.ocpp_port,
                ssl_context=tls,
                migrate=True,
                clock=cfg.clock or time.time,  # a station's day is the room's
            )
            self.components.append(self.csms)
            # logistics: the plan in force's reservation changes left pending (a CLI accept, a
            # failed change) settled through this CSMS, the changed routes pushed
            from anycar.logistics.swapsettle import SwapSettler

            self.settler = SwapSettler(
                self.engine, self.csms, day_clock, self.sender.wake if self.sender else None
            )
            self.components.append(self.settler)
            # swap-vehicle: the pack the vehicle reports against what the station handed out
            from anycar.swap.reconcile import PackReconciler

            self.packs = PackReconciler(self.engine, self.webhooks)
            self.store.after_commit.append(self.packs.on_commit)
            self.components.append(self.packs)
            # ops-console: the console's station routes (stations, sites, battery passport)
            from anycar.swap.console_api import swap_console_routes

            app.router.routes.extend(swap_console_routes(self.engine, cfg.clock or time.time, self.csms))
            app.state.openapi["paths"].update(paths_of(app.router.routes, "/api/stations", "/api/packs"))
        self._started: list[Any] = []

    async def start(self) -> None:
        upgrade(self.engine)
        for component in self.components:
            await component.start()
            self._started.append(component)

    async def stop(self) -> None:
        while self._started:
            await self._started.pop().stop()
        self.engine.dispose()

    def domain_status(self) -> dict[str, Any]:
        """The domain's components in this process: is each running, how often did it fail."""
        return {
            "domain": self.domain.status(),
            "offline": self.offline.status(),
            "webhooks": self.webhooks.status(),
        }

    def ready(self) -> dict[str, Any]:
        return {
            "db": self.engine.url.render_as_string(hide_password=True),
            "mqtt": self.cfg.mqtt,
            "workers": [w.worker_id for w in self.workers],
            "api": f"http://{self.cfg.host}:{self.api.port}" if self.cfg.api_port is not None else None,
            # fleet-commands: the key hubs must trust (uplink.fleet_keys), when this server sends commands
            "fleet_key": signature.key_id(self.sender.key) if self.sender is not None else None,
            "console": f"http://{self.cfg.host}:{self.api.port}/console/"
            if self.cfg.api_port is not None
            else None,
            "osmand": f"http://{self.cfg.host}:{self.osmand.port}"
            if self.cfg.osmand_port is not None
            else None,
            "ocpp": self.csms.url if self.csms is not None else None,
        }
