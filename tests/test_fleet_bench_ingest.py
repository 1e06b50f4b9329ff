"""`anycar bench fleet`'s own parts, small (ingest-speed): the raw-socket load generator through a
private Mosquitto into a real PostgreSQL with zero loss, the CPU meter of every part, and the
per-stage figures (each stage measured, the stored rows counted)."""

from __future__ import annotations

from anycar.bench import fleet


def test_a_short_ingest_run_counts_every_row_and_every_part_s_cpu() -> None:
    run = fleet.ingest("postgres", workers=1, vehicles=50, rate=300.0, seconds=2.0)
    assert run["published"] >= 500 and run["stored"] == run["published"]
    assert run["zero_loss"] is True and run["rows"]["signal_values"] == 10 * run["published"]
    cpu = run["cpu_ms_per_msg"]
    assert {"worker", "postgres", "broker", "generator"} <= set(cpu)  # each read from /proc as it ran
    assert cpu["worker"] > 0 and cpu["postgres"] > 0, cpu  # the broker's few ms may be under one tick
    assert cpu["total"] == round(sum(cpu[p] for p in ("worker", "postgres", "broker", "generator")), 4)
    ceiling = [v for k, v in cpu.items() if k.startswith("ceiling_msg_per_s_on_")]
    assert len(ceiling) == 1 and ceiling[0] > 0
    assert run["latency_ms"]["p99"] is not None


def test_stages_measure_each_stage_on_real_rows() -> None:
    out = fleet.stages(messages=1000, batch=250, vehicles=100)
    us = out["cpu_us_per_msg"]
    assert set(us) == {
        "mqtt_publish_parse",
        "judge_decode_schema",
        "store_commit_worker",
        "postgres_backend",
        "total",
    }
    assert all(v > 0 for v in us.values()), us
