"""The automation engine: definitions in, triggers indexed by signal, runs out.

One broker subscription covers every signal any trigger, wait or "has been true for" condition
reads; each update goes to the watches of its own signal only (a dictionary look-up), so a
publish that concerns no automation costs nothing here and 1,000 idle automations cost the
broker nothing. Runs act through the broker with their owner's grant; loops and storms are
stopped; every run leaves a trace.

The engine holds the state and the runtime (start, the pump, runs, waits); its parts live beside
it: ``loading`` (files, REST definitions, rebuilds against the live catalog), ``triggers`` (the
index of live watches), ``traces`` (the ring of recent runs and their storage), ``status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from anycar.automations import loading
from anycar.automations import model as m
from anycar.automations.acting import Acting
from anycar.automations.runner import Run, dry_run
from anycar.automations.source import Document, Problem
from anycar.automations.status import Status
from anycar.automations.store import Store
from anycar.automations.timed import Timed
from anycar.automations.traces import TraceBook
from anycar.automations.triggers import TriggerIndex
from anycar.automations.watch import Timing
from anycar.broker import SignalBroker
from anycar.broker.subscription import Subscription
from anycar.clock import Clock, WallClock
from anycar.errors import AnycarError
from anycar.policy.access import AccessControl
from anycar.policy.engine import PolicyEngine
from anycar.policy.events import Event, EventLog
from anycar.ratelimit import TokenBucket

log = logging.getLogger(__name__)

CLOCK_RETRY_S = 0.02  # a simulated clock short of a due moment: look again this soon (real s)
MAX_CHAIN = 8  # automations setting what triggers automations: deeper than this is a loop
ACCESSORY_EVENTS = {
    "fitted": "fitted",
    "commissioned": "fitted",
    "removed": "removed",
    "shed": "shed",
    "restore": "restored",
}


class Engine:
    def __init__(
        self,
        broker: SignalBroker,
        *,
        store: Store | None = None,
        policy: PolicyEngine | None = None,
        brand: str | None = None,
        wall: Callable[[], float] = time.time,
        traces_kept: int = 20,
        rate_limits: bool = True,
        assume_provided: bool = False,
        supervisor: Any = None,
        clock: Clock | None = None,
    ) -> None:
        self.broker = broker
        # The hub's clock (a simulated car's runs --speedup times faster): times of day, the sun,
        # for:, delays and waits follow it; ``delay`` turns its seconds into the loop's.
        if clock is not None:
            wall = clock.time
        self.delay: Callable[[float], float] = clock.loop_delay if clock is not None else _same
        self.clock_is_wall = clock is None or isinstance(clock, WallClock)
        self.tz: dt.tzinfo | None = getattr(clock, "tzinfo", None)  # times of day: the car's zone
        self.store = store if store is not None else Store(None)
        self.policy = policy
        self.brand = brand
        self.wall = wall
        self.traces_kept = traces_kept
        self.rate_limits = rate_limits
        self.assume_provided = assume_provided  # offline validation without a car: no provider check
        self.access = policy.access if policy is not None else AccessControl()
        self.events: EventLog = policy.events if policy is not None else EventLog(None)
        self.acting = Acting(broker, policy, self.access, self.events)
        self.automations: dict[str, m.Automation] = {}
        self.scenes: dict[str, m.Scene] = {}
        self.status: dict[str, Status] = {}
        self.file_problems: list[Problem] = []
        self._docs: list[Document] = []
        self._rest_docs: dict[tuple[str, str], Document] = {}
        self._enabled = self.store.enabled_flags()
        self._since: dict[str, float] = self.store.since_all()
        self.timed = Timed(wall, self._current, self.delay, self.tz)
        self.triggers = TriggerIndex(self.timed, self._current)
        self._running: dict[str, list[Run]] = {}
        self._queued: dict[str, deque[tuple[dict[str, Any], tuple[str, ...]]]] = {}
        self.book = TraceBook(self.store, traces_kept)
        self._buckets: dict[str, TokenBucket] = {}
        self._noticed: dict[tuple[str, str], float] = {}
        self._sub: Subscription | None = None
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._stoppers: dict[str, Callable[[], Awaitable[None]]] = {}
        self._sub_changed = asyncio.Event()
        self.supervisor = supervisor
        self._run_ids = itertools.count(1)
        self._timing: Timing | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rebuild_pending = False
        self._last_driving: str | None = str(policy.driving_state) if policy is not None else None
        self.counters = {
            "fired": 0,
            "runs": 0,
            "skipped": 0,
            "rate_limited": 0,
            "loops": 0,
            "task_restarts": 0,
            "dispatch_errors": 0,
            "evaluated": 0,
        }
        self.started = False

    # -- loading ----------------------------------------------------------------------------
    def load_paths(self, targets: Iterable[str | Any]) -> list[Problem]:
        """Read files and folders; a bad file is refused whole and never stops the others."""
        return loading.load_paths(self, targets)

    def load_rest_definitions(self) -> None:
        loading.load_rest_definitions(self)

    def compiled(self, doc: Document) -> tuple[list[m.Scene], list[m.Automation]]:
        """The scenes and automations of a (checked) document, as they would be added now."""
        return loading.compiled(self, doc)

    def check_document(self, doc: Document) -> list[Problem]:
        """Problems a document would have if added now (schema, then catalog), without adding it."""
        return loading.check_document(self, doc)

    def put_rest(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        """Add or replace automations and scenes given over REST (already checked), then
        re-index once: a document of N definitions costs one rebuild, not N."""
        loading.put_rest(self, items)

    def drop_rest(self, kind: str, ident: str) -> bool:
        return loading.drop_rest(self, kind, ident)

    def rebuild(self) -> None:
        """Compile every source again against the live catalog and re-index. Persisted "since"
        times and running runs are kept, so nothing already accepted is lost."""
        loading.rebuild(self)

    def enabled(self, automation: m.Automation) -> bool:
        return self._enabled.get(automation.id, automation.enabled)

    # -- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._timing = Timing(
            self._loop, self.wall, self._since.get, self._save_since, self.delay, exact=self.clock_is_wall
        )
        self.started = True
        self.events.add_listener(self._on_event)
        self._sub_changed = asyncio.Event()
        self._index()
        self._spawn("pump", self._pump)
        self._spawn("scheduler", self.timed.run)
        self._spawn("traces", self.book.flush_forever)
        for state in self.store.paused_runs():
            self._resume(state)

    async def stop(self) -> None:
        self.started = False
        self.events.remove_listener(self._on_event)
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        for stop in list(self._stoppers.values()):
            await stop()
        self._stoppers.clear()
        self._tasks.clear()
        runs = [r for rs in self._running.values() for r in rs]
        for run in runs:
            if run.task is not None:
                run.task.cancel()
        for run in runs:
            if run.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await run.task
        self._close_watches()
        self._save_traces()

    def _spawn(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        """A background task that logs and restarts when it fails, so it never dies silently: under
        the hub's supervisor when it has one (shown in ``/api/v1/info``), else on its own."""
        if self.supervisor is not None:
            handle = self.supervisor.spawn(f"automations-{name}", body)
            self._tasks[name] = handle.task
            self._stoppers[name] = handle.stop
            return

        async def supervised() -> None:
            while True:
                try:
                    await body()
                    return
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self.counters["task_restarts"] += 1
                    log.exception("automations task %s failed; restarting it", name)
                    await asyncio.sleep(1.0)

        task = asyncio.get_running_loop().create_task(supervised(), name=f"automations-{name}")
        self._tasks[name] = task

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

        self._stoppers[name] = stop

    # -- indexing -----------------------------------------------------------------------------
    def _close_watches(self) -> None:
        self.triggers.clear()

    def _index(self) -> None:
        timing = self._timing
        if timing is None:
            raise RuntimeError("the engine indexes triggers only once started")
        self._close_watches()
        paths: set[str] = set()
        for a in self.automations.values():
            for i, spec in enumerate(a.triggers):
                self.triggers.watch(a.id, f"t{i}", spec, self._firer(a.id, spec), timing)
            for cond in m.signal_conditions(a):
                if cond.for_s:
                    self.triggers.hold(a.id, cond, timing)
            paths.update(m.wait_paths(a))
        paths.update(self.triggers.by_path)
        paths = {p for p in paths if p in self.broker.catalog}
        old = self._sub
        if old is None or set(old.patterns) != paths:
            if old is not None:
                old.close()
            self._sub = None
            if paths:
                self._sub = self.broker.subscribe(
                    sorted(paths), name="automations", send_current=False, queue_size=100_000
                )
            self._sub_changed.set()  # the pump moves to the new subscription

    def _current(self, path: str) -> Any:
        if path not in self.broker.catalog:
            return None
        dp = self.broker.get(path)
        return dp.value if dp is not None else None

    def _save_since(self, key: str, since: float | None) -> None:
        if since is None:
            if self._since.pop(key, None) is not None:
                self.store.set_since(key, None)
        else:
            self._since[key] = since
            self.store.set_since(key, since)

    def held_for_run(self, automation: str) -> Callable[[str], float | None]:
        def held_for(key: str) -> float | None:
            held = self.triggers.held.get(f"{automation}/{key}")
            return held.held_for() if held is not None else None

        return held_for

    # -- the hot path ---------------------------------------------------------------------------
    async def _pump(self) -> None:
        """One task for the engine's life: it follows the subscription as definitions change."""
        while True:
            sub = self._sub
            if sub is None or sub.closed:
                self._sub_changed.clear()
                if self._sub is sub:
                    await self._sub_changed.wait()
                continue
            batch = await sub.get()
            for dp in batch:
                try:
                    self.dispatch(dp.path, dp.value)
                except Exception:  # one bad update must not cost the rest of the batch
                    self.counters["dispatch_errors"] += 1
                    log.exception("automations: dispatching %s failed", dp.path)

    def dispatch(self, path: str, value: Any) -> None:
        handlers = self.triggers.by_path.get(path)
        if not handlers:
            return
        self.counters["evaluated"] += 1
        info = {"path": path, "chain": self.acting.cause_of(path)}
        for handler in list(handlers):
            handler(path, value, info)

    def _firer(self, automation: str, spec: m.Trigger) -> Callable[[dict[str, Any]], None]:
        def fire(extra: dict[str, Any]) -> None:
            trigger = {
                "id": spec.id,
                "kind": type(spec).__name__.removesuffix("Trigger").lower(),
                "description": spec.describe(),
                "at": spec.where,
                "fired_at": self.wall(),
                **{k: v for k, v in extra.items() if k != "chain"},
            }
            self.start_run(automation, trigger, tuple(extra.get("chain", ())))

        return fire

    def start_run(
        self, automation_id: str, trigger: dict[str, Any], chain: tuple[str, ...] = ()
    ) -> str | None:
        """Start (or queue, or skip) a run of an automation; returns the run id if one started."""
        a = self.automations.get(automation_id)
        if a is None or not self.enabled(a) or not self.started:
            return None
        self.counters["fired"] += 1
        trigger = {**trigger, "chain": list(chain)}
        if a.id in chain or len(chain) >= MAX_CHAIN:
            self.counters["loops"] += 1
            path = " -> ".join((*chain, a.id))
            self._notice(
                a.id,
                "loop",
                "automation_loop",
                f"loop stopped: {path} (each sets what triggers the next)",
                chain=list(chain),
            )
            self._skip(a, trigger, "loop", f"loop: {path}")
            return None
        if self.rate_limits and not self._bucket(a).take():
            self.counters["rate_limited"] += 1
            self._notice(
                a.id,
                "rate",
                "automation_rate_limited",
                f"{a.id} triggered faster than {a.max_runs_per_minute}/min; runs dropped",
            )
            return None
        running = self._running.setdefault(a.id, [])
        if running:
            if a.mode == "single":
                self._skip(a, trigger, "skipped", "already running (mode single)")
                return None
            if a.mode == "restart":
                for run in running:
                    if run.task is not None:
                        run.trace["reason"] = "restarted by a new trigger"
                        run.task.cancel()
            elif a.mode == "queued":
                queue = self._queued.setdefault(a.id, deque())
                if len(queue) >= a.max:
                    self._skip(a, trigger, "skipped", f"queue full ({a.max})")
                    return None
                queue.append((trigger, chain))
                return None
            elif a.mode == "parallel" and len(running) >= a.max:
                self._skip(a, trigger, "skipped", f"already {a.max} runs in parallel")
                return None
        run = Run(self, a, self._new_run_id(a.id), trigger, chain=chain)
        self._launch(run)
        return run.run_id

    def _new_run_id(self, automation: str) -> str:
        return f"{automation}-{int(self.wall() * 1000)}-{next(self._run_ids)}"

    def _launch(self, run: Run) -> None:
        self.counters["runs"] += 1
        self._running.setdefault(run.automation.id, []).append(run)
        self._ring(run.automation.id).append(run.trace)  # visible while it runs
        run.task = asyncio.get_running_loop().create_task(
            self._run_task(run), name=f"automation-{run.run_id}"
        )

    async def _run_task(self, run: Run) -> None:
        try:
            trace = await run.execute()
        except asyncio.CancelledError:
            trace = run.trace
            if not self.started:
                self._remove_run(run)
                raise  # hub stopping: the paused state stays in the database for the restart
            self.store.end_run(run.run_id)
        self._remove_run(run)
        self.book.unsaved.append(trace)
        if trace.get("result") == "failed" and run.automation.id:
            log.info("automation %s failed: %s", run.automation.id, trace.get("reason"))
        queue = self._queued.get(run.automation.id)
        if queue and self.started:
            trigger, chain = queue.popleft()
            self._launch(Run(self, run.automation, self._new_run_id(run.automation.id), trigger, chain=chain))

    def _remove_run(self, run: Run) -> None:
        running = self._running.get(run.automation.id, [])
        if run in running:
            running.remove(run)

    def _skip(self, a: m.Automation, trigger: dict[str, Any], result: str, reason: str) -> None:
        self.counters["skipped"] += 1
        now = self.wall()
        self._keep_trace(
            {
                "run_id": self._new_run_id(a.id),
                "automation": a.id,
                "alias": a.alias,
                "started": now,
                "finished": now,
                "duration_ms": 0.0,
                "trigger": trigger,
                "values": {},
                "conditions": [],
                "actions": [],
                "result": result,
                "reason": reason,
            }
        )

    def _bucket(self, a: m.Automation) -> TokenBucket:
        bucket = self._buckets.get(a.id)
        if bucket is None or bucket.rate != a.max_runs_per_minute / 60:
            rate = a.max_runs_per_minute / 60
            bucket = TokenBucket(rate, max(1.0, min(float(a.max_runs_per_minute), 10.0)))
            self._buckets[a.id] = bucket
        return bucket

    def _notice(self, automation: str, what: str, kind: str, message: str, **data: Any) -> None:
        """An event, at most once per 5 s per automation and kind (a storm is one line, not a flood)."""
        now = time.monotonic()
        if now - self._noticed.get((automation, what), -1e9) < 5.0:
            return
        self._noticed[(automation, what)] = now
        self.events.log(kind, automation, message, **data)

    def _resume(self, state: dict[str, Any]) -> None:
        a = self.automations.get(str(state.get("automation")))
        run_id = str(state.get("run_id"))
        if a is None or not self.enabled(a):
            self.store.end_run(run_id)
            return
        run = Run(
            self,
            a,
            run_id,
            state["trace"].get("trigger", {}),
            chain=tuple(state.get("chain", ())),
            resume=state,
        )
        self._launch(run)

    # -- what runs do ---------------------------------------------------------------------------
    def driving_state(self) -> str | None:
        return str(self.policy.driving_state) if self.policy is not None else None

    async def sleep_until(self, due: float) -> None:
        """Sleep until a wall-clock moment, measured on the monotonic clock from now: a clock jump
        while sleeping neither shortens nor stretches the delay. On a simulated car's clock, until
        that clock has reached the moment (it stands still while the simulator does)."""
        left = due - self.wall()
        if left > 0:
            await asyncio.sleep(self.delay(left))
        if self.clock_is_wall:
            return
        while (left := due - self.wall()) > 0:
            await asyncio.sleep(max(self.delay(left), CLOCK_RETRY_S))

    async def wait_for(
        self, run: Run, triggers: tuple[m.Trigger, ...], deadline: float | None
    ) -> dict[str, Any] | None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[dict[str, Any]] = loop.create_future()

        def fire(spec: m.Trigger) -> Callable[[dict[str, Any]], None]:
            def hit(extra: dict[str, Any]) -> None:
                if not done.done():
                    done.set_result(
                        {
                            "description": spec.describe(),
                            "id": spec.id,
                            **{k: v for k, v in extra.items() if k != "chain"},
                        }
                    )

            return hit

        timing = self._timing
        if timing is None:
            raise RuntimeError("a run waits only in a started engine")
        stops = [
            self.triggers.watch(run.automation.id, f"wait{run.run_id}:{i}", spec, fire(spec), timing)
            for i, spec in enumerate(triggers)
        ]
        try:
            while True:
                timeout = None if deadline is None else self.delay(max(0.0, deadline - self.wall()))
                try:
                    return await asyncio.wait_for(asyncio.shield(done), timeout)
                except TimeoutError:
                    # on a simulated car's clock the timeout is its own: a stalled simulator has
                    # not reached the deadline yet, so the wait goes on
                    if self.clock_is_wall or deadline is None or self.wall() >= deadline:
                        return None
                    await asyncio.sleep(CLOCK_RETRY_S)
        finally:
            if not done.done():
                done.cancel()
            for stop in stops:
                stop()

    # -- traces ---------------------------------------------------------------------------------
    def _ring(self, automation: str) -> deque[dict[str, Any]]:
        return self.book.ring(automation)

    def _keep_trace(self, trace: dict[str, Any]) -> None:
        self.book.keep(trace)

    def _save_traces(self) -> None:
        self.book.save()

    def traces(self, automation: str, limit: int = 20) -> list[dict[str, Any]]:
        """Newest first: memory (this run of the hub), then the database (earlier runs)."""
        return self.book.traces(automation, limit)

    def last_run(self, automation: str) -> dict[str, Any] | None:
        return self.book.last_run(automation)

    # -- manual control ---------------------------------------------------------------------------
    def set_enabled(self, automation: str, enabled: bool) -> None:
        a = self.automations.get(automation)
        if a is None:
            raise AnycarError(f"no automation {automation!r}")
        self._enabled[automation] = enabled
        self.store.set_enabled(automation, enabled)
        self.status[automation].state = "active" if enabled else "disabled"
        if not enabled:
            for run in self._running.get(automation, []):
                if run.task is not None:
                    run.trace["reason"] = "disabled"
                    run.task.cancel()

    def trigger(self, automation: str) -> str | None:
        if automation not in self.automations:
            raise AnycarError(f"no automation {automation!r}")
        return self.start_run(
            automation,
            {"id": "", "kind": "manual", "description": "triggered by hand", "fired_at": self.wall()},
        )

    async def dry_run(self, automation: str, overrides: dict[str, Any]) -> dict[str, Any]:
        a = self.automations.get(automation)
        if a is None:
            raise AnycarError(f"no automation {automation!r}")
        run = dry_run(self, a, overrides)
        return await run.execute()

    # -- policy events: accessories and driving state ----------------------------------------------
    def _on_event(self, event: Event) -> None:
        kind = ACCESSORY_EVENTS.get(event.kind)
        if kind is not None:
            for spec, fire in list(self.triggers.accessory):
                if spec.event == kind and spec.instance in (None, event.subject):
                    fire({"value": event.subject, "previous": None, "message": event.message})
            if kind in ("fitted", "removed") and not self._rebuild_pending and self._loop is not None:
                self._rebuild_pending = True  # the catalog and its providers changed: check again
                self._loop.call_soon(self.rebuild)
        elif event.kind == "driving_state" and self.policy is not None and self._loop is not None:
            # the policy logs before it takes the new state: read it once the log call is over
            self._loop.call_soon(self._driving_changed)

    def fleet_event(self, event: str, data: dict[str, Any] | None = None) -> list[str]:
        """A ``fleet_event`` from the fleet cloud: fires every automation triggered on its type;
        returns their ids (what the command's result reports)."""
        fired: list[str] = []
        for automation, spec, fire in list(self.triggers.fleet):
            if spec.event == event and self.enabled(self.automations[automation]):
                fire({"value": event, "previous": None, "data": dict(data or {})})
                fired.append(automation)
        return fired

    def _driving_changed(self) -> None:
        if self.policy is not None:
            state = str(self.policy.driving_state)
            if state == self._last_driving:
                return
            previous, self._last_driving = self._last_driving, state
            for dspec, fire in list(self.triggers.driving):
                if dspec.to in ("any", state) and dspec.from_ in (None, previous):
                    fire({"value": state, "previous": previous})

    # -- what the hub shows -------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        pump = self._tasks.get("pump")
        return {
            **self.store.health(),
            "automations": len(self.automations),
            "active": sum(1 for s in self.status.values() if s.state == "active"),
            "refused": sum(1 for s in self.status.values() if s.state == "refused"),
            "running": sum(len(r) for r in self._running.values()),
            "watched_signals": len(self.triggers.by_path),
            "pump": "running" if pump is not None and not pump.done() else "idle",
            **self.counters,
        }

    def describe(self, a: m.Automation) -> dict[str, Any]:
        last = self.last_run(a.id)
        return {
            "id": a.id,
            "alias": a.alias,
            "description": a.description,
            "state": self.status[a.id].state if a.id in self.status else "unknown",
            "enabled": self.enabled(a),
            "mode": a.mode,
            "owner": a.owner,
            "source": a.where,
            "origin": a.origin,
            "triggers": [t.describe() for t in a.triggers],
            "targets": list(a.targets),
            "running": len(self._running.get(a.id, [])),
            "last_run": None
            if last is None
            else {k: last.get(k) for k in ("run_id", "started", "result", "reason", "duration_ms")},
        }


def _same(seconds: float) -> float:
    """The wall clock's seconds are the loop's."""
    return max(0.0, seconds)
