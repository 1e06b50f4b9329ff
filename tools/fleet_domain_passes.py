"""Count what the fleet domain's passes do with two ingest workers on one database, in one process
(fleet-domain, session 6): how many vehicle passes re-derive, cost a window count, or read
nothing new; the SQL statements per vehicle pass by kind; the CPU seconds per message of the
commits and of the passes (process time: a machine loaded by others moves it little); and the
share of a pass spent reading the stream back.

    .venv/bin/python tools/fleet_domain_passes.py --db postgres --vehicles 200 --seconds 120
    .venv/bin/python tools/fleet_domain_passes.py --db sqlite --old   # a stream stamped 1 day back
    .venv/bin/python tools/fleet_domain_passes.py --db sqlite --workers 1 --per-pass 1 --vehicles 300
        # the console bench's shape: one process, every vehicle one message a second, a pass a second

Two ``Store``s each with its own ``DomainPipeline`` stand for two workers: each vehicle sends
``--per-pass`` messages per second, alternately to the workers (a shared subscription), each
worker commits what it got in each sub-step; worker A runs a pass every second, worker B every
``--b-every`` seconds (a worker whose passes take longer). ``--old`` stamps the stream a day
back (a hub clock behind, a replayed log): the cursor is then older than the offline limit.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from anycar.bench.fleet import database
from anycar.fleet import derive, latealerts, registry
from anycar.fleet.db import make_engine
from anycar.fleet.domain import DomainPipeline
from anycar.fleet.store import Accepted, Store
from fleet_domain_support import Drive


class Timed:
    """Wrap a module function: calls, process CPU and wall seconds spent in it."""

    def __init__(self, module: Any, name: str) -> None:
        self.module, self.name, self.fn = module, name, getattr(module, name)
        self.calls, self.cpu, self.wall = 0, 0.0, 0.0
        setattr(module, name, self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        c, w = time.process_time(), time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.calls += 1
            self.cpu += time.process_time() - c
            self.wall += time.perf_counter() - w


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    ap.add_argument("--vehicles", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=120, help="drive time (one pass of A per second)")
    ap.add_argument("--per-pass", type=int, default=4, help="messages per vehicle per second")
    ap.add_argument("--b-every", type=int, default=1, help="worker B passes every this many seconds")
    ap.add_argument("--old", action="store_true", help="stamp the stream a day back")
    ap.add_argument("--workers", type=int, choices=(1, 2), default=2, help="1: every commit and pass in A")
    args = ap.parse_args()
    if args.vehicles < 1 or args.seconds < 1 or args.per_pass < args.workers or args.b_every < 1:
        raise SystemExit(
            "fleet_domain_passes: --vehicles, --seconds, --b-every >= 1, --per-pass >= --workers"
        )
    folder = Path(tempfile.mkdtemp(prefix="anycar-domain-passes-"))
    with database(args.db, folder) as url:
        engine = make_engine(url)
        kinds: collections.Counter[str] = collections.Counter()

        @event.listens_for(engine, "before_cursor_execute")
        def _count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            words = statement.split()
            kinds[" ".join(words[:3]).lower()[:40]] += 1

        stores = [Store(engine), Store(engine)]
        pipes = [DomainPipeline(s) for s in stores]
        tenant = f"passes-{uuid.uuid4().hex[:6]}"
        start = time.time() - args.seconds - (86_400 if args.old else 5)
        step = 1.0 / args.per_pass
        refs, drives = [], []
        for i in range(args.vehicles):
            creds = registry.add_vehicle(
                engine, f"LKYPASS{i:010d}", "kaiyun_pickman", tenant=tenant, wire_id=f"{tenant}-{i}"
            )
            refs.append(stores[0].vehicle(creds.vehicle))
            drive = Drive(creds.vehicle, t=start, step_s=step, lon=120.0 + i / 100)
            for leg, kmh in ((300, 30.0), (60, 0.0)) * (args.seconds // 360 + 1):
                drive.leg(leg, kmh)
            drives.append(drive.batches(per_batch=1))
        read = Timed(derive, "_samples")
        # main's separate window count (this branch counts inside the read's statement)
        count = Timed(derive, "_already_derived") if hasattr(derive, "_already_derived") else None
        review = Timed(latealerts, "review_offline")
        kinds.clear()
        commit_cpu = pass_cpu = 0.0
        messages = 0
        for sec in range(args.seconds):
            for sub in range(args.per_pass):
                k = sec * args.per_pass + sub
                for w in (0, 1):
                    batch = [
                        Accepted(refs[v], drives[v][k])
                        for v in range(args.vehicles)
                        if (v + k) % args.workers == w and k < len(drives[v])
                    ]
                    if batch:
                        c = time.process_time()
                        stores[w].commit(batch)
                        commit_cpu += time.process_time() - c
                        messages += len(batch)
                # staggered: A's pass half-way through the second, B's at its end
                for w, due in ((0, sub == max(0, args.per_pass // 2 - 1)), (1, sub == args.per_pass - 1)):
                    if due and (w == 0 or (args.workers == 2 and sec % args.b_every == args.b_every - 1)):
                        c = time.process_time()
                        pipes[w].run_pending()
                        pass_cpu += time.process_time() - c
        for p in pipes:
            c = time.process_time()
            p.run_pending()
            pass_cpu += time.process_time() - c
        stats = [vars(p.stats) for p in pipes]
        vehicle_passes = sum(s["vehicles"] for s in stats)
        per_pass = {k: round(n / max(1, vehicle_passes), 3) for k, n in kinds.most_common(14)}
        result = {
            "db": args.db,
            "vehicles": args.vehicles,
            "seconds": args.seconds,
            "messages": messages,
            "per_pass": args.per_pass,
            "b_every": args.b_every,
            "workers": args.workers,
            "old_stream": args.old,
            "vehicle_passes": vehicle_passes,
            **{
                k: sum(s.get(k, 0) for s in stats)
                for k in ("rederived", "already_derived", "unchanged", "alerts", "errors")
            },
            "statements_per_vehicle_pass": round(sum(kinds.values()) / max(1, vehicle_passes), 2),
            "statements_by_kind_per_vehicle_pass": per_pass,
            "commit_cpu_ms_per_msg": round(1000 * commit_cpu / max(1, messages), 4),
            "pass_cpu_ms_per_msg": round(1000 * pass_cpu / max(1, messages), 4),
            "pass_cpu_ms_per_vehicle_pass": round(1000 * pass_cpu / max(1, vehicle_passes), 4),
            "read_share_of_pass_cpu": round(read.cpu / max(1e-9, pass_cpu), 3),
            "window_count_share_of_pass_cpu": round(count.cpu / max(1e-9, pass_cpu), 3) if count else None,
            "review_offline": {
                "calls": review.calls,
                "cpu_share_of_pass": round(review.cpu / max(1e-9, pass_cpu), 3),
            },
            "loadavg": os.getloadavg(),
        }
        engine.dispose()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
