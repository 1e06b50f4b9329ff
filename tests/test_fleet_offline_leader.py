"""Two real processes running the offline check on one real PostgreSQL at the same moment raise
each offline alert once (ingest-speed): PostgreSQL's advisory lock lets one of them check a
round and the other skips it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select, update

from anycar.bench.fleet import register
from anycar.fleet import db
from anycar.fleet.domain_tables import alerts
from fleet_support import fleet_engine

VEHICLES = 400
CHECKER = """
import json, sys, time
from anycar.fleet.db import make_engine
from anycar.fleet.offline import Busy, check
url, start, now = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
engine = make_engine(url)
with engine.connect() as conn:
    conn.exec_driver_sql("SELECT 1")  # connected before the start, so both begin together
while time.time() < start:
    time.sleep(0.001)
raised = skipped = 0
late = time.time() - start  # how late this process reached the start (the test asserts both were on time)
for _ in range(3):
    try:
        raised += len(check(engine, now))
    except Busy:
        skipped += 1
print(json.dumps({"raised": raised, "skipped": skipped, "late": late}))
"""


def test_two_processes_raise_each_offline_alert_once(tmp_path: Path) -> None:
    with fleet_engine("postgres", tmp_path) as engine:
        register(engine, "OFF", VEHICLES)
        t0 = time.time() - 3600  # every vehicle last heard an hour ago: all are offline
        with engine.begin() as conn:
            conn.execute(update(db.vehicles).values(last_seen=t0))
        start = time.time() + 10.0  # both processes imported and connected by then
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    CHECKER,
                    engine.url.render_as_string(hide_password=False),
                    str(start),
                    str(time.time()),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
        assert all(p.returncode == 0 for p in procs)
        with engine.connect() as conn:
            total = conn.execute(
                select(func.count()).select_from(alerts).where(alerts.c.type == "offline")
            ).scalar()
            counts = (
                select(func.count().label("n"))
                .where(alerts.c.type == "offline")
                .group_by(alerts.c.vehicle_id)
                .subquery()
            )
            per_vehicle = conn.execute(select(func.max(counts.c.n))).scalar()
        assert total == VEHICLES and per_vehicle == 1, (outs, total)
        assert sum(o["raised"] for o in outs) == VEHICLES
        assert all(o["late"] < 0.1 for o in outs), outs  # they did start together
