"""Automations as a hub component: the engine on the hub's broker, the cabin's policy (grants,
driving state, event log) when there is one, the hub's SQLite file, and the REST group."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anycar.automations.engine import Engine
from anycar.automations.source import Problem
from anycar.automations.store import Store

if TYPE_CHECKING:
    from anycar.hub.hub import Hub


def examples_dir() -> Path:
    """The shipped examples (``data/examples``), which the demo loads."""
    return Path(str(resources.files("anycar.automations").joinpath("data/examples")))


class AutomationsComponent:
    name = "automations"

    def __init__(
        self,
        sources: list[Path],
        *,
        db_path: Path | None = None,
        brand: str | None = None,
        traces_kept: int = 20,
    ) -> None:
        self.sources = sources
        self.db_path = db_path
        self.brand = brand
        self.traces_kept = traces_kept
        self.engine: Engine | None = None
        self.supervisor: Any = None
        self.problems: list[Problem] = []

    async def start(self, hub: Hub) -> None:
        cabin = next((c for c in hub.components if c.name == "cabin"), None)
        policy = getattr(cabin, "policy", None)
        db = self.db_path if self.db_path is not None else getattr(cabin, "db_path", None)
        store = Store(db, traces_per_automation=self.traces_kept)
        # the hub's supervisor, where it has one: our tasks, our database's health and our figures
        # then show in /api/v1/info with everyone else's
        self.supervisor = getattr(hub, "supervisor", None)
        self.engine = Engine(
            hub.broker,
            store=store,
            policy=policy,
            brand=self.brand,
            traces_kept=self.traces_kept,
            supervisor=self.supervisor,
            clock=getattr(hub, "clock", None),
        )
        if self.supervisor is not None:
            supervisor = self.supervisor
            if store.failure is not None:
                supervisor.report("automations-database", store.failure)
            store.on_change = lambda error: supervisor.report("automations-database", error)
            supervisor.add_probe("automations", self.engine.health)
        self.engine.load_rest_definitions()
        self.problems = self.engine.load_paths(self.sources)
        await self.engine.start()
        if not any(g.name == "automations" for g in hub.rest.groups):  # a restarted hub keeps its routes
            from anycar.automations.rest import rest_group

            hub.add_rest_group(rest_group(self))

    async def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.remove_probe("automations")
        if self.engine is not None:
            await self.engine.stop()
            self.engine.store.close()

    def summary(self) -> dict[str, Any]:
        engine = self.engine
        if engine is None:
            return {"automations": 0}
        return engine.health()
