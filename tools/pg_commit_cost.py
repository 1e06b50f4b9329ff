"""What a PostgreSQL commit of the bench's messages costs a message: the worker's Python, the
backend's CPU and its WAL by relation (pg-worker, session 8).

Why: on 2 shared cores timings move with the other helpers' load; instruction counts and WAL
records do not. The messages are the bench generator's (``fleet_procs.Template``: telemetry of 10
values, 1,000 vehicles, each vehicle once in a batch, as in the bench at 11,111 msg/s), judged
once, then committed in batches through ``Store.commit`` into a fresh migrated database.

    python tools/pg_commit_cost.py                      # CPU µs a message, WAL per message
    valgrind --tool=callgrind --instr-atstart=no python tools/pg_commit_cost.py --callgrind

With ``--callgrind`` the script switches callgrind's instrumentation on around the commits only
(``callgrind_control -i on``), so the counts are the worker's commit and nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess  # nosec B404 # callgrind_control, a fixed argument list
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--vehicles", type=int, default=1000)
    parser.add_argument("--callgrind", action="store_true", help="instrument the commits only")
    parser.add_argument("--profile", action="store_true", help="cProfile the commits (wall clock)")
    args = parser.parse_args()

    from sqlalchemy import text

    from anycar.bench.fleet import cpu_s, database, register, wal_by_relation, wal_lsn
    from anycar.bench.fleet_procs import Template, vehicle_name
    from anycar.fleet import store as store_module
    from anycar.fleet.db import make_engine
    from anycar.fleet.ingest import judge, tune_gc
    from anycar.fleet.store import Accepted, Store

    folder = Path(tempfile.mkdtemp(prefix="anycar-pg-commit-cost-"))
    out: dict[str, object] = {"messages": args.messages, "batch": args.batch, "vehicles": args.vehicles}
    try:
        with database("postgres", folder) as url:
            engine = make_engine(url)
            register(engine, "P", args.vehicles)
            templates = [
                Template(vehicle_name("P", i), f"{i:016x}", 48.0 + i / 1e4) for i in range(args.vehicles)
            ]
            t = time.time()
            store_module.CACHE_S = float("inf")  # no refresh inside the measured part
            store = Store(engine)
            store.prefetch({tpl.vehicle for tpl in templates})
            now = time.time() + 3600
            warm = args.batch
            accepted = []
            for n in range(args.messages + warm):
                tpl = templates[n % args.vehicles]
                burst = t + (n // 100) * 0.01  # the generator's bursts share their time
                got = judge(
                    store,
                    f"anycar/v1/{tpl.vehicle}/telemetry",
                    tpl.payload(n // args.vehicles + 1, burst),
                    now,
                )
                if not isinstance(got, Accepted):
                    raise RuntimeError(f"refused: {got}")
                accepted.append(got)
            store.commit(accepted[:warm])  # path set, prepared statements, the pool's connection
            with engine.connect() as conn:
                backend = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() or 0)
                conn.execute(text("CHECKPOINT"))
            tune_gc()
            lsn0 = wal_lsn(engine)
            pg0 = cpu_s(backend) or 0.0
            profiler = None
            if args.profile:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            if args.callgrind:
                subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True)  # nosec B603 B607
            c0, t0 = time.process_time(), os.times()
            for i in range(warm, warm + args.messages, args.batch):
                store.commit(accepted[i : i + args.batch])
            worker = time.process_time() - c0
            t1 = os.times()
            out["worker_user_sys_us"] = [
                round(1e6 * (t1.user - t0.user) / args.messages, 1),
                round(1e6 * (t1.system - t0.system) / args.messages, 1),
            ]
            if args.callgrind:
                subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True)  # nosec B603 B607
            if profiler is not None:
                profiler.disable()
            pg = (cpu_s(backend) or 0.0) - pg0
            wal = wal_by_relation(engine, lsn0, wal_lsn(engine), args.messages)
            engine.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    out["cpu_us_per_msg"] = {
        "commit_worker": round(1e6 * worker / args.messages, 1),
        "postgres_backend": round(1e6 * pg / args.messages, 1),
    }
    out["wal_per_msg"] = wal
    out["loadavg"] = os.getloadavg()
    print(json.dumps(out))
    if profiler is not None:
        import pstats

        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
