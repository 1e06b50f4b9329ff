"""Measure the fleet domain's cost on a real database: N vehicles driving a day at 1 Hz, sent in
5-second batches through ``Store.commit`` with the derivation after each (as ``anycar fleet
serve`` does), then the fleet's daily report.

    .venv/bin/python tools/bench_fleet_domain.py --db sqlite:////tmp/bench.sqlite3 --vehicles 10 --hours 1
    .venv/bin/python tools/bench_fleet_domain.py --db postgresql://postgres@127.0.0.1/DB --vehicles 10 --hours 1

Prints JSON: commit and derivation time per batch (median, p99), samples per second derived,
the report's time, and the load average (the machine is shared: say so when quoting).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from anycar.fleet import registry, reports
from anycar.fleet.db import make_engine
from anycar.fleet.domain import DomainPipeline
from anycar.fleet.migrate import upgrade
from anycar.fleet.store import Accepted, Store
from fleet_domain_support import Drive


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--vehicles", type=int, default=10)
    ap.add_argument("--hours", type=float, default=1.0)
    args = ap.parse_args()
    engine = make_engine(args.db)
    upgrade(engine)
    store = Store(engine)
    domain = DomainPipeline(store)
    tenant = f"bench-{uuid.uuid4().hex[:6]}"
    drives = []
    for i in range(args.vehicles):
        creds = registry.add_vehicle(
            engine, f"LKYBENCH{i:09d}", "kaiyun_pickman", tenant=tenant, wire_id=f"{tenant}-{i}"
        )
        drive = Drive(creds.vehicle, step_s=1.0, lon=120.0 + i / 100)
        seconds = args.hours * 3600
        while seconds > 0:  # 10 min driving at 30 km/h, 2 min standing, 1 min at a red light ...
            for leg, kmh in ((600, 30.0), (60, 0.0), (300, 40.0), (180, 0.0)):
                drive.leg(min(leg, seconds), kmh)
                seconds -= leg
        drives.append((store.vehicle(creds.vehicle), drive.batches(per_batch=5)))
    commit_ms, derive_ms = [], []
    rounds = max(len(b) for _, b in drives)
    for r in range(rounds):
        for ref, batches in drives:
            if r >= len(batches):
                continue
            t = time.perf_counter()
            store.commit([Accepted(ref, batches[r])])
            commit_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            domain.run_pending()
            derive_ms.append((time.perf_counter() - t) * 1000)
    samples = domain.stats.samples
    t = time.perf_counter()
    report = reports.fleet_report(
        engine, registry.tenant_id(engine, tenant), reports.period(day="2026-12-01")
    )
    report_ms = (time.perf_counter() - t) * 1000

    def p99(xs: list[float]) -> float:
        return sorted(xs)[int(len(xs) * 0.99) - 1]

    print(
        json.dumps(
            {
                "db": engine.dialect.name,
                "vehicles": args.vehicles,
                "hours": args.hours,
                "batches": len(commit_ms),
                "commit_ms_median": round(statistics.median(commit_ms), 2),
                "commit_ms_p99": round(p99(commit_ms), 2),
                "derive_ms_median": round(statistics.median(derive_ms), 2),
                "derive_ms_p99": round(p99(derive_ms), 2),
                "derived_samples_per_s": round(samples / (sum(derive_ms) / 1000)),
                "trips": report["totals"]["trips"],
                "report_ms": round(report_ms, 1),
                "loadavg": Path("/proc/loadavg").read_text().split()[:3],
            }
        )
    )
    engine.dispose()


if __name__ == "__main__":
    main()
