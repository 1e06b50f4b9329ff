"""Scale beyond one process: 2 `anycar fleet ingest` workers and 2 `anycar fleet serve --workers 0`
API processes on one PostgreSQL and a Mosquitto of the test's own; under load one worker is
SIGKILLed (and started again with its id) and one API process is SIGKILLed. Nothing is lost or
stored twice (rows counted against what was published), and the live feed goes on through the
other API process (LISTEN/NOTIFY carries the workers' commits to every API process)."""

from __future__ import annotations

from anycar.bench import fleet_cluster


async def test_kill_a_worker_and_an_api_process_under_load() -> None:
    r = await fleet_cluster.run(vehicles=40, rate=200.0, seconds=8.0, restart_after_s=1.5)
    assert r["published"] >= 1000, r
    assert r["acked_by_broker"] == r["published"], r
    assert r["nothing_lost"] and r["stored_once"], r
    assert r["live_positions_api1_before_kill"] > 0, r  # both API processes had the feed
    assert r["live_positions_api2_after_api1_killed"] > 100, r  # and it went on without API 1
    assert r["rows"]["dead_letters"] == 0, r
