"""`anycar bench automations` runs end to end on a small scale and reports every figure."""

from __future__ import annotations

import json

import pytest

from anycar.bench import automations
from anycar.cli.main import main


def test_bench_reports_every_figure_small() -> None:
    result = automations.run(count=50, samples=100, burst=5, rounds=1, repeat=1)
    run = result["runs"][0]
    assert run["automations"] == 50
    for key in ("startup_s", "trigger_to_action_p50_ms", "trigger_to_action_p99_ms", "triggers_per_s",
                "runs_per_s", "publish_overhead_percent", "watched_publish_overhead_percent"):  # fmt: skip
        assert isinstance(run[key], (int, float)), key
    assert run["trigger_to_action_p50_ms"] > 0 and run["triggers_per_s"] > 0
    assert set(result["met"]) == {"startup_s", "p99_ms", "triggers_per_s", "publish_overhead_percent"}


def test_bench_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "bench",
                "automations",
                "--count",
                "20",
                "--samples",
                "50",
                "--repeat",
                "1",
                "--rounds",
                "1",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["benchmark"] == "automations" and out["runs"][0]["automations"] == 20
