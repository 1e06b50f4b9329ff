"""Bad input and faults: a database that is full or read-only (automations keep running from
memory and health says so), a self-triggering automation, an accessory removed in the middle of
a run, a provider that never answers, and generated definitions (never a crash)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anycar.automations.engine import Engine
from anycar.automations.source import SourceError, parse_yaml
from anycar.automations.store import Store
from anycar.broker import SignalBroker
from automations_support import (
    DOOR,
    INTENSITY,
    LIGHT,
    VOLTAGE,
    FakeCar,
    ended_trace,
    last_trace,
    started_engine,
    until,
    write,
)

DOOR_LIGHT = f"""
automations:
  - id: door_light
    mode: queued
    triggers: [{{signal: {DOOR}, to: true, for: 0.05}}, {{signal: {VOLTAGE}, below: 5}}]
    actions: [{{actuate: {LIGHT}, value: true}}, {{delay: 0.05}}, {{actuate: {LIGHT}, value: false}}]
"""


async def test_a_read_only_database_keeps_automations_running_and_shows_in_health(tmp_path: Path) -> None:
    store = Store(tmp_path / "hub.sqlite3", recovery_s=0.5)
    engine, car = await started_engine(tmp_path, DOOR_LIGHT, store=store)
    try:
        assert engine.health()["database"] == "ok"
        assert store.connection is not None
        store.connection.execute("PRAGMA query_only = ON")  # every write now fails, as on a read-only file
        car.set(DOOR, False)
        car.set(DOOR, True)
        await until(lambda: car.sent(LIGHT) == [True, False], what="a run with a read-only database")
        health = await until(lambda: (h := engine.health()) and h["database"] == "failing" and h)
        assert "readonly" in health["error"] and health["failed_writes"] >= 1
        assert (await ended_trace(engine, "door_light"))["result"] == "done"  # traces from memory
        store.connection.execute("PRAGMA query_only = OFF")
        car.set(DOOR, False)
        car.set(DOOR, True)
        await until(lambda: len(car.sent(LIGHT)) == 4)
        await until(lambda: engine.health()["database"] == "ok", what="recovery once writes work again")
    finally:
        await engine.stop()


async def test_a_full_database_keeps_automations_running(tmp_path: Path) -> None:
    store = Store(tmp_path / "hub.sqlite3")
    engine, car = await started_engine(tmp_path, DOOR_LIGHT, store=store)
    try:
        assert store.connection is not None
        pages = store.connection.execute("PRAGMA page_count").fetchone()[0]
        store.connection.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from now on
        for _ in range(8):
            car.set(DOOR, False)
            car.set(DOOR, True)
            await asyncio.sleep(0.25)
        await until(lambda: len(car.sent(LIGHT)) == 16, what="eight runs on a full database")
        await until(lambda: engine.health()["database"] == "failing")
        assert "full" in engine.health()["error"]
        assert len(engine.traces("door_light")) >= 8
    finally:
        await engine.stop()


async def test_an_unopenable_database_means_memory_only_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite3").mkdir()
    store = Store(tmp_path / "dir.sqlite3")
    engine, car = await started_engine(tmp_path, DOOR_LIGHT, store=store)
    try:
        assert engine.health()["database"] == "failing"
        car.set(DOOR, False)
        car.set(DOOR, True)
        await until(lambda: car.sent(LIGHT) == [True, False])
    finally:
        await engine.stop()


async def test_a_self_triggering_automation_is_stopped(tmp_path: Path) -> None:
    engine, car = await started_engine(
        tmp_path,
        f"""
automations:
  - id: flip_flop
    triggers: [{{signal: {LIGHT}}}]
    actions: [{{actuate: {LIGHT}, value: "{{{{ not value }}}}"}}]
""",
    )
    try:
        car.set(LIGHT, False)
        car.set(LIGHT, True)
        loop = await until(lambda: engine.events.recent(kind="automation_loop"))
        assert "flip_flop -> flip_flop" in loop[0].message
        await asyncio.sleep(0.3)
        assert car.sent(LIGHT) == [False]
        assert last_trace(engine, "flip_flop")["result"] == "loop"
    finally:
        await engine.stop()


async def test_an_accessory_removed_mid_run_is_a_traced_failure(tmp_path: Path) -> None:
    engine, car = await started_engine(
        tmp_path,
        f"""
automations:
  - id: two_steps
    triggers: [{{signal: {DOOR}, to: true}}]
    actions:
      - actuate: {LIGHT}
        value: true
      - delay: 0.2
      - actuate: {INTENSITY}
        value: 50
""",
    )
    try:
        car.set(DOOR, False)
        car.set(DOOR, True)
        await until(lambda: car.sent(LIGHT) == [True])
        car.provider.close()  # the light is unplugged during the delay
        trace = await ended_trace(engine, "two_steps")
        assert trace["result"] == "failed"
        assert trace["actions"][-1]["outcome"] == "no_provider"
        assert "no_provider" in trace["reason"]
    finally:
        await engine.stop()


async def test_a_provider_that_never_answers_times_out_and_the_next_step_still_can_run(
    tmp_path: Path,
) -> None:
    engine, car = await started_engine(
        tmp_path,
        f"""
automations:
  - id: stubborn
    triggers: [{{signal: {DOOR}, to: true}}]
    actions:
      - actuate: {LIGHT}
        value: true
        continue_on_error: true
      - actuate: {INTENSITY}
        value: 10
""",
    )
    car.hang.add(LIGHT)
    try:
        car.set(DOOR, False)
        car.set(DOOR, True)
        trace = await ended_trace(engine, "stubborn")
        assert [a["outcome"] for a in trace["actions"]] == ["timed_out", "accepted"]
        assert trace["result"] == "done"
        assert trace["actions"][0]["duration_ms"] >= 250
    finally:
        await engine.stop()


async def test_a_failing_update_or_task_is_logged_counted_and_recovered(tmp_path: Path) -> None:
    engine, car = await started_engine(tmp_path, DOOR_LIGHT)
    calls: list[int] = []
    real = engine.dispatch

    def flaky(path: str, value: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        real(path, value)

    engine.dispatch = flaky  # type: ignore[method-assign]
    runs: list[int] = []

    async def crashes_once() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("task bug")

    try:
        car.set(VOLTAGE, 12.0)  # this one is lost to the bug, and counted
        await until(lambda: engine.counters["dispatch_errors"] == 1)
        car.set(DOOR, False)
        car.set(DOOR, True)
        await until(lambda: car.sent(LIGHT) == [True, False])
        engine._spawn("probe", crashes_once)
        await until(lambda: len(runs) == 2, what="the supervisor restarted the task")
        assert engine.counters["task_restarts"] == 1
    finally:
        await engine.stop()


# -- generated definitions: a validation error or a valid automation, never a crash ----------
_PATHS = st.sampled_from(
    [DOOR, LIGHT, INTENSITY, VOLTAGE, "Vehicle.Speed", "Vehicle.Nope", "Vehicle.Cabin", "x"]
)
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-1000, 1000), st.floats(allow_nan=True), st.text(max_size=8)
)
_TRIGGER = st.one_of(
    st.fixed_dictionaries({"signal": st.sampled_from([DOOR, VOLTAGE])}),
    st.fixed_dictionaries(
        {"signal": _PATHS},
        optional={
            "to": _SCALARS,
            "above": _SCALARS,
            "for": _SCALARS,
            "hysteresis": _SCALARS,
            "grace": _SCALARS,
        },
    ),
    st.fixed_dictionaries({"time": st.text(max_size=6)}),
    st.fixed_dictionaries({"every": _SCALARS}),
    st.dictionaries(st.text(max_size=6), _SCALARS, max_size=3),
)
_ACTION = st.recursive(
    st.one_of(
        st.fixed_dictionaries({"actuate": st.just(LIGHT), "value": st.booleans()}),
        st.fixed_dictionaries({"actuate": _PATHS, "value": _SCALARS}),
        st.fixed_dictionaries({"delay": _SCALARS}),
        st.fixed_dictionaries({"notify": st.text(max_size=10)}),
        st.fixed_dictionaries({"stop": st.text(max_size=5)}),
        st.dictionaries(st.text(max_size=6), _SCALARS, max_size=2),
    ),
    lambda inner: st.one_of(
        st.fixed_dictionaries(
            {"repeat": st.fixed_dictionaries({"count": _SCALARS, "sequence": st.lists(inner, max_size=3)})}
        ),
        st.fixed_dictionaries({"if": st.just([{"template": "1 > 0"}]), "then": st.lists(inner, max_size=3)}),
    ),
    max_leaves=6,
)
_AUTOMATION = st.fixed_dictionaries(
    {
        "id": st.one_of(st.sampled_from(["gen", "gen_b"]), st.text(max_size=5)),
        "triggers": st.lists(_TRIGGER, max_size=3),
        "actions": st.lists(_ACTION, max_size=4),
    },
    optional={
        "mode": st.sampled_from(["single", "queued", "bogus"]),
        "max": _SCALARS,
        "conditions": st.lists(st.fixed_dictionaries({"template": st.text(max_size=12)}), max_size=2),
    },
)


_BROKER: list[SignalBroker] = []
VALID: list[int] = []


def _shared_broker() -> SignalBroker:
    """One catalog for every generated example (loading VSS is the slow part)."""
    if not _BROKER:
        _BROKER.append(SignalBroker())
        FakeCar(_BROKER[0])
    return _BROKER[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.fixed_dictionaries({"automations": st.lists(_AUTOMATION, max_size=2)}))
def test_generated_definitions_never_crash(doc: dict[str, Any]) -> None:
    import json

    engine = Engine(_shared_broker())
    try:
        parsed = parse_yaml(json.dumps(doc), "gen.json")
    except SourceError:
        return
    found = engine.check_document(parsed)
    for p in found:
        assert p.source == "gen.json" and p.message
    if not found:
        engine._docs.append(parsed)
        engine.rebuild()
        assert {a["id"] for a in doc["automations"]} <= set(engine.automations)
        VALID.append(1)


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=300))
def test_arbitrary_text_is_a_clear_refusal(text: str) -> None:
    try:
        doc = parse_yaml(text, "t.yaml")
    except SourceError as exc:
        assert str(exc).startswith("t.yaml")
        return
    engine = Engine(_shared_broker())
    for p in engine.check_document(doc):
        assert p.source == "t.yaml"


def test_the_generator_reaches_valid_definitions_too() -> None:
    """The property above is only worth something if some generated definitions are valid."""
    if not VALID:  # when run on its own
        test_generated_definitions_never_crash()
    assert VALID, "no generated definition was valid"


async def test_tasks_and_database_health_under_the_hubs_supervisor(tmp_path: Path) -> None:
    """Where the hub has a supervisor (anycar.supervisor), the engine's tasks run under it and the
    database's failures are reported to it, so /api/v1/info shows them with everyone else's."""
    import pytest

    supervision = pytest.importorskip("anycar.supervisor")
    supervisor = supervision.Supervisor()
    store = Store(tmp_path / "hub.sqlite3", recovery_s=0.2)
    store.on_change = lambda error: supervisor.report("automations-database", error)
    broker = SignalBroker()
    car = FakeCar(broker)
    engine = Engine(broker, store=store, supervisor=supervisor)
    supervisor.add_probe("automations", engine.health)
    assert engine.load_paths([write(tmp_path, "a.yaml", DOOR_LIGHT)]) == []
    await engine.start()
    try:
        names = {t["name"]: t["state"] for t in supervisor.health()["tasks"]}
        assert names == {
            "automations-pump": "running",
            "automations-scheduler": "running",
            "automations-traces": "running",
        }
        assert store.connection is not None
        store.connection.execute("PRAGMA query_only = ON")
        car.set(DOOR, False)
        car.set(DOOR, True)
        await until(lambda: car.sent(LIGHT) == [True, False])
        health = await until(lambda: (h := supervisor.health()) and not h["ok"] and h)
        assert health["stores"][0]["name"] == "automations-database"
        assert health["details"]["automations"]["database"] == "failing"
    finally:
        await engine.stop()
    assert supervisor.health()["tasks"] == [] or all(
        t["state"] in ("stopped", "finished") for t in supervisor.health()["tasks"]
    )
