"""The queue simulation (simpy), its chart and command, bad layouts, the swap migrations, and a
small run of ``anycar bench swap``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from anycar.bench import swap as bench_swap
from anycar.cli.main import main
from anycar.swap.migrate import upgrade
from anycar.swap.policy import LayoutError, load_layout
from anycar.swap.simulate import (
    DAY,
    load_demand,
    nio_comparison,
    packs_needed,
    queue_chart,
    run_station,
    simulate,
)
from anycar.swap.tables import SWAP_TABLES, metadata
from swap_support import swap_engine


def test_more_packs_mean_fewer_vehicles_waiting_for_one() -> None:
    layout, demand = load_layout("pickman-8"), load_demand()
    few = run_station(layout, per_day=40, demand=demand, packs=2, seed=3)
    many = run_station(layout, per_day=40, demand=demand, packs=30, seed=3)
    assert few.arrivals == many.arrivals > 20  # the same arrivals
    assert many.pack_waits == 0 < few.pack_waits
    assert many.wait_stats()["mean"] < few.wait_stats()["mean"]
    needed = packs_needed(layout, per_day=40, demand=demand, seed=3)
    assert needed is not None and 2 < needed <= 30
    assert run_station(layout, per_day=40, demand=demand, packs=needed, seed=3).pack_waits == 0
    assert run_station(layout, per_day=40, demand=demand, packs=needed - 1, seed=3).pack_waits > 0


def test_the_ceiling_is_below_the_robots_and_nio_is_compared() -> None:
    nio = nio_comparison()
    assert nio["published"] == {"batteries": 23, "swap_s": 144, "swaps_per_day": 480}
    assert nio["mechanical_ceiling_per_day"] == int(DAY // 144)
    assert 0 < nio["simulated_swaps_per_day"] <= nio["mechanical_ceiling_per_day"]
    fast = load_layout("nio-gen4")
    unlimited = type(fast)(
        **{**{f: getattr(fast, f) for f in fast.__slots__}, "grid_limit_kw": 1e6, "charger_kw": 1e4}
    )
    robot_only = run_station(unlimited, per_day=0, demand=load_demand(), saturated=True)
    assert robot_only.swaps == pytest.approx(DAY / 144, abs=2)  # nothing but the robot limits it


def test_chart_and_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = simulate(stations=2, layout="pickman-8", vehicles=20, swaps_per_vehicle=1.5)
    assert [r.name for r in results] == ["pickman-8-1", "pickman-8-2"]
    assert queue_chart(results, tmp_path / "q.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    assert (
        main(
            [
                "swap",
                "simulate",
                "--stations",
                "2",
                "--vehicles",
                "20",
                "--json",
                "--chart",
                str(tmp_path / "q.png"),
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["stations"]) == 2 and doc["nio_gen4"]["published"]["swaps_per_day"] == 480
    assert sum(r["swaps_per_day"] for r in doc["stations"]) == sum(r.swaps for r in results)
    assert (tmp_path / "q.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_layouts_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "slots: 4\nchargers: 9\ncharger_kw: 5\ngrid_limit_kw: 10\nmechanical_s: 60\nempty_slots: 1\npack: {capacity_kwh: 10, soh: 90, soc: 50}\n"
    )
    with pytest.raises(LayoutError, match=r"bad.yaml: chargers: a number in \[1, 4\]"):
        load_layout(str(bad))
    with pytest.raises(LayoutError, match="no such file"):
        load_layout("atlantis")
    assert main(["swap", "simulate", "--layout", str(bad)]) != 0
    err = capsys.readouterr().err
    assert "chargers" in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_swap_migrations_make_the_tables_the_code_queries(kind: str, tmp_path: Path) -> None:
    with swap_engine(kind, tmp_path) as engine:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"include_object": lambda o, n, t, r, c: t != "table" or n in SWAP_TABLES}
            )
            assert compare_metadata(ctx, metadata) == []
        assert (
            upgrade(engine) == "swap_0004"
        )  # again on start: nothing to do (sites, held reservations, the vehicle's reconciliation)


def test_bench_swap_small() -> None:
    result = bench_swap.run(stations=4, interval=2.0, warmup=1.0, seconds=6.0, swaps_per_minute=30.0)
    assert result["stations"] == 4 and result["messages"] > 20
    assert result["station_errors"] == 0 and result["swaps"].get("done", 0) >= 1
    assert result["answer_max_ms"] > 0 and result["swap_flow_p99_ms"] > 0
    assert set(result["by_kind"]) >= {"StatusNotification", "Authorize", "BatterySwap"}
    assert result["station_throughput"]["published"]["swaps_per_day"] == 480


def test_swap_commands_refuse_bad_input_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", f"sqlite:///{tmp_path / 'f.sqlite3'}"]
    assert main(["swap", "token", "NO-SUCH-VEHICLE", *db]) != 0
    assert main(["swap", "register", "bad id!", *db]) != 0
    assert main(["swap", "register", "ok-1", "--layout", "atlantis", *db]) != 0
    assert main(["swap", "register", "ok-2", *db]) == 0
    assert main(["swap", "register", "ok-2", *db]) != 0
    assert main(["swap", "passport", "NOPE", *db]) != 0
    tariff = tmp_path / "tariff.yaml"
    tariff.write_text("prices: [0.1, 0.2]\n")
    assert main(["swap", "register", "ok-3", "--tariff", str(tariff), *db]) != 0
    err = capsys.readouterr().err
    for text in (
        "not registered",
        "OCPP identity",
        "atlantis",
        "already registered",
        "not in the inventory",
        "24 prices",
    ):
        assert text in err, (text, err)
    assert "Traceback" not in err
