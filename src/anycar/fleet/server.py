"""What ``anycar fleet serve`` and ``anycar fleet ingest`` run: the database (migrated on start),
N ingest workers, and with ``serve`` the REST API with its live feed and the OsmAnd listener.

Each part is a fleet component (``name``, ``start()``, ``stop()``), started in order and
stopped in reverse; the ready line printed by the command carries the bound ports.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from anycar.fleet.api import fleet_api
from anycar.fleet.db import make_engine
from anycar.fleet.domain import DomainPipeline
from anycar.fleet.ingest import GROUP, IngestWorker
from anycar.fleet.live import LiveFeed
from anycar.fleet.migrate import upgrade
from anycar.fleet.offline import OfflineChecker
from anycar.fleet.osmand import osmand_app
from anycar.fleet.store import Store
from anycar.fleet.trips import load_trip_config
from anycar.fleet.webhooks import WebhookSender
from anycar.http_listener import HttpListener


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
    offline_check_s: float = 30.0  # how often the offline checker runs
    trips_file: str | None = None  # trips.yaml (default: the packaged one)


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
        # the domain: webhooks, trips/geofences/rules after each commit, the offline checker
        self.webhooks = WebhookSender(self.engine)
        self.domain = DomainPipeline(
            self.store,
            live=self.live,
            notifier=self.webhooks,
            cfg=load_trip_config(Path(cfg.trips_file)) if cfg.trips_file else None,
        )
        self.offline = OfflineChecker(
            self.engine, interval_s=cfg.offline_check_s, live=self.live, notifier=self.webhooks
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
                live=self.live,
            )
            for i in range(cfg.workers)
        ]
        self.api = HttpListener(
            fleet_api(
                self.store,
                self.live,
                webhooks_changed=self.webhooks.forget,
                domain_status=self.domain_status,
            ),
            cfg.host,
            cfg.api_port or 0,
            what="the fleet API",
            force_exit=True,
        )
        self.osmand = HttpListener(
            osmand_app(self.store, self.live), cfg.host, cfg.osmand_port or 0, what="OsmAnd", force_exit=True
        )
        self.components: list[Any] = [self.webhooks, self.domain, self.offline, *self.workers]
        if cfg.api_port is not None:
            self.components.append(_Http("api", self.api))
        if cfg.osmand_port is not None:
            self.components.append(_Http("osmand", self.osmand))
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
            "osmand": f"http://{self.cfg.host}:{self.osmand.port}"
            if self.cfg.osmand_port is not None
            else None,
        }
