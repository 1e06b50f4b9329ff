"""`anycar bench api --baseline`: the same runs against a bare kuksa.val.v2 relay, and the
load-independent figures per message (wake-ups, CPU) of every process on the path."""

from __future__ import annotations

from anycar.bench import api as bench_api


def test_baseline_relay_runs_next_to_the_hub_and_every_run_counts_wakeups_per_message() -> None:
    """Not a timing test: the relay delivers what was published, each gRPC run names its p50
    above the relay's, and hub, provider and subscriber each report wake-ups and CPU."""
    result = bench_api.run(
        seconds=1.0,
        rates=(2_000,),
        saturation=False,
        batch=20,
        signals=20,
        warmup=0.2,
        low_rate_seconds=0,
        transports=("grpc",),
        baseline=True,
    )
    runs = {r["transport"]: r for r in result["runs"]}
    assert set(runs) == {"grpc", "relay"}
    relay, hub = runs["relay"], runs["grpc"]
    assert relay["received"] > 0 and relay["lost"] == 0 and relay["unmatched"] == 0
    assert hub["p50_over_relay_ms"] == round(hub["p50_ms"] - relay["p50_ms"], 4)
    for run in (hub, relay):
        for process in ("hub", "provider", "subscriber"):
            figures = run["per_message"][process]
            assert figures["wakeups"] > 0 and figures["cpu_us"] > 0, (run["transport"], process, figures)
    assert result["relay"]["2000"]["hub_wakeups_per_message"] == relay["hub_wakeups_per_message"]


def test_per_message_figures_are_differences_over_the_messages_sent() -> None:
    assert bench_api._per_message((10, 4, 3_000_000), (30, 6, 5_000_000), 10) == {
        "wakeups": 2.0,
        "preempted": 0.2,
        "cpu_us": 200.0,
    }
    assert bench_api._per_message(None, (1, 1, 1), 10) == {"wakeups": None, "preempted": None, "cpu_us": None}
    assert bench_api._switches(-1) is None  # no such process: no figure, not an error
