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


def test_stages_give_the_wal_of_each_relation_after_a_checkpoint_and_steady() -> None:
    """pg-tail: pg_walinspect's records of the bench database, per message, by table."""
    out = fleet.stages(messages=1000, batch=250, vehicles=100, wal_compression="lz4")
    assert out["wal_compression"] == "lz4"
    for half in ("after_checkpoint", "steady"):
        wal = out["wal_per_msg"][half]
        assert "error" not in wal, wal
        # every message writes its signal values, its position and its dedup key
        assert {"signal_batches", "positions", "received", "received_pkey"} <= set(wal), wal
        assert wal["signal_batches"]["bytes"] > 100
        assert wal["total"]["bytes"] == round(sum(v["bytes"] for k, v in wal.items() if k != "total"), 1)


def test_a_checkpoint_in_a_run_is_listed_with_its_time() -> None:
    """pg-tail: the watch sees a checkpoint the server completed between two samples."""
    import time

    from sqlalchemy import text

    from anycar.fleet.db import make_engine

    engine = make_engine(fleet.PG_ADMIN)
    try:
        t0 = time.time()
        watch = fleet.CheckpointWatch(engine, t0)
        watch.sample()
        with engine.connect() as conn:
            conn.execute(text("CHECKPOINT"))
        watch.sample()
        got = watch.figures(stored=100, seconds=1.0)
    finally:
        engine.dispose()
    assert got is not None and got["requested"] >= 1
    event = got["events"][-1]
    assert event["kind"] == "requested" and event["completed"] >= 1
    assert -5 <= event["started_s"] <= event["seen_done_s"] <= time.time() - t0 + 1
    assert set(got["server_wal"]) == {"bytes_per_msg", "records_per_msg", "fpi_per_msg", "mb_per_s"}


def test_latency_windows_merge_the_workers_seconds() -> None:
    stats = [
        {"seconds": {"100": [10, 1, 0, 600], "101": [5, 0, 0, 90]}},
        {"seconds": {"104": [3, 2, 1, 1500], "105": [7, 0, 0, 20]}},
    ]
    assert fleet.latency_windows(stats, 100.0) == [
        {"t_s": 0, "positions": 18, "over_500ms": 3, "over_1s": 1, "max_ms": 1500},
        {"t_s": 5, "positions": 7, "over_500ms": 0, "over_1s": 0, "max_ms": 20},
    ]
