"""One run of an automation: its conditions, then its actions, each step in the trace.

A run can pause in a delay or a wait; its position (a list of indexes into the action tree),
variables and trace so far are saved, so that a restarted hub resumes it at the right moment.
A dry run walks the same tree without acting and says what would happen.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from anycar.automations import model as m
from anycar.automations.conditions import Scope, check, check_all
from anycar.automations.expressions import ExpressionFailed

if TYPE_CHECKING:
    from anycar.automations.engine import Engine

MAX_DRY_STEPS = 500
PAUSE_FLUSH_S = 1.0  # the longest a pause waits for the event log to write the run's notices


class Stopped(Exception):
    def __init__(self, reason: str, error: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


class StepFailed(Exception):
    pass


class Run:
    def __init__(
        self,
        engine: Engine,
        automation: m.Automation,
        run_id: str,
        trigger: dict[str, Any],
        *,
        chain: tuple[str, ...] = (),
        dry: bool = False,
        overrides: dict[str, Any] | None = None,
        resume: dict[str, Any] | None = None,
    ) -> None:
        self.engine = engine
        self.automation = automation
        self.run_id = run_id
        self.chain = chain
        self.dry = dry
        self.overrides = overrides or {}
        self._resume = resume
        self._t0 = time.monotonic()
        self.position: list[int] = []
        self.trace: dict[str, Any] = (
            resume["trace"]
            if resume
            else {
                "run_id": run_id,
                "automation": automation.id,
                "alias": automation.alias,
                "started": engine.wall(),
                "dry_run": dry,
                "trigger": trigger,
                "values": {},
                "conditions": [],
                "actions": [],
                "result": "running",
            }
        )
        if resume:
            self.trace.setdefault("resumed", []).append(engine.wall())
        self.task: asyncio.Task[None] | None = None

    # -- scope --------------------------------------------------------------------------------
    def scope(self) -> Scope:
        trig = self.trace["trigger"]
        scope = Scope(
            value_of=self._value_of,
            now=self.engine.wall(),
            driving_state=self.overrides.get("driving_state") or self.engine.driving_state(),
            trigger_id=str(trig.get("id", "")),
            trigger_value=trig.get("value"),
            trigger_previous=trig.get("previous"),
            variables=self.automation.variables,
            held_for=self.engine.held_for_run(self.automation.id),
            seen=self.trace["values"],
            overridden=frozenset(self.overrides),
            tz=self.engine.tz,
        )
        return scope

    def _value_of(self, path: str) -> Any:
        if path in self.overrides:
            return self.overrides[path]
        dp = self.engine.broker.get(path) if path in self.engine.broker.catalog else None
        return dp.value if dp is not None else None

    def _ms(self) -> float:
        return round((self.engine.wall() - self.trace["started"]) * 1000, 3)

    # -- the run ------------------------------------------------------------------------------
    async def execute(self) -> dict[str, Any]:
        try:
            if self._resume is None:
                scope = self.scope()
                if not check_all(self.automation.conditions, scope, self.trace["conditions"].append):
                    self.trace["result"] = "conditions_not_met"
                    return self._finish()
                cursor: list[int] | None = None
            else:
                cursor = list(self._resume["position"])
            await self._sequence(self.automation.actions, [], cursor)
            self.trace["result"] = "done"
        except Stopped as exc:
            self.trace["result"] = "failed" if exc.error else "stopped"
            self.trace["reason"] = exc.reason
        except StepFailed as exc:
            self.trace["result"] = "failed"
            self.trace["reason"] = str(exc)
        except asyncio.CancelledError:
            if not self.engine.started:
                raise  # the hub is stopping: a paused run stays in the database and resumes on start
            self.trace["result"] = "cancelled"
            self.trace["reason"] = self.trace.get("reason") or "cancelled (restart mode or disabled)"
            self._finish()
            raise
        except Exception as exc:  # a bug in a step must end the run with a trace, not kill the hub's loop
            self.trace["result"] = "failed"
            self.trace["reason"] = f"internal error: {type(exc).__name__}: {exc}"
        return self._finish()

    def _finish(self) -> dict[str, Any]:
        self.trace["finished"] = self.engine.wall()
        self.trace["duration_ms"] = round((self.trace["finished"] - self.trace["started"]) * 1000, 3)
        if not self.dry:
            self.engine.store.end_run(self.run_id)
        return self.trace

    def _step(self, position: list[int], action: m.Action, text: str) -> dict[str, Any]:
        step = {
            "where": "actions" + "".join(f"[{i}]" for i in position),
            "at": action.where,
            "action": text,
            "start_ms": self._ms(),
            "outcome": "running",
        }
        self.trace["actions"].append(step)
        if len(self.trace["actions"]) > MAX_DRY_STEPS:
            raise Stopped(f"more than {MAX_DRY_STEPS} steps in one run", True)
        return step

    def _resumed_step(
        self, position: list[int], action: m.Action, text: str, sub: list[int] | None
    ) -> dict[str, Any]:
        """The step of the delay or wait the run was paused in (its trace came from the database),
        or a new one."""
        where = "actions" + "".join(f"[{i}]" for i in position)
        if sub == [] and self.trace["actions"]:
            last = self.trace["actions"][-1]
            if last["where"] == where and last["outcome"] == "running":
                last["resumed_ms"] = self._ms()
                return last
        return self._step(position, action, text)

    def _end(self, step: dict[str, Any], outcome: str, detail: str = "") -> None:
        step["outcome"] = outcome
        step["duration_ms"] = round(self._ms() - step["start_ms"], 3)
        if detail:
            step["detail"] = detail

    async def _sequence(
        self, actions: tuple[m.Action, ...], position: list[int], cursor: list[int] | None
    ) -> None:
        start = cursor[0] if cursor else 0
        for i in range(start, len(actions)):
            sub = cursor[1:] if cursor and i == start else None
            await self._action(actions[i], [*position, i], sub)

    async def _action(self, action: m.Action, position: list[int], sub: list[int] | None) -> None:
        self.position = position
        if isinstance(action, m.Actuate):
            await self._actuate(action, position)
        elif isinstance(action, m.ApplyScene):
            await self._scene(action, position)
        elif isinstance(action, m.Delay):
            await self._delay(action, position, sub)
        elif isinstance(action, m.WaitFor):
            await self._wait(action, position, sub)
        elif isinstance(action, m.Choose):
            await self._choose(action, position, sub)
        elif isinstance(action, m.Repeat):
            await self._repeat(action, position, sub)
        elif isinstance(action, m.Notify):
            step = self._step(position, action, f"notify {action.message!r}")
            if not self.dry:
                self.engine.acting.notify(self.automation, action.message)
            self._end(step, "would notify" if self.dry else "done")
        elif isinstance(action, m.Stop):
            step = self._step(position, action, f"stop: {action.reason}")
            self._end(step, "stopped")
            raise Stopped(action.reason or "stopped", action.error)

    # -- actuation ------------------------------------------------------------------------------
    async def _actuate(self, action: m.Actuate, position: list[int]) -> None:
        value = action.value
        if action.template is not None:
            try:
                value = action.template.evaluate(self.scope().lookup)
            except ExpressionFailed as exc:
                step = self._step(
                    position, action, f"actuate {action.path} = {{{{ {action.template.text} }}}}"
                )
                self._end(step, "error", str(exc))
                self._failed(action.continue_on_error, f"{action.path}: {exc}")
                return
        step = self._step(position, action, f"actuate {action.path} = {value!r}")
        if self.dry:
            why = self.engine.acting.refusal(self.automation, action.path)
            self._end(step, "would be refused" if why else "would actuate", why or "")
            return
        outcome, detail = await self.engine.acting.actuate(
            self.automation, action.path, value, action.timeout_s, self.chain
        )
        self._end(step, outcome, detail)
        if outcome != "accepted":
            self._failed(
                action.continue_on_error, f"{action.path}: {outcome}" + (f" ({detail})" if detail else "")
            )

    async def _scene(self, action: m.ApplyScene, position: list[int]) -> None:
        step = self._step(position, action, f"apply scene {action.scene}")
        scene = self.engine.scenes.get(action.scene)
        if scene is None:
            self._end(step, "error", f"scene {action.scene} is gone")
            self._failed(action.continue_on_error, f"scene {action.scene} is gone")
            return
        if self.dry:
            refused = {p: w for p in scene.targets if (w := self.engine.acting.refusal(self.automation, p))}
            self._end(
                step,
                "would apply",
                f"{len(scene.targets)} targets" + (f", refused: {refused}" if refused else ""),
            )
            return
        outcomes = await self.engine.acting.apply_scene(scene, self.automation, self.chain)
        step["outcomes"] = outcomes
        bad = {p: o for p, o in outcomes.items() if o["outcome"] != "accepted"}
        self._end(
            step,
            "accepted" if not bad else "partly" if len(bad) < len(outcomes) else "failed",
            ", ".join(f"{p}: {o['outcome']}" for p, o in bad.items()),
        )
        if bad:
            self._failed(
                action.continue_on_error, f"scene {scene.id}: {len(bad)} of {len(outcomes)} targets failed"
            )

    def _failed(self, go_on: bool, why: str) -> None:
        if not go_on:
            raise StepFailed(why)

    # -- waiting ---------------------------------------------------------------------------------
    async def _delay(self, action: m.Delay, position: list[int], sub: list[int] | None) -> None:
        step = self._resumed_step(position, action, f"delay {action.seconds:g} s", sub)
        if self.dry:
            self._end(step, "would wait")
            return
        due = self._resume["due"] if (sub == [] and self._resume and "due" in self._resume) else None
        if due is None:
            due = self.engine.wall() + action.seconds
        self._resume = None
        self._pause(position, {"due": due})
        await self.engine.sleep_until(due)
        self._end(step, "done")

    async def _wait(self, action: m.WaitFor, position: list[int], sub: list[int] | None) -> None:
        text = "wait for " + " or ".join(t.describe() for t in action.triggers)
        step = self._resumed_step(
            position, action, text + (f" (timeout {action.timeout_s:g} s)" if action.timeout_s else ""), sub
        )
        if self.dry:
            self._end(step, "would wait")
            return
        deadline = None
        if sub == [] and self._resume and "deadline" in self._resume:
            deadline = self._resume["deadline"]
        elif action.timeout_s is not None:
            deadline = self.engine.wall() + action.timeout_s
        self._resume = None
        self._pause(position, {"deadline": deadline})
        fired = await self.engine.wait_for(self, action.triggers, deadline)
        if fired is None:
            self._end(step, "timed out")
            if not action.continue_on_timeout:
                raise Stopped(f"{text}: timed out", True)
            return
        self._end(step, "done", f"{fired.get('description', '')} = {fired.get('value')!r}")
        self.trace.setdefault("wait", {}).update(fired)

    def _pause(self, position: list[int], extra: dict[str, Any]) -> None:
        # The notices the run gave before this pause go to disk first: the event log's writer
        # batches every 0.1 s, so a SIGKILL after the paused run is durable could otherwise
        # resume a run whose "start" notice was never written. Nothing pending costs nothing; a
        # failing disk does not wait (the event log says so in its health).
        self.engine.events.flush(PAUSE_FLUSH_S)
        self.engine.store.pause_run(
            self.run_id,
            self.automation.id,
            {
                "run_id": self.run_id,
                "automation": self.automation.id,
                "position": position,
                "chain": list(self.chain),
                "trace": self.trace,
                **extra,
            },
        )

    # -- structure -------------------------------------------------------------------------------
    async def _choose(self, action: m.Choose, position: list[int], sub: list[int] | None) -> None:
        if sub:
            branch = sub[0]
            seq = action.default if branch == len(action.branches) else action.branches[branch].sequence
            await self._sequence(seq, [*position, branch], sub[1:] or None)
            return
        step = self._step(position, action, "choose")
        scope = self.scope()
        for k, branch_spec in enumerate(action.branches):
            results = []
            ok = True
            for cond in branch_spec.conditions:
                good, why = check(cond, scope)
                results.append({"result": good, "why": why, "at": getattr(cond, "where", "")})
                if not good:
                    ok = False
                    break
            step.setdefault("branches", []).append(results)
            if ok:
                self._end(step, "done", f"branch {k}")
                await self._sequence(branch_spec.sequence, [*position, k], None)
                return
        self._end(step, "done", "default" if action.default else "no branch")
        if action.default:
            await self._sequence(action.default, [*position, len(action.branches)], None)

    async def _repeat(self, action: m.Repeat, position: list[int], sub: list[int] | None) -> None:
        step = self._step(position, action, "repeat")
        first = sub[0] if sub else 0
        limit = action.count if action.count is not None else action.cap
        n = first
        while n < limit:
            if action.while_ and not check_all(action.while_, self.scope(), lambda r: None):
                break
            if self.dry and n > first:
                break  # a dry run shows one pass
            await self._sequence(
                action.sequence, [*position, n], (sub[1:] or None) if sub and n == first else None
            )
            n += 1
            if action.until and check_all(action.until, self.scope(), lambda r: None):
                break
            await asyncio.sleep(0)  # a tight loop must not starve the hub
        else:
            if action.count is None:
                self._end(step, "failed", f"repeat reached its cap of {action.cap} iterations")
                raise StepFailed(f"repeat at {action.where} reached its cap of {action.cap} iterations")
        self._end(step, "done", f"{n} iteration(s)")


def dry_run(engine: Engine, automation: m.Automation, overrides: dict[str, Any]) -> Run:
    return Run(
        engine,
        automation,
        f"dry-{int(time.time() * 1000)}",
        {"kind": "manual", "description": "dry run"},
        dry=True,
        overrides=overrides,
    )


__all__ = ["Run", "dry_run"]
