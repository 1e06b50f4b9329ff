"""`anycar bench fleet`: the fleet cloud's ingest and queries, measured on this machine.

- **ingest**: a load generator (``fleet_procs publish``, the wire format, each message a
  telemetry batch of 10 values) publishes through a Mosquitto of the bench's own, tuned for it
  (``max_inflight_messages`` raised, as the default 20 in flight per client caps a worker's
  batch, and no queue limit), into N ingest worker processes (``fleet_procs worker``, the fleet's
  own ``IngestWorker``) on a fresh PostgreSQL database (or SQLite file). Zero loss is checked by
  counting rows: ``received`` keys, positions and signal values against what was published.
  Throughput is stored messages over the time from the first publish to the last commit;
  publish -> queryable is each position's ``commit returned - publish time``.
- **scale-out**: the same with 1 and with 2 workers, as fast as they go; the ratio.
- **queries**: positions generated in PostgreSQL (``--rows``, 10,000 vehicles, 100 fixes per
  vehicle per day, so rows grow as days of history in day partitions): the last position of
  every vehicle, one vehicle's day, a fleet daily report, timed at each size.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess  # nosec B404 # the benchmark starts the broker, the load generator and the workers it measures
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select, text
from sqlalchemy.engine import Engine

from anycar.errors import ConfigError
from anycar.fleet import daily

MOSQUITTO = "/usr/sbin/mosquitto"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BROKER_CONF = """
listener {port} 127.0.0.1
allow_anonymous true
persistence {persistence}
persistence_location {folder}/
max_inflight_messages 4000
max_queued_messages 0
max_queued_bytes 0
{user}
"""
# No queue limit: at the generator's own pace (--rate 0: over 100,000 msg/s on a fast machine) one
# worker's backlog passes a million messages within 20 s, and a broker that drops beyond it
# would make the bench measure its queue limit, not the ingest (session 10: 1,270,000 of
# 2,399,337 stored under max_queued_messages 1000000). A deployment keeps a bound
# (docs/deployment.md).


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A Mosquitto of the bench's own on a free port (it may be restarted on the same port)."""

    def __init__(self, folder: Path, *, persistence: bool = False) -> None:
        self.folder, self.port, self.persistence = folder, free_port(), persistence
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Broker:
        conf = self.folder / "mosquitto.conf"
        conf.write_text(
            BROKER_CONF.format(
                port=self.port,
                folder=self.folder,
                persistence="true" if self.persistence else "false",
                user="user root" if os.geteuid() == 0 else "",
            )
        )
        log = open(self.folder / "mosquitto.log", "ab")  # noqa: SIM115 - the broker keeps it
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=log)  # nosec B603 # fixed argv
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return self
            time.sleep(0.05)
        raise ConfigError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(15)
            self.proc = None


@contextlib.contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A fresh, migrated fleet database: ``postgres`` (dropped after) or ``sqlite`` (a file)."""
    from anycar.fleet.db import make_engine
    from anycar.fleet.maintenance import Maintenance
    from anycar.fleet.migrate import upgrade

    if kind == "sqlite":
        url = f"sqlite:///{folder / 'fleet.sqlite3'}"
        admin = None
    else:
        name = f"anycar_bench_{uuid.uuid4().hex[:10]}"
        admin = make_engine(PG_ADMIN).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    engine = make_engine(url)
    try:
        upgrade(engine)
        Maintenance(engine).run_once()  # today's partitions
        yield url
    finally:
        engine.dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
            admin.dispose()


def register(engine: Engine, prefix: str, vehicles: int) -> None:
    """Register the load generator's vehicles in one statement (what ``vehicle add`` stores)."""
    from anycar.fleet import db, registry

    tid = registry.tenant_id(engine, "bench", create=True)
    from anycar.bench.fleet_procs import vehicle_name

    now = time.time()
    rows = [
        {
            "tenant_id": tid,
            "vin": f"BENCH{i:012d}",
            "brand": "kaiyun_pickman",
            "wire_id": vehicle_name(prefix, i),
            "kind": "hub",
            "revoked": False,
            "created": now,
        }
        for i in range(vehicles)
    ]
    with engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(db.vehicles.insert(), rows[i : i + 5000])


def _proc(*args: str, log: Path | None = None) -> subprocess.Popen[str]:
    """A bench process; its stderr goes to ``log`` (a pipe nobody reads could fill and stall it)."""
    err: Any = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(  # nosec B603 # our own interpreter and module, fixed arguments
        [sys.executable, "-m", "anycar.bench.fleet_procs", *args],
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
    )


class Workers:
    def __init__(
        self, folder: Path, url: str, port: int, n: int, batch: int, *, domain: bool = False
    ) -> None:
        self.folder, self.url, self.port, self.batch = folder, url, port, batch
        self.domain = domain  # run the serving worker's domain handlers too (ingest-worker)
        self.ids = [f"bench-w{i}-{uuid.uuid4().hex[:6]}" for i in range(n)]
        self.procs: dict[str, subprocess.Popen[str]] = {}

    def start(self, wid: str) -> None:
        log = self.folder / f"{wid}.log"
        proc = _proc(
            "worker",
            self.url,
            str(self.port),
            wid,
            str(self.folder / f"{wid}.json"),
            str(self.batch),
            *(["domain"] if self.domain else []),
            log=log,
        )
        if proc.stdout is None:
            raise RuntimeError("worker without stdout")
        line = proc.stdout.readline()
        if line.strip() != "ready":
            err = log.read_text(errors="replace")
            raise ConfigError(f"bench worker did not start: {line} {err[-2000:]}")
        self.procs[wid] = proc

    def start_all(self) -> None:
        for wid in self.ids:
            self.start(wid)

    def kill(self, wid: str) -> None:
        self.procs[wid].send_signal(signal.SIGKILL)
        self.procs[wid].wait(15)

    def stats(self) -> list[dict[str, Any]]:
        out = []
        for wid in self.ids:
            with contextlib.suppress(OSError, ValueError):
                out.append(json.loads((self.folder / f"{wid}.json").read_text()))
        return out

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process of this machine, None if gone: its threads' run
    time in nanoseconds (``/proc/PID/task/*/schedstat``), else ``/proc/PID/stat``'s clock ticks.
    The ticks are samples (a process is charged a tick if it runs when the tick comes): a
    PostgreSQL backend that ran 30 ms in short bursts was once charged none (session 10)."""
    try:
        run_ns = [
            int((task / "schedstat").read_text().split()[0]) for task in Path(f"/proc/{pid}/task").iterdir()
        ]
        if run_ns:  # none: a zombie, whose time only the ticks below still hold
            return sum(run_ns) / 1e9
    except (OSError, IndexError, ValueError):
        pass
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """The CPU the other parts of a run use (ingest-speed): the broker, the load generators and
    the PostgreSQL backends serving the bench's database, read from /proc as the run goes (a
    backend's last reading is kept after it exits). With the workers' own figure this is what a
    message costs the whole machine, which is the honest figure on a box shared with others."""

    def __init__(self, engine: Engine | None, db_name: str | None) -> None:
        self.engine, self.db_name = engine, db_name
        self.start: dict[str, dict[int, float]] = {}
        self.last: dict[str, dict[int, float]] = {}

    def sample(self, group: str, pids: list[int]) -> None:
        for pid in pids:
            now = cpu_s(pid)
            if now is None:
                continue
            self.start.setdefault(group, {}).setdefault(pid, now)
            self.last.setdefault(group, {})[pid] = now

    def backends(self) -> list[int]:
        if self.engine is None:
            return []
        with contextlib.suppress(Exception), self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"),
                {"d": self.db_name},
            )
            return [int(r.pid) for r in rows]
        return []

    def used(self) -> dict[str, float]:
        return {
            g: round(sum(self.last[g][p] - self.start[g].get(p, self.last[g][p]) for p in self.last[g]), 3)
            for g in self.last
        }


_CHECKPOINTER_SQL = (
    "SELECT checkpoints_timed, checkpoints_req, checkpoint_write_time, checkpoint_sync_time, "
    "buffers_checkpoint, buffers_backend, "
    "extract(epoch FROM (pg_control_checkpoint()).checkpoint_time) AS started, "
    "(SELECT wal_records FROM pg_stat_wal) AS wal_records, (SELECT wal_fpi FROM pg_stat_wal) AS wal_fpi, "
    "(SELECT wal_bytes FROM pg_stat_wal) AS wal_bytes FROM pg_stat_bgwriter"
)


class CheckpointWatch:
    """The server's checkpoints during a run (pg-tail): ``pg_stat_bgwriter`` and
    ``pg_control_checkpoint()`` read as the run goes, so each checkpoint that completed is listed
    with when it started (the control file's time, whole seconds) and when the bench saw it done,
    on the run's clock, next to the latency of each second; and ``pg_stat_wal`` before and after.
    Both views are the whole server's: another database's writes are in the WAL figures (the
    bench's database is most of it on a quiet machine), and a checkpoint is the server's."""

    def __init__(self, engine: Engine | None, t0: float) -> None:
        self.engine, self.t0 = engine, t0
        self.first: dict[str, float] | None = None
        self.last: dict[str, float] | None = None
        self.events: list[dict[str, Any]] = []

    def sample(self) -> None:
        if self.engine is None:
            return
        try:
            with self.engine.connect() as conn:
                row = dict(conn.execute(text(_CHECKPOINTER_SQL)).one()._mapping)
        except Exception:  # the server restarting in a faults run: the next sample catches up
            return
        now = {k: float(v) for k, v in row.items()}
        if self.first is None:
            self.first = now
        elif self.last is not None:
            done = (now["checkpoints_timed"] + now["checkpoints_req"]) - (
                self.last["checkpoints_timed"] + self.last["checkpoints_req"]
            )
            if done > 0:
                self.events.append(
                    {
                        "started_s": round(now["started"] - self.t0, 1),
                        "seen_done_s": round(time.time() - self.t0, 1),
                        # requested: by WAL volume (max_wal_size) or a CHECKPOINT command
                        "kind": "requested"
                        if now["checkpoints_req"] > self.last["checkpoints_req"]
                        else "timed",
                        "completed": int(done),
                        "buffers": int(now["buffers_checkpoint"] - self.last["buffers_checkpoint"]),
                        "write_s": round(
                            (now["checkpoint_write_time"] - self.last["checkpoint_write_time"]) / 1000, 1
                        ),
                        "sync_s": round(
                            (now["checkpoint_sync_time"] - self.last["checkpoint_sync_time"]) / 1000, 2
                        ),
                    }
                )
        self.last = now

    def figures(self, stored: int, seconds: float) -> dict[str, Any] | None:
        if self.first is None or self.last is None:
            return None
        d = {k: self.last[k] - self.first[k] for k in self.first}
        n = max(1, stored)
        return {
            "timed": int(d["checkpoints_timed"]),
            "requested": int(d["checkpoints_req"]),  # by WAL volume (max_wal_size) or a command
            "events": self.events,
            "buffers_written_by_backends": int(d["buffers_backend"]),
            "server_wal": {  # the whole server's (pg_stat_wal), per stored message
                "bytes_per_msg": round(d["wal_bytes"] / n, 1),
                "records_per_msg": round(d["wal_records"] / n, 2),
                "fpi_per_msg": round(d["wal_fpi"] / n, 4),
                "mb_per_s": round(d["wal_bytes"] / 1e6 / max(1e-9, seconds), 2),
            },
        }


def latency_windows(stats: list[dict[str, Any]], t0: float, width: int = 5) -> list[dict[str, Any]]:
    """The workers' per-second latency figures merged into ``width``-s windows on the run's clock
    (pg-tail): positions stored, how many took over 500 ms and over 1 s, the slowest."""
    merged: dict[int, list[int]] = {}
    for s in stats:
        for sec, (n, slow, slower, worst) in (s.get("seconds") or {}).items():
            w = int((int(sec) - t0) // width) * width
            acc = merged.setdefault(w, [0, 0, 0, 0])
            acc[0] += n
            acc[1] += slow
            acc[2] += slower
            acc[3] = max(acc[3], worst)
    return [
        {"t_s": w, "positions": a[0], "over_500ms": a[1], "over_1s": a[2], "max_ms": a[3]}
        for w, a in sorted(merged.items())
    ]


def percentile(hist: dict[int, int], q: float) -> float | None:
    total = sum(hist.values())
    if not total:
        return None
    want, seen = q * total, 0
    for ms in sorted(hist):
        seen += hist[ms]
        if seen >= want:
            return float(ms)
    return float(max(hist))


def counts(engine: Engine) -> dict[str, int]:
    from anycar.fleet import db, retention

    with engine.connect() as conn:
        out = {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar() or 0)
            for t in (db.positions, db.signal_values, db.dead_letters)
        }
    # the dedup's keys seen (sqlite-marks: on SQLite most are under a boot's mark, not rows)
    return {"received": retention.seen_count(engine), **out}


def ingest(
    kind: str = "postgres",
    *,
    workers: int = 1,
    vehicles: int = 1000,
    rate: float = 0.0,
    seconds: float = 20.0,
    batch: int = 0,
    publishers: int = 1,
    domain: bool = False,
) -> dict[str, Any]:
    """One ingest run; ``rate`` 0 offers as much as the broker acknowledges; ``domain``: the
    workers also run the fleet domain's handlers after each commit, as ``anycar fleet serve``'s do."""
    from anycar.fleet.db import make_engine

    folder = Path(tempfile.mkdtemp(prefix="anycar-bench-fleet-"))
    broker = Broker(folder).start()
    try:
        with database(kind, folder) as url:
            engine = make_engine(url)
            prefixes = [f"B{uuid.uuid4().hex[:6]}p{p}-" for p in range(publishers)]
            for prefix in prefixes:
                register(engine, prefix, vehicles // publishers)
            pool = Workers(folder, url, broker.port, workers, batch, domain=domain)
            pool.start_all()
            meter = CpuMeter(engine if kind == "postgres" else None, url.rsplit("/", 1)[1])
            broker_pid = broker.proc.pid if broker.proc else 0

            def measure(pubs: list[subprocess.Popen[str]]) -> None:
                meter.sample("broker", [broker_pid])
                meter.sample("generator", [p.pid for p in pubs if p.poll() is None])
                meter.sample("postgres", meter.backends())

            measure([])
            load0 = os.getloadavg()
            try:
                started = time.time()
                watch = CheckpointWatch(engine if kind == "postgres" else None, started)
                watch.sample()
                pubs = [
                    _proc(
                        "publish",
                        str(broker.port),
                        str(vehicles // publishers),
                        str(rate / publishers),
                        str(seconds),
                        prefix,
                    )
                    for prefix in prefixes
                ]
                timeline: list[tuple[float, int]] = []
                while any(p.poll() is None for p in pubs):
                    timeline.append((time.time() - started, sum(s.get("stored", 0) for s in pool.stats())))
                    measure(pubs)
                    watch.sample()
                    time.sleep(0.5)
                sent = [json.loads(p.communicate(timeout=180)[0].strip().splitlines()[-1]) for p in pubs]
                published = sum(s["published"] for s in sent)
                # wait for the backlog while it still moves (a loaded machine drains slowly)
                moved_at, last_seen = time.time(), -1
                while (done := sum(s.get("stored", 0) for s in pool.stats())) < published:
                    if done != last_seen:
                        moved_at, last_seen = time.time(), done
                    if time.time() - moved_at > 30:
                        break
                    timeline.append((time.time() - started, done))
                    measure([])
                    watch.sample()
                    time.sleep(1.0)
                time.sleep(1.0)  # the last stats dump
                measure([])
                watch.sample()
                stats = pool.stats()
            finally:
                pool.stop()
            rows = counts(engine)
            engine.dispose()
            load1 = os.getloadavg()
    finally:
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)
    hist: dict[int, int] = {}
    for s in stats:
        for ms, n in s["hist"].items():
            hist[int(ms)] = hist.get(int(ms), 0) + n
    last = max((s["last_commit"] or 0) for s in stats)
    stored = sum(s["stored"] for s in stats)
    windows = timeline[::5]  # 5-s windows: a worker's count moves by whole batches
    rates = [(b[1] - a[1]) / max(1e-9, b[0] - a[0]) for a, b in itertools.pairwise(windows)]
    return {
        "db": kind,
        "workers": workers,
        "vehicles": vehicles,
        "offered_rate": rate or "max",
        "seconds": seconds,
        "batch_max": sorted({s["batch_max"] for s in stats if "batch_max" in s}),
        "published": published,
        "publish_rate": round(sum(s["rate"] for s in sent), 1),
        "stored": stored,
        "rows": rows,
        "zero_loss": rows["received"] == published  # the bench's workers run no dedup pruning
        and rows["positions"] == published
        and rows["signal_values"] == 10 * published,
        "msg_per_s": round(stored / max(1e-9, last - started), 1),
        "msg_per_s_5s_windows": {
            "min": round(min(rates), 1) if rates else None,
            "median": round(statistics.median(rates), 1) if rates else None,
            "max": round(max(rates), 1) if rates else None,
        },
        "latency_ms": {q: percentile(hist, v) for q, v in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))},
        # load-independent: the workers' own CPU per message (PostgreSQL's and the broker's not in it)
        "worker_cpu_ms_per_msg": round(1000 * sum(s.get("cpu_s", 0) for s in stats) / max(1, stored), 3),
        # what a message costs each part of the machine (ingest-speed); the generator's last reading
        # is up to 0.5 s before it exited, PostgreSQL's counts the bench's database's backends only
        "cpu_ms_per_msg": _per_msg(
            {"worker": sum(s.get("cpu_s", 0) for s in stats), **meter.used()}, stored, os.cpu_count() or 1
        ),
        # socket reads per PUBLISH packet: the event loop's wake-ups (ingest-worker)
        "packets_per_read": round(
            sum(s.get("packets", 0) for s in stats) / max(1, sum(s.get("socket_reads", 0) for s in stats)), 2
        ),
        "domain": [s.get("domain") for s in stats] if domain else None,
        "wal_checkpoints": [s.get("wal") for s in stats] if kind == "sqlite" else None,
        # pg-tail: the server's checkpoints in the run, and the latency of each 5 s on the same clock
        "postgres_checkpoints": watch.figures(stored, last - started) if kind == "postgres" else None,
        "latency_by_5s": latency_windows(stats, started),
        # each worker's commits: wall = on a CPU + waiting for one (load) + blocked (I/O, locks)
        "commit_time": [s.get("commits") for s in stats],
        "duplicates": sum(s["duplicates"] for s in stats),
        "db_errors": sum(s["db_errors"] for s in stats),
        "loadavg": {"before": load0, "after": load1},
    }


def _per_msg(cpu: dict[str, float], stored: int, cores: int) -> dict[str, Any]:
    out: dict[str, Any] = {k: round(1000 * v / max(1, stored), 4) for k, v in cpu.items()}
    total = sum(out.values())
    out["total"] = round(total, 4)
    # what this machine's cores could take if they did nothing else: the ceiling the goal meets
    out[f"ceiling_msg_per_s_on_{cores}_cores"] = round(cores * 1000 / total) if total else None
    return out


# -- queries at 10^6 .. 10^7 rows ---------------------------------------------------------------
FIXES_PER_DAY = 100
QUERY_VEHICLES = 10_000


def _backend_cpu_ns(conn: Any) -> int | None:
    """The PostgreSQL backend's CPU time so far (``/proc/PID/schedstat``, ns): the query's own
    CPU, which the machine's load does not inflate as it does the wall time."""
    pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None  # PostgreSQL on another host


def _timed(engine: Engine, sql: str, params: dict[str, Any], repeat: int = 5) -> dict[str, Any]:
    times = []
    cpus = []
    rows = 0
    with engine.connect() as conn:
        for _ in range(repeat):
            c0 = _backend_cpu_ns(conn)
            t = time.perf_counter()
            rows = len(conn.execute(text(sql), params).all())
            times.append((time.perf_counter() - t) * 1000)
            c1 = _backend_cpu_ns(conn)
            if c0 is not None and c1 is not None:
                cpus.append((c1 - c0) / 1e6)
    out: dict[str, Any] = {
        "ms_median": round(statistics.median(times), 2),
        "ms_min": round(min(times), 2),
        "ms_max": round(max(times), 2),
        "runs": repeat,
        "rows": rows,
    }
    if cpus:
        out["cpu_ms_median"] = round(statistics.median(cpus), 2)
    return out


LAST_FROM_VEHICLES = (
    "SELECT wire_id, last_ts, last_lat, last_lon, last_speed, last_heading FROM vehicles "
    "WHERE tenant_id = :t AND last_ts IS NOT NULL ORDER BY wire_id"
)
LAST_FROM_POSITIONS = (
    "SELECT v.wire_id, p.ts, p.lat, p.lon FROM vehicles v CROSS JOIN LATERAL ("
    "SELECT ts, lat, lon FROM positions WHERE vehicle_id = v.id ORDER BY ts DESC LIMIT 1) p "
    "WHERE v.tenant_id = :t"
)
ONE_DAY = (
    "SELECT ts, lat, lon, speed, heading, source FROM positions "
    "WHERE vehicle_id = :v AND ts >= :a AND ts < :b ORDER BY ts"
)
FLEET_DAY = daily.FROM_POSITIONS  # per vehicle fixes, first/last, max speed, km (haversine over lag())


def _report_diff(engine: Engine, day: int) -> dict[str, Any]:
    """The rollup's report against the query over positions: rows, fields that differ, the
    largest km difference (floating-point summation order at most)."""
    with engine.connect() as conn:
        old = conn.execute(text(daily.FROM_POSITIONS), {"a": day * 86_400, "b": (day + 1) * 86_400}).all()
        new = conn.execute(text(daily.FROM_ROLLUP), {"d": day}).all()
    differ = sum(tuple(a[:5]) != tuple(b[:5]) for a, b in zip(old, new, strict=False)) + abs(
        len(old) - len(new)
    )
    km = max((abs(a[5] - b[5]) for a, b in zip(old, new, strict=False)), default=0.0)
    return {"rows": len(old), "rows_differing": differ, "max_km_diff": km}


def queries(sizes: list[int]) -> dict[str, Any]:
    """Fill positions up to each size (10,000 vehicles, 100 fixes a vehicle a day, one day
    partition per day) and time the queries at each."""
    from anycar.fleet import db, partitions
    from anycar.fleet.db import make_engine

    free = shutil.disk_usage("/var/lib/postgresql" if os.path.isdir("/var/lib/postgresql") else "/").free
    need = max(sizes) * 160  # bytes a position row takes with its index, measured
    if free < 3 * need:
        raise ConfigError(f"--rows {max(sizes)}: {free / 1e9:.1f} GB free, want {3 * need / 1e9:.1f} GB")
    folder = Path(tempfile.mkdtemp(prefix="anycar-bench-fleetq-"))
    out: dict[str, Any] = {"vehicles": QUERY_VEHICLES, "fixes_per_vehicle_day": FIXES_PER_DAY, "sizes": []}
    try:
        with database("postgres", folder) as url:
            engine = make_engine(url)
            register(engine, "Q", QUERY_VEHICLES)
            with engine.connect() as conn:
                tid = conn.execute(select(db.vehicles.c.tenant_id).limit(1)).scalar()
                first_id, last_id = conn.execute(
                    select(func.min(db.vehicles.c.id), func.max(db.vehicles.c.id))
                ).one()
            day0 = partitions.day_start(time.time()) + 86_400  # tomorrow onwards: day partitions
            per_day = QUERY_VEHICLES * FIXES_PER_DAY
            filled_days = 0
            for size in sorted(sizes):
                days = max(1, size // per_day)
                partitions.ensure_days(engine, day0, day0 + (days - 1) * 86_400)
                t = time.perf_counter()
                with engine.begin() as conn:
                    for d in range(filled_days, days):
                        conn.execute(
                            text(
                                "INSERT INTO positions (vehicle_id, ts, lat, lon, speed, heading, source) "
                                "SELECT v, CAST(:d AS double precision) + 28800 + f * 288 + (v % 97), 48.1 + (v % 100) / 1000.0 + f / 1e5, "
                                "11.5 + (v / 100) / 1000.0 + f / 1e5, (f * 7 + v) % 60, (f * 13) % 360, 'hub' "
                                "FROM generate_series(CAST(:lo AS integer), CAST(:hi AS integer)) v, "
                                "generate_series(0, CAST(:n AS integer) - 1) f"
                            ),
                            {"d": day0 + d * 86_400, "lo": first_id, "hi": last_id, "n": FIXES_PER_DAY},
                        )
                    conn.execute(
                        text(
                            "UPDATE vehicles SET last_ts = p.ts, last_lat = p.lat, last_lon = p.lon FROM ("
                            "SELECT DISTINCT ON (vehicle_id) vehicle_id, ts, lat, lon FROM positions "
                            "WHERE ts >= :a ORDER BY vehicle_id, ts DESC) p WHERE p.vehicle_id = vehicles.id"
                        ),
                        {"a": day0 + (days - 1) * 86_400},
                    )
                    conn.execute(text("ANALYZE positions"))
                    conn.execute(text("ANALYZE vehicles"))
                fill_s = time.perf_counter() - t
                t = time.perf_counter()
                with engine.begin() as conn:  # the rollup the ingest keeps, made at once for the fill
                    daily.rebuild(conn, day0 + filled_days * 86_400, day0 + days * 86_400)
                    conn.execute(text("ANALYZE position_days"))
                rollup_fill_s = time.perf_counter() - t
                filled_days = days
                with engine.connect() as conn:
                    total = conn.execute(text("SELECT count(*) FROM positions")).scalar()
                    size_b = conn.execute(
                        text(
                            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'positions'::regclass"
                        )
                    ).scalar()
                mid = day0 + (days // 2) * 86_400
                vid = (first_id + last_id) // 2
                out["sizes"].append(
                    {
                        "rows": total,
                        "days": days,
                        "bytes": int(size_b or 0),
                        "fill_s": round(fill_s, 1),
                        "rollup_fill_s": round(rollup_fill_s, 1),
                        "last_position_of_10000_vehicles": _timed(engine, LAST_FROM_VEHICLES, {"t": tid}),
                        "last_position_from_positions_lateral": _timed(
                            engine, LAST_FROM_POSITIONS, {"t": tid}, 3
                        ),
                        "one_vehicle_day": _timed(
                            engine, ONE_DAY, {"v": vid, "a": mid, "b": mid + 86_400}, 20
                        ),
                        "fleet_daily_report": _timed(engine, FLEET_DAY, {"a": mid, "b": mid + 86_400}, 3),
                        "fleet_daily_report_rollup": _timed(
                            engine, daily.FROM_ROLLUP, {"d": int(mid // 86_400)}, 20
                        ),
                        "rollup_vs_query": _report_diff(engine, int(mid // 86_400)),
                        "loadavg": os.getloadavg(),
                    }
                )
            engine.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def rollup_cost(
    vehicles: int = 500, fixes: int = 40, batch: int = 200, late_every: int = 0
) -> dict[str, Any]:
    """What keeping ``position_days`` adds to a batch's commit (PostgreSQL, ``Store.commit`` as the
    worker calls it, no broker): the same messages committed with and without the handler,
    alternating batches; the handler's own wall and client CPU per message. ``late_every``: one
    message in N arrives after the rest (the recompute path)."""
    from anycar.bench.fleet_procs import vehicle_name
    from anycar.fleet.db import make_engine
    from anycar.fleet.store import Accepted, Store

    folder = Path(tempfile.mkdtemp(prefix="anycar-bench-rollup-"))
    try:
        with database("postgres", folder) as url:
            engine = make_engine(url)
            register(engine, "R", vehicles)
            store = Store(engine)
            store.prefetch(vehicle_name("R", n) for n in range(vehicles))
            refs = [store.vehicle(vehicle_name("R", n)) for n in range(vehicles)]
            kept = store.position_handlers[:]
            spent = {"wall": 0.0, "cpu": 0.0, "server_ns": 0.0}

            def measured(conn: Any, rows: list[dict[str, Any]]) -> None:
                s0 = _backend_cpu_ns(conn)
                w, c = time.perf_counter(), time.process_time()
                for h in kept:
                    h(conn, rows)
                spent["wall"] += time.perf_counter() - w
                spent["cpu"] += time.process_time() - c
                s1 = _backend_cpu_ns(conn)
                if s0 is not None and s1 is not None:
                    spent["server_ns"] += s1 - s0  # the PostgreSQL backend's CPU for the handler's statements

            t0 = time.time() // 86_400 * 86_400 + 3_600
            docs: list[Accepted] = []
            for f in range(fixes):
                for n, ref in enumerate(refs):
                    assert ref is not None  # nosec B101 # registered just above
                    docs.append(
                        Accepted(
                            ref,
                            {
                                "kind": "position",
                                "ts": t0 + f * 10 + n % 7,
                                "lat": 48.1 + f / 1e4,
                                "lon": 11.5 + n / 1e4,
                                "speed": float(f % 50),
                                "heading": None,
                            },
                        )
                    )
            if late_every:
                docs = [d for i, d in enumerate(docs) if i % late_every] + docs[::late_every]
            batches = [docs[i : i + batch] for i in range(0, len(docs), batch)]
            walls: dict[str, float] = {"with": 0.0, "without": 0.0}
            counted: dict[str, int] = {"with": 0, "without": 0}
            for i, b in enumerate(batches):
                mode = "with" if i % 2 == 0 else "without"
                store.position_handlers = [measured] if mode == "with" else []
                t = time.perf_counter()
                store.commit(b)
                walls[mode] += time.perf_counter() - t
                counted[mode] += len(b)
            engine.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    n_with = max(1, counted["with"])
    return {
        "messages": len(docs),
        "batch": batch,
        "late_every": late_every,
        "commit_ms_per_msg_with": round(walls["with"] * 1000 / n_with, 4),
        "commit_ms_per_msg_without": round(walls["without"] * 1000 / max(1, counted["without"]), 4),
        "handler_wall_ms_per_msg": round(spent["wall"] * 1000 / n_with, 4),
        "handler_client_cpu_ms_per_msg": round(spent["cpu"] * 1000 / n_with, 4),
        "handler_server_cpu_ms_per_msg": round(spent["server_ns"] / 1e6 / n_with, 4),
        "loadavg": os.getloadavg(),
    }


def run(
    *,
    seconds: float = 20.0,
    vehicles: int = 1000,
    rate: float = 0.0,
    latency_rate: float = 1000.0,
    latency_workers: int = 1,
    rows: list[int] | None = None,
    parts: tuple[str, ...] = ("ingest", "scaleout", "latency", "sqlite"),
    domain: bool = False,
    sqlite_workers: int = 1,
    wal_compression: str | None = None,
    batch: int = 0,
) -> dict[str, Any]:
    """The parts asked for; ``batch``: every ingest run's workers' batch (0: the worker's own)."""
    result: dict[str, Any] = {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg(), "domain": domain}
    if "ingest" in parts or "scaleout" in parts:
        one = ingest(
            "postgres", workers=1, vehicles=vehicles, rate=rate, seconds=seconds, domain=domain, batch=batch
        )
        result["postgres_1_worker"] = one
        if "scaleout" in parts:
            two = ingest(
                "postgres",
                workers=2,
                vehicles=vehicles,
                rate=rate,
                seconds=seconds,
                domain=domain,
                batch=batch,
            )
            result["postgres_2_workers"] = two
            result["scaleout_ratio"] = round(two["msg_per_s"] / max(1e-9, one["msg_per_s"]), 2)
    if "latency" in parts:
        result["postgres_latency"] = ingest(
            "postgres",
            workers=latency_workers,
            vehicles=vehicles,
            rate=latency_rate,
            seconds=seconds,
            domain=domain,
            batch=batch,
        )
    if "sqlite" in parts:  # sqlite-rate: N workers on the one file take turns at its write lock
        key = "sqlite_1_worker" if sqlite_workers == 1 else f"sqlite_{sqlite_workers}_workers"
        result[key] = ingest(
            "sqlite",
            workers=sqlite_workers,
            vehicles=vehicles,
            rate=rate,
            seconds=seconds,
            domain=domain,
            batch=batch,
        )
    if "sqlite" in parts or "sqlite-latency" in parts:  # sqlite-latency: this run alone (sustained)
        result["sqlite_latency"] = ingest(
            "sqlite",
            workers=sqlite_workers,
            vehicles=vehicles,
            rate=latency_rate,
            seconds=seconds,
            domain=domain,
            batch=batch,
        )
    if "faults" in parts:  # 2 workers + 2 API processes, one of each killed under load
        import asyncio

        from anycar.bench import fleet_cluster

        result["kill_worker_and_api"] = asyncio.run(
            fleet_cluster.run(vehicles=min(vehicles, 200), rate=latency_rate / 2, seconds=seconds)
        )
    if "stages" in parts:
        # every vehicle at least twice: the first half right after a checkpoint, the second on
        # pages already logged whole (pg-tail: what a checkpoint costs a fleet of that size)
        result["stages"] = stages(
            messages=max(20_000, 2 * vehicles), vehicles=vehicles, wal_compression=wal_compression
        )
    if "rollup" in parts:  # fleet-report: what position_days costs the ingest
        result["rollup_ingest"] = [rollup_cost(), rollup_cost(late_every=10)]
    if rows:
        result["queries"] = queries(rows)
    result["loadavg_end"] = os.getloadavg()
    return result


# -- WAL per message by relation (pg-tail) ---------------------------------------------------------
# pg_walinspect's records between two LSNs, kept to the bench database's relations (a record's
# first block names its relation; a partition is counted under its table): records, bytes, and
# full-page images (the first change of a page after a checkpoint logs the whole page).
_WAL_BY_RELATION = r"""
SELECT coalesce(regexp_replace(pg_filenode_relation(0, CAST(m[2] AS oid))::text, '_p\d{8}$|_default$', ''),
                'relfilenode ' || m[2]) AS rel,
       count(*) AS records, sum(record_length) AS bytes, sum(fpi_length) AS fpi_bytes,
       sum((length(block_ref) - length(replace(block_ref, '(FPW)', ''))) / 5) AS fpi
FROM (SELECT record_length, fpi_length, block_ref, regexp_match(block_ref, 'rel \d+/(\d+)/(\d+)') AS m
      FROM pg_get_wal_records_info(CAST(:a AS pg_lsn), CAST(:b AS pg_lsn))) r
WHERE CAST(m[1] AS oid) = (SELECT oid FROM pg_database WHERE datname = current_database())
GROUP BY 1 ORDER BY 3 DESC
"""


def wal_lsn(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT pg_current_wal_lsn()")).scalar())


def wal_by_relation(engine: Engine, a: str, b: str, messages: int) -> dict[str, Any]:
    """The WAL the bench database's relations got between LSNs ``a`` and ``b``, per message."""
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_walinspect"))
            rows = conn.execute(text(_WAL_BY_RELATION), {"a": a, "b": b}).all()
    except DBAPIError as exc:  # the server recycled the segments already (others writing much WAL)
        return {"error": str(getattr(exc, "orig", exc)).splitlines()[0]}
    n = max(1, messages)
    out: dict[str, Any] = {
        r.rel: {
            "records": round(r.records / n, 3),
            "bytes": round(r.bytes / n, 1),
            "fpi": round(r.fpi / n, 4),
            "fpi_bytes": round(r.fpi_bytes / n, 1),
        }
        for r in rows
    }
    out["total"] = {
        k: round(sum(v[k] for v in out.values()), 4 if k == "fpi" else 1)
        for k in ("records", "bytes", "fpi", "fpi_bytes")
    }
    return out


# -- CPU per message per stage, in one process (ingest-speed) ----------------------------------
def stages(
    *, messages: int = 20_000, batch: int = 500, vehicles: int = 1000, wal_compression: str | None = None
) -> dict[str, Any]:
    """What each stage of a worker costs per message, measured alone (process CPU time, so a
    machine loaded by others moves it little): cutting MQTT PUBLISH packets out of the socket's
    bytes (``MqttIn``), judging (decode, schema, checks), the store's commit in the worker, and
    the PostgreSQL backend's CPU for that commit (read from /proc for its pid). The messages are
    the bench generator's (telemetry batches of 10 values), all new, in batches of ``batch``."""
    from anycar.bench.fleet_procs import PATHS, vehicle_name
    from anycar.fleet.db import make_engine
    from anycar.fleet.ingest import judge, tune_gc
    from anycar.fleet.mqttin import MqttIn, mqtt_string, varint
    from anycar.fleet.store import Accepted, Store
    from anycar.wire import Channel, Origin, encode
    from anycar.wire import messages as wire_messages
    from anycar.wire import topic as wire_topic

    folder = Path(tempfile.mkdtemp(prefix="anycar-bench-fleets-"))
    out: dict[str, Any] = {"messages": messages, "batch": batch, "values_per_message": len(PATHS)}
    try:
        with database("postgres", folder) as url, contextlib.ExitStack() as stack:
            engine = make_engine(url)
            if wal_compression is not None:  # pg-tail: this session's, the server's own untouched
                out["wal_compression"] = wal_compression

                @event.listens_for(engine, "connect")
                def _set(dbapi_connection: Any, _record: Any) -> None:
                    dbapi_connection.execute(
                        "SELECT set_config('wal_compression', %s, false)", (wal_compression,)
                    )
                    dbapi_connection.commit()

            register(engine, "S", vehicles)
            origins = [Origin(vehicle_name("S", i), f"{i:016x}") for i in range(vehicles)]
            t = time.time()
            packets, wire = [], []
            for n in range(messages):
                v = n % vehicles
                doc = wire_messages.telemetry(
                    origins[v],
                    n // vehicles + 1,
                    [(p, t + n / 1e4, float(k) + n / 1e6) for k, p in enumerate(PATHS)],
                    campaign="bench",
                    version=1,
                    prio=5,
                    ts=t + n / 1e4,
                )
                name = wire_topic(origins[v].vehicle, Channel.TELEMETRY)
                payload = encode(doc, validate=False)
                wire.append((name, payload))
                body = mqtt_string(name) + (n % 65535 + 1).to_bytes(2, "big") + b"\x00" + payload
                packets.append(b"\x32" + varint(len(body)) + body)
            stream = b"".join(packets)
            tune_gc()  # as a worker process runs (anycar fleet serve/ingest, the bench's workers)

            client = MqttIn("127.0.0.1", 1, "stages")  # never connected: fed the bytes directly
            c0 = time.process_time()
            for i in range(0, len(stream), 65536):  # as the socket hands them over
                client._received(stream[i : i + 65536])
            parsed = client.take(messages)
            mqtt_cpu = time.process_time() - c0
            if len(parsed) != messages:
                raise RuntimeError(f"stages: parsed {len(parsed)} of {messages} packets")

            store = Store(engine)
            store.prefetch({o.vehicle for o in origins})
            now = time.time() + 3600
            c0 = time.process_time()
            verdicts = [judge(store, m.topic, m.payload, now) for m in parsed]
            judge_cpu = time.process_time() - c0
            accepted = [v for v in verdicts if isinstance(v, Accepted)]
            if len(accepted) != messages:
                raise RuntimeError(f"stages: {messages - len(accepted)} messages refused")

            # pg-tail: its own connection, taken first (not the one the commits use)
            keep = stack.enter_context(engine.connect())  # keeps the run's WAL until it is read:
            keep.execute(  # a temporary slot (gone with this session, whatever happens)
                text("SELECT pg_create_physical_replication_slot(:n, true, true)"),
                {"n": f"anycar_bench_{uuid.uuid4().hex[:10]}"},
            )
            keep.commit()
            with engine.connect() as conn:  # the pool's connection the commits will use
                conn.exec_driver_sql("SELECT 1")
            with engine.connect() as conn:
                backend = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() or 0)
            # pg-tail: the WAL of each half, the first right after a checkpoint (every page it
            # touches logged whole once: what each checkpoint costs), the second without one
            half = (messages // 2) // batch * batch
            with engine.connect() as conn:
                conn.execute(text("CHECKPOINT"))
            lsns = [wal_lsn(engine)]
            # every backend of the database but ``keep``'s (pg-tail: a commit may open a second
            # connection, e.g. for a new signal path set, and the pool then takes turns on them)
            backends_sql = text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            pg0 = {pid: cpu_s(pid) or 0.0 for pid in keep.execute(backends_sql).scalars()}
            pg0.setdefault(backend, cpu_s(backend) or 0.0)
            wall0, c0 = time.perf_counter(), time.process_time()
            for i in range(0, messages, batch):
                if i == half:
                    lsns.append(wal_lsn(engine))
                store.commit(accepted[i : i + batch])
            commit_cpu = time.process_time() - c0
            wall = time.perf_counter() - wall0
            pg_cpu = sum(
                (cpu_s(pid) or pg0.get(pid, 0.0)) - pg0.get(pid, 0.0)
                for pid in keep.execute(backends_sql).scalars()
            )
            lsns.append(wal_lsn(engine))
            out["wal_per_msg"] = {
                "after_checkpoint": wal_by_relation(engine, lsns[0], lsns[1], half),
                "steady": wal_by_relation(engine, lsns[1], lsns[2], messages - half),
            }
            keep.close()  # the slot goes, and the WAL it kept
            rows = counts(engine)
            engine.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if rows["positions"] != messages or rows["signal_values"] != len(PATHS) * messages:
        raise RuntimeError(f"stages: stored {rows} for {messages} messages")
    per = {
        "mqtt_publish_parse": mqtt_cpu,
        "judge_decode_schema": judge_cpu,
        "store_commit_worker": commit_cpu,
        "postgres_backend": pg_cpu,
    }
    out["cpu_us_per_msg"] = {k: round(1e6 * v / messages, 1) for k, v in per.items()}
    total = sum(out["cpu_us_per_msg"].values())
    out["cpu_us_per_msg"]["total"] = round(total, 1)
    out["one_core_msg_per_s"] = {k: round(1e6 / v) for k, v in out["cpu_us_per_msg"].items() if v}
    out["commit_wall_ms_per_batch"] = round(1000 * wall / max(1, messages // batch), 1)
    out["loadavg"] = os.getloadavg()
    return out
