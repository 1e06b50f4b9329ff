"""The composition root: one broker, the API servers, and the components plugged into them.

Components are whatever feeds or uses the broker from outside the API layer: brand/CAN
adapters, accessories, the simulator, automations. Each has ``name``, ``async start(hub)`` and
``async stop()``; while starting it may register REST route groups with
``hub.add_rest_group`` (brand profile, mount points, accessories, grants ...) and start its
background tasks with ``hub.supervisor.spawn`` (logged, restarted with back-off, and shown in
``info()['health']``: no task dies silently). Components start
in the order they were added, before the servers, and stop in reverse order after them, so no
client ever talks to a half-built hub.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol, runtime_checkable

from anycar import __version__
from anycar.api.auth import Authorizer
from anycar.api.grpc import GrpcServer
from anycar.api.rest import HttpServer, RestApi, RouteGroup, core_group
from anycar.api.viss import VissService, VissWebSocketServer
from anycar.api.viss.http import routes as viss_http_routes
from anycar.broker import SignalBroker
from anycar.clock import WALL, Clock
from anycar.errors import ConfigError
from anycar.hub.config import HubConfig
from anycar.model import VSS_VERSION, Catalog
from anycar.supervisor import Supervisor

log = logging.getLogger(__name__)


@runtime_checkable
class Component(Protocol):
    name: str

    async def start(self, hub: Hub) -> None: ...

    async def stop(self) -> None: ...


class Hub:
    def __init__(self, config: HubConfig | None = None, *, catalog: Catalog | None = None) -> None:
        self.config = config or HubConfig()
        self.config.check()
        self.broker = SignalBroker(catalog, actuation_timeout=self.config.actuation_timeout_s)
        self.authorizer = Authorizer.from_file(
            self.config.token_public_key,
            audience=self.config.token_audience,
            issuer=self.config.token_issuer,
            catalog=self.broker.catalog,  # scopes are sets of this catalog's signals
        )
        self.rest = RestApi(self.authorizer)
        self.viss = VissService(self.broker, self.authorizer, self.config.limits)
        self.components: list[Component] = []
        # Every background task of the hub and its components runs under this (see start()).
        self.supervisor = Supervisor()
        # The clock the car lives on, for components that measure time about it (automations,
        # the policy's courtesy lighting): the wall clock, or the simulator's (build_hub).
        self.clock: Clock = WALL
        self.grpc: GrpcServer | None = None
        self.viss_ws: VissWebSocketServer | None = None
        self.http: HttpServer | None = None
        self.started_at: float | None = None
        self._started: list[Component] = []
        self._running = False

    # -- assembly ----------------------------------------------------------------------------
    def add_component(self, component: Component) -> None:
        if self._running:
            raise ConfigError(f"component {component.name!r} added after the hub started")
        if any(c.name == component.name for c in self.components):
            raise ConfigError(f"a component named {component.name!r} is already plugged in")
        self.components.append(component)

    def add_rest_group(self, group: RouteGroup) -> None:
        if self.http is not None:
            raise ConfigError(f"REST group {group.name!r} registered after the HTTP server started")
        self.rest.add_group(group)

    # -- life cycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start components, then servers; on any failure stop what already started."""
        if self._running:
            return
        self._running = True
        try:
            for component in self.components:
                await component.start(self)
                self._started.append(component)
            cfg = self.config
            cert = str(cfg.tls_cert) if cfg.tls_cert else None
            key = str(cfg.tls_key) if cfg.tls_key else None
            if cfg.ports.get("viss") is not None or cfg.ports.get("http") is not None:
                self.viss.start_history()
                if self.viss.history is not None and self.viss.history._task is not None:
                    self.supervisor.watch("viss-history", self.viss.history._task)
            if cfg.ports.get("grpc") is not None:
                self.grpc = GrpcServer(
                    self.broker,
                    self.authorizer,
                    host=cfg.host,
                    port=cfg.ports["grpc"] or 0,
                    tls_cert=cert,
                    tls_key=key,
                    max_update_age_s=cfg.limits.max_update_age_s,
                )
                await self.grpc.start()
            if cfg.ports.get("viss") is not None:
                self.viss_ws = VissWebSocketServer(
                    self.viss, host=cfg.host, port=cfg.ports["viss"] or 0, tls_cert=cert, tls_key=key
                )
                await self.viss_ws.start()
            if cfg.ports.get("http") is not None:
                if not any(g.name == "hub" for g in self.rest.groups):
                    self.rest.add_group(core_group(self.broker, self.info))
                    self.rest.add_routes(viss_http_routes(self.viss))
                self.http = HttpServer(
                    self.rest.app(), cfg.host, cfg.ports["http"] or 0, tls_cert=cert, tls_key=key
                )
                await self.http.start()
                if self.http._task is not None:  # a server loop that ends on its own shows in health
                    self.supervisor.watch("http-server", self.http._task)
            self.started_at = time.time()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Servers first (clients see the end), then components in reverse order."""
        for server in (self.http, self.viss_ws, self.grpc):
            if server is not None:
                try:
                    await server.stop()
                except Exception:
                    log.exception("stopping %s failed", type(server).__name__)
        self.http = self.viss_ws = self.grpc = None
        if self.viss.history is not None:
            await self.viss.history.stop()
            self.viss.history = None
        while self._started:
            component = self._started.pop()
            try:
                await component.stop()
            except Exception:
                log.exception("stopping component %s failed", component.name)
        self._running = False

    async def run(self, stop: asyncio.Event) -> None:
        """Start, wait for ``stop``, stop."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # -- what it looks like from outside --------------------------------------------------------
    def endpoints(self) -> dict[str, str]:
        host = self.config.host
        out: dict[str, str] = {}
        if self.grpc is not None:
            out["grpc"] = f"{'grpcs' if self.config.tls_cert else 'grpc'}://{host}:{self.grpc.port}"
        if self.viss_ws is not None:
            out["viss"] = f"{self.viss_ws.scheme}://{host}:{self.viss_ws.port}"
        if self.http is not None:
            out["http"] = f"{self.http.scheme}://{host}:{self.http.port}"
        for component in self._started:
            more = getattr(component, "endpoints", None)
            if more is not None:
                out.update(more())
        return out

    def info(self) -> dict[str, Any]:
        return {
            "name": "anycar-hub",
            "version": __version__,
            "vss_version": VSS_VERSION,
            "signals": len(self.broker.catalog),
            "endpoints": self.endpoints(),
            "auth": "jwt" if self.authorizer.enabled else "open (loopback only)",
            "components": [c.name for c in self.components],
            "uptime_s": round(time.time() - self.started_at, 3) if self.started_at else 0.0,
            "health": self.supervisor.health(),
        }
