"""Supervision of background work: no task the hub or a component starts may die silently.

Every long-lived task (the policy engine, heartbeat watch, CAN sources, simulator, history ...)
runs under a ``Supervisor``: a crash is logged with its traceback, counted, kept as the task's
last error, and the task is started again after a back-off that doubles up to a cap (and resets
once the task has run well for a while). Stores that fail without a task of their own (the event
log's writer, a trust-store watch) ``report`` their failures here too, so that one ``health()``
answers "what is wrong with this hub right now" for ``/api/v1/info``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

TaskFactory = Callable[[], Awaitable[Any]]


@dataclass
class TaskHealth:
    """What the supervisor knows about one task or store."""

    name: str
    state: str = "running"  # running, restarting, finished, stopped, failed (stores: ok, failing)
    restarts: int = 0
    failures: int = 0
    last_error: str | None = None
    last_error_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "restarts": self.restarts,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }


class Supervised:
    """Handle of one supervised task: ``await stop()`` ends it for good."""

    def __init__(self, supervisor: Supervisor, name: str, factory: TaskFactory, restart: bool) -> None:
        self.supervisor = supervisor
        self.name = name
        self.health = TaskHealth(name)
        self._factory = factory
        self._restart = restart
        self._stopping = False
        self.task: asyncio.Task[None] = asyncio.get_running_loop().create_task(self._run(), name=name)

    async def _run(self) -> None:
        sup = self.supervisor
        delay = sup.backoff_initial_s
        while True:
            started = time.monotonic()
            self.health.state = "running"
            try:
                await self._factory()
            except asyncio.CancelledError:
                self.health.state = "stopped"
                raise
            except Exception as exc:  # the point of a supervisor: any failure is caught here
                self.health.failures += 1
                self.health.last_error = f"{type(exc).__name__}: {exc}"
                self.health.last_error_at = time.time()
                if not self._restart or self._stopping:
                    self.health.state = "failed"
                    log.exception("background task %s failed (not restarted)", self.name)
                    return
                if time.monotonic() - started > sup.healthy_after_s:
                    delay = sup.backoff_initial_s
                self.health.state = "restarting"
                log.exception(
                    "background task %s failed; restart %d in %.1f s",
                    self.name,
                    self.health.restarts + 1,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, sup.backoff_max_s)
                self.health.restarts += 1
                continue
            self.health.state = "finished"
            return

    async def stop(self, *, cancel: bool = True) -> None:
        """End the task for good; ``cancel=False`` waits for an end the caller has asked for."""
        self._stopping = True
        if cancel:
            self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.health.state = "stopped"
        self.supervisor._forget(self)


class Supervisor:
    def __init__(
        self, *, backoff_initial_s: float = 0.1, backoff_max_s: float = 30.0, healthy_after_s: float = 60.0
    ) -> None:
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.healthy_after_s = healthy_after_s
        self._tasks: dict[str, Supervised] = {}
        self._stores: dict[str, TaskHealth] = {}
        self._watched: dict[str, TaskHealth] = {}
        self._probes: dict[str, Callable[[], dict[str, Any]]] = {}

    def spawn(self, name: str, factory: TaskFactory, *, restart: bool = True) -> Supervised:
        """Run ``factory()`` as a task named ``name``; restart it after a crash unless told not to.

        ``factory`` is called again for each restart, so it must build a fresh coroutine that
        picks up where the state it works on is now (a subscription, a socket)."""
        old = self._tasks.get(name)
        if old is not None and not old.task.done():
            raise RuntimeError(f"a background task named {name!r} is already running")
        handle = Supervised(self, name, factory, restart)
        self._tasks[name] = handle
        return handle

    def watch(self, name: str, task: asyncio.Task[Any]) -> None:
        """Keep an eye on a task started elsewhere: its crash is logged and shown in the health."""
        entry = self._watched.setdefault(name, TaskHealth(name, state="running"))
        entry.state = "running"

        def ended(done: asyncio.Task[Any]) -> None:
            if done.cancelled():
                entry.state = "stopped"
                return
            exc = done.exception()
            if exc is None:
                entry.state = "finished"
                return
            entry.state = "failed"
            entry.failures += 1
            entry.last_error = f"{type(exc).__name__}: {exc}"
            entry.last_error_at = time.time()
            log.error("background task %s failed", name, exc_info=exc)

        task.add_done_callback(ended)

    def _forget(self, handle: Supervised) -> None:
        if self._tasks.get(handle.name) is handle:
            del self._tasks[handle.name]

    def report(self, name: str, error: BaseException | str | None) -> None:
        """A store without a task says how it is: ``error=None`` means it works again."""
        entry = self._stores.setdefault(name, TaskHealth(name, state="ok"))
        if error is None:
            entry.state = "ok"
            return
        entry.state = "failing"
        entry.failures += 1
        entry.last_error = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        entry.last_error_at = time.time()

    def add_probe(self, name: str, probe: Callable[[], dict[str, Any]]) -> None:
        """Add a component's own figures (the event log's queue, drops) under ``name``."""
        self._probes[name] = probe

    def remove_probe(self, name: str) -> None:
        self._probes.pop(name, None)

    def task(self, name: str) -> TaskHealth | None:
        handle = self._tasks.get(name)
        return handle.health if handle is not None else None

    def health(self) -> dict[str, Any]:
        tasks = [h.health.to_dict() for h in self._tasks.values()]
        watched = [w.to_dict() for w in self._watched.values()]
        stores = [s.to_dict() for s in self._stores.values()]
        probes: dict[str, Any] = {}
        for name, probe in list(self._probes.items()):
            try:
                probes[name] = probe()
            except Exception as exc:  # a broken probe must not break /info
                probes[name] = {"error": f"{type(exc).__name__}: {exc}"}
        ok = (
            all(t["state"] in ("running", "finished") for t in tasks)
            and all(w["state"] != "failed" for w in watched)
            and all(s["state"] == "ok" for s in stores)
        )
        return {
            "ok": ok,
            "tasks": tasks,
            "watched": watched,
            "stores": stores,
            **({"details": probes} if probes else {}),
        }


def log_task_failure(task: asyncio.Task[Any]) -> None:
    """Done-callback for short per-connection tasks: a crash is logged, never 'never retrieved'."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("task %s failed: %s: %s", task.get_name(), type(exc).__name__, exc, exc_info=exc)
