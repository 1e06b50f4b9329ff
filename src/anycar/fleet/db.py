"""The fleet's tables (SQLAlchemy 2 Core) and the engine chosen by a URL.

SQLite by default (one embedded file, nothing to install), PostgreSQL (psycopg 3) for a real
fleet: ``postgresql+psycopg://HOST/DB``. The schema is made only by the Alembic migrations in
``anycar.fleet.migrations`` (``upgrade`` runs them on start); these tables are their mirror for
queries and must match the latest revision (a test checks it).

Time series: positions and signal values keep epoch seconds (float) and are indexed by
(vehicle, ts), so one vehicle's day is one index range; the last position of every vehicle
lives on the vehicle's own row (updated with each batch), so "where is everyone" reads one
row per vehicle however long the history grows.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from anycar.errors import ConfigError

log = logging.getLogger("anycar.fleet.db")

metadata = MetaData()

ROLES = ("owner", "dispatcher", "driver", "viewer")

tenants = Table(
    "tenants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("created", Float, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created", Float, nullable=False),
    UniqueConstraint("tenant_id", "name", name="uq_users_tenant_name"),
)

vehicles = Table(
    "vehicles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("vin", String(17), nullable=False),
    Column("brand", String(64), nullable=False),
    Column("wire_id", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # hub | tracker
    Column("mqtt_hash", String(256)),  # Mosquitto's $7$ line for this vehicle's password
    Column("revoked", Boolean, nullable=False),
    Column("online", Boolean),
    Column("last_seen", Float),
    Column("last_ts", Float),
    Column("last_lat", Float),
    Column("last_lon", Float),
    Column("last_speed", Float),
    Column("last_heading", Float),
    Column("created", Float, nullable=False),
    UniqueConstraint("tenant_id", "vin", name="uq_vehicles_tenant_vin"),
)
Index("ix_vehicles_tenant", vehicles.c.tenant_id)

positions = Table(
    "positions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), nullable=False),
    Column("ts", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("speed", Float),
    Column("heading", Float),
    Column("source", String(16), nullable=False),  # hub | osmand
)
Index("ix_positions_vehicle_ts", positions.c.vehicle_id, positions.c.ts)

# ingest-store: a telemetry message's signal values are ONE row (its paths, times, numbers and
# JSON values as parallel arrays; on SQLite JSON arrays), not one row per value: a message costs
# PostgreSQL one heap tuple, one index entry and one foreign-key check for its values instead of
# ten of each. ``ts`` is the newest value's time, so "values at or after T" is the index range
# ``ts >= T`` (every value of an older row is older). The rows are read through the
# ``signal_values`` view below, one row per value as before.
signal_batches = Table(
    "signal_batches",
    metadata,
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), nullable=False),
    Column("ts", Float, nullable=False),  # the newest value's time in the row
    Column("paths", ARRAY(String(256)).with_variant(JSON, "sqlite"), nullable=False),
    Column("tss", ARRAY(Float).with_variant(JSON, "sqlite"), nullable=False),
    Column("nums", ARRAY(Float).with_variant(JSON, "sqlite"), nullable=False),  # NULL: not a number
    Column("vals", ARRAY(Text).with_variant(JSON, "sqlite"), nullable=False),  # each as JSON text
    # pg-tail: on PostgreSQL the row's paths are this set's (``paths`` then empty); NULL: ``paths``
    Column("path_set", Integer),
)
Index("ix_signal_batches_vehicle_ts", signal_batches.c.vehicle_id, signal_batches.c.ts)

# pg-tail: each distinct list of a message's paths once (revision pgtail_path_sets); never deleted
signal_path_sets = Table(
    "signal_path_sets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), nullable=False, unique=True),  # sha256 of the list as JSON
    Column("paths", ARRAY(String(256)).with_variant(JSON, "sqlite"), nullable=False),
)

# Views (made by the migrations, not compared with the tables): what the queries read.
views = MetaData()
# one row per signal value, as the table of that name was before ingest-store; ``batch_ts`` is
# the row's ``signal_batches.ts`` (>= ``ts``): a query bounded below in time bounds it too, which
# is the index range (and on PostgreSQL the day partitions) it reads
signal_values = Table(
    "signal_values",
    views,
    Column("vehicle_id", Integer, nullable=False),
    Column("path", String(256), nullable=False),
    Column("ts", Float, nullable=False),
    Column("num", Float),
    Column("value", JSON),
    Column("batch_ts", Float, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), nullable=False),
    Column("ts", Float, nullable=False),
    Column("type", String(32), nullable=False),
    Column("subject", Text),
    Column("message", Text),
    Column("data", JSON),
    Column("lat", Float),
    Column("lon", Float),
)
Index("ix_events_vehicle_ts", events.c.vehicle_id, events.c.ts)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("received", Float, nullable=False),
    Column("topic", Text, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id")),  # when the topic named a known one
)
Index("ix_dead_letters_received", dead_letters.c.received)

received = Table(
    "received",
    metadata,
    Column("vehicle", String(64), primary_key=True),
    Column("boot", String(16), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    sqlite_with_rowid=False,  # sqlite-rate: the key's B-tree alone (migration sqliterate_received)
)

TIME_SERIES = (positions, signal_batches, events)

DEFAULT_DB_ENV = "ANYCAR_FLEET_DB"


def default_url() -> str:
    """``$ANYCAR_FLEET_DB``, else SQLite at ~/.local/share/anycar/fleet.sqlite3."""
    url = os.environ.get(DEFAULT_DB_ENV)
    if url:
        return url if "://" in url else f"sqlite:///{Path(url).resolve()}"
    path = Path.home() / ".local/share/anycar/fleet.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


SQLITE_WAL_KEEP_BYTES = 64 << 20  # what a WAL file keeps of its size once the log starts over


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers (the API) never block the ingest's writer
    # WAL + NORMAL: a commit is durable against a crash of the process (a killed worker loses
    # nothing it acknowledged); the WAL is fsynced at each checkpoint, so an OS crash or power
    # loss can lose the commits since the last one (docs/performance.md, sqlite-ingest)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA wal_autocheckpoint=0")  # the checkpoint is WalCheckpointer's, off the commit
    cur.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_KEEP_BYTES}")  # a grown WAL file cut back
    cur.close()


def hold_advisory_lock(conn: Connection, *keys: int, shared: bool = False) -> None:
    """Hold a PostgreSQL advisory lock (one bigint key, or two int keys) until ``conn``'s
    transaction ends: work that must not overlap waits here, and no row that ingest writes is
    locked for it."""
    fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    names = [f"k{i}" for i in range(len(keys))]
    args = ", ".join(f":{name}" for name in names)
    conn.execute(text(f"SELECT {fn}({args})"), dict(zip(names, keys, strict=True)))  # nosec B608 # fixed names; the keys are bound


def make_engine(url: str | None = None) -> Engine:
    """An engine for ``url`` (default ``default_url()``); ``postgresql://`` means psycopg 3."""
    url = url or default_url()
    if "://" not in url:  # a plain path, as $ANYCAR_FLEET_DB takes it
        url = f"sqlite:///{Path(url).resolve()}"
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        engine = _create(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        WalCheckpointer.attach(engine)
        return engine
    return _create(url, pool_pre_ping=True)


class WalCheckpointer:
    """Copies a SQLite file's write-ahead log into the database from a thread of its own.

    SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past 1,000 pages, so
    that commit waits while the pages are written and fsynced (the WAL, then the database)
    (sqlite-ingest, session 6). Here every connection of the engine has ``wal_autocheckpoint=0``
    and this thread, woken by the engine's commits, runs a PASSIVE checkpoint every
    ``interval_s`` (it never blocks a writer or a reader; coalescing a half second of commits
    writes each hot index page once). The log starts over from its first page only when a
    commit begins with all of it copied and no reader in it, which a writer that never pauses,
    or readers that overlap without a gap, may never allow: the log would grow without end (a
    test shows it). So once it passes ``restart_pages`` (the PASSIVE having copied all but the
    last commits) the next writer, as its connection goes back to the pool, runs a RESTART
    checkpoint: it copies that rest and waits (``restart_wait_ms`` at most) for the readers to
    move to the database file, and the next commit starts the log over; ``journal_size_limit``
    cuts the file back. The writer does it, not this thread, because a writer that commits back
    to back always wins SQLite's write lock over a checkpoint waiting for it. A reader that never
    ends still pins the log (nothing can pass its snapshot); the restart is tried again each
    time the log grows by another ``restart_pages``."""

    interval_s = 0.5
    restart_pages = 8192  # 32 MiB of 4 KiB pages: a log past this is made to start over
    restart_wait_ms = 1000  # how long a restarting writer waits for readers
    catch_up = 4  # PASSIVE checkpoints a pass at most
    idle_s = 5.0  # a pass now and then even without commits (writes from outside the engine)

    def __init__(self, path: str, uri: bool = False) -> None:
        self.path, self.uri = path, uri
        self.passes = self.restarts = self.busy = self.errors = 0
        self.max_log_pages = self.last_log_pages = 0
        self.last_error = ""
        self.restart_due = False
        self._restart_at = 0  # the log's length that makes a restart due (0: restart_pages)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._restarting = threading.Lock()
        self._thread: threading.Thread | None = None
        self._engine: weakref.ref[Engine] | None = None

    @classmethod
    def attach(cls, engine: Engine) -> WalCheckpointer | None:
        """Give a file-backed SQLite engine its checkpointer (started by the first commit,
        stopped by ``engine.dispose()``); None for an in-memory database."""
        db_path = engine.url.database
        if not db_path or db_path == ":memory:" or engine.url.query.get("mode") == "memory":
            return None
        uri = str(engine.url.query.get("uri", "")).lower() in ("1", "true")
        self = cls(db_path, uri)
        self._engine = weakref.ref(engine)  # the thread ends with the engine, disposed or not
        _CHECKPOINTERS[engine] = self
        event.listen(engine, "commit", self._committed)
        event.listen(engine.pool, "checkin", self._checkin)
        event.listen(engine, "engine_disposed", lambda _engine: self.stop())
        return self

    def _committed(self, conn: Any) -> None:
        conn.info["anycar_wrote"] = True  # the pool record's: this connection writes
        self.kick()

    def _checkin(self, dbapi_connection: Any, record: Any) -> None:
        if self.restart_due and record is not None and record.info.pop("anycar_wrote", False):
            self.restart(dbapi_connection)

    def restart(self, conn: Any) -> None:
        """Copy the rest of the log and make the next commit start it over (a writer's
        connection, outside a transaction); one writer at a time, the others go on."""
        if getattr(conn, "in_transaction", False) or not self._restarting.acquire(blocking=False):
            return
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self.restart_wait_ms)}")
            try:
                busy, frames, _done = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            finally:
                conn.execute("PRAGMA busy_timeout=10000")
            if busy:  # a reader held on: try again once the log has grown as much again
                self.busy += 1
                self._restart_at = max(0, frames) + self.restart_pages
            else:
                self.restarts += 1
                self._restart_at = 0
            self.restart_due = False
        except sqlite3.Error as exc:
            self.errors += 1
            self.last_error = str(exc)
            log.warning("sqlite restart checkpoint of %s: %s", self.path, exc)
        finally:
            self._restarting.release()

    def kick(self) -> None:
        """A commit happened: make sure the thread runs and will look within ``interval_s``."""
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._stop.is_set():
                    return
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._run, name="sqlite-wal-checkpoint", daemon=True
                    )
                    self._thread.start()
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """One pass: PASSIVE until the log is all copied (then the next commit starts it over
        from its first page) or ``catch_up`` times; a log still past the bound makes the restart
        due. The catch-up passes copy only what commits added meanwhile."""
        busy = log = done = 0
        for _ in range(self.catch_up):
            busy, log, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.passes += 1
            if busy or done >= log:
                break
        self.last_log_pages = max(0, log)
        self.max_log_pages = max(self.max_log_pages, self.last_log_pages)
        if self.last_log_pages > (self._restart_at or self.restart_pages):
            self.restart_due = True

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while not self._stop.is_set():
                woken = self._wake.wait(self.idle_s)
                self._wake.clear()
                if self._stop.is_set() or (self._engine is not None and self._engine() is None):
                    break
                try:
                    if conn is None:
                        conn = sqlite3.connect(
                            self.path,
                            timeout=10.0,
                            isolation_level=None,
                            uri=self.uri,
                            check_same_thread=False,
                        )
                    self.checkpoint(conn)
                except sqlite3.Error as exc:  # the file went away, a disk error: say it, keep going
                    self.errors += 1
                    self.last_error = str(exc)
                    log.warning("sqlite checkpoint of %s: %s", self.path, exc)
                except Exception as exc:  # anything else: logged and counted, the thread goes on
                    self.errors += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.exception("sqlite checkpoint of %s failed", self.path)
                if woken:  # commits are coming: the next pass after interval_s, not at each commit
                    self._stop.wait(self.interval_s)
        finally:
            if conn is not None:
                conn.close()


_CHECKPOINTERS: weakref.WeakKeyDictionary[Engine, WalCheckpointer] = weakref.WeakKeyDictionary()


def _stop_checkpointers() -> None:
    """At exit: end the threads, closing their connections, so the process's last connection to
    a file still checkpoints it and removes its WAL as SQLite does (a CLI command leaves the one
    file, as before the checkpointer)."""
    for ck in list(_CHECKPOINTERS.values()):
        ck.stop(timeout=2.0)


atexit.register(_stop_checkpointers)


def checkpointer(engine: Engine) -> WalCheckpointer | None:
    """The engine's WAL checkpointer (its figures for a benchmark or a test), None if it has none."""
    return _CHECKPOINTERS.get(engine)


def _create(url: str, **options: Any) -> Engine:
    try:
        return create_engine(url, **options)
    except (ArgumentError, NoSuchModuleError) as exc:
        shown = re.sub(r"//[^@/]*@", "//***@", url)  # never echo a password
        raise ConfigError(
            f"database URL {shown!r}: {exc}; use sqlite:///PATH, a file path, or postgresql://HOST/DB"
        ) from None


# ---- storage at scale (fleet_scale): retention per tenant, the dedup watermark -------------------
# On PostgreSQL, positions and signal_batches are range-partitioned by ts (one partition per UTC day,
# made ahead by anycar.fleet.partitions; see migrations/versions/0002_fleet_scale.py). These tables
# stay the same for the queries: the partitioned parent has the same columns and indexes.

tenant_retention = Table(
    "tenant_retention",
    metadata,
    Column("tenant_id", Integer, ForeignKey("tenants.id"), primary_key=True),
    Column("days", Float, nullable=False),  # positions and signal values older than this are removed
)

received_floor = Table(
    "received_floor",
    metadata,
    Column("vehicle", String(64), primary_key=True),
    Column("boot", String(16), primary_key=True),
    Column("floor", BigInteger, nullable=False),  # every seq <= floor was received (or given up)
    Column("updated", Float, nullable=False),  # when the floor last moved
)
# ---- fleet-commands: commands, accessory inventory, firmware ledger and rollouts -------------
commands = Table(
    "commands",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), nullable=False),
    Column("command_id", String(128), nullable=False, unique=True),  # the wire id
    Column("action", String(32), nullable=False),  # actuate | scene | firmware | fleet_event | ...
    Column("body", JSON, nullable=False),  # the action's body, signed when it is sent
    Column("status", String(16), nullable=False),  # pending sent accepted refused ... expired
    Column("reason", Text),
    Column("results", JSON),
    Column("ttl_s", Float, nullable=False),
    Column("created", Float, nullable=False),
    Column("sent", Float),
    Column("expires", Float),
    Column("answered", Float),
    Column("user_name", String(128)),
    Column("rollout_id", Integer, ForeignKey("rollouts.id")),
    Column("accessory", String(48)),  # for firmware commands: the instance
)
Index("ix_commands_vehicle_created", commands.c.vehicle_id, commands.c.created)
Index("ix_commands_status", commands.c.status)
Index("ix_commands_rollout", commands.c.rollout_id)

accessories = Table(
    "accessories",
    metadata,
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), primary_key=True),
    Column("instance", String(48), primary_key=True),
    Column("vendor_id", Integer, nullable=False),
    Column("vendor", String(64), nullable=False),
    Column("product_id", Integer, nullable=False),
    Column("model", String(64), nullable=False),
    Column("serial", String(128)),
    Column("firmware", String(64), nullable=False),
    Column("mount", String(128), nullable=False),
    Column("status", String(32), nullable=False),
    Column("updated", Float, nullable=False),
)
# when each vehicle's inventory was last reported (by the hub's clock): an empty list counts too
inventory_reports = Table(
    "inventory_reports",
    metadata,
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), primary_key=True),
    Column("ts", Float, nullable=False),
    Column("received", Float, nullable=False),
)
Index("ix_accessories_product", accessories.c.vendor_id, accessories.c.product_id)
Index("ix_accessories_model", accessories.c.model)

vendor_keys = Table(
    "vendor_keys",
    metadata,
    Column("key_id", String(16), primary_key=True),
    Column("vendor_id", Integer, nullable=False),
    Column("public_key", String(64), nullable=False),
    Column("label", String(128), nullable=False),
    Column("added", Float, nullable=False),
    Column("revoked", Float),
)

firmware_releases = Table(
    "firmware_releases",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("vendor_id", Integer, nullable=False),
    Column("product_id", Integer, nullable=False),
    Column("version", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("document", JSON, nullable=False),  # the vendor-signed release, as sent to hubs
    Column("image", LargeBinary, nullable=False),
    Column("url_token", String(64), nullable=False, unique=True),
    Column("uploaded", Float, nullable=False),
    Column("uploaded_by", String(128)),
    UniqueConstraint("vendor_id", "product_id", "version", name="uq_firmware_product_version"),
)

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("release_id", Integer, ForeignKey("firmware_releases.id"), nullable=False),
    Column("percent", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # running | paused | aborted | done
    Column("reason", Text),
    Column("max_failures", Integer, nullable=False),
    Column("failed_before", Integer, nullable=False),  # failures when it was last resumed
    Column("max_in_flight", Integer, nullable=False),
    Column("base_url", String(512), nullable=False),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
)
Index("ix_rollouts_tenant", rollouts.c.tenant_id)
# --- logistics (anycar.logistics): orders and plans ------------------------------------------
# An order's fields are kept as the flat mapping ``anycar.logistics.orders.parse_order`` reads
# (so a stored order is re-checked the same way an imported one was); the columns beside it are
# what the board filters and sorts on.

orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("ref", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # delivery | pickup | courier
    Column("status", String(16), nullable=False),  # open | planned | delivered | failed | cancelled
    Column("fields", JSON, nullable=False),
    Column("weight_kg", Float, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id")),  # the accepted plan's vehicle
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
    UniqueConstraint("tenant_id", "ref", name="uq_orders_tenant_ref"),
)
Index("ix_orders_tenant_status", orders.c.tenant_id, orders.c.status)

plans = Table(
    "plans",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # plan | redispatch
    Column("status", String(16), nullable=False),  # proposed | accepted | superseded
    Column("created", Float, nullable=False),
    Column("accepted", Float),
    Column("body", JSON, nullable=False),  # the plan (and a re-dispatch's changes) as the API shows it
)
Index("ix_plans_tenant_created", plans.c.tenant_id, plans.c.created)

# ---- sqlite-marks (session 8): SQLite's dedup as one row per (vehicle, boot) ---------------------
# On SQLite the store keeps, per (vehicle, boot), the high-water mark under which every seq was
# seen (``hwm``) in this one row, rewritten once a batch; only a seq that arrives above a gap
# waits as a ``received`` row until the gap fills (``above`` counts them, so the usual batch,
# the next seqs of a boot with nothing waiting, never reads or writes ``received``). It takes
# the place of ``received_floor`` there (migration 0013). PostgreSQL keeps ``received`` and
# ``received_floor`` as they are: its two workers split a vehicle's messages between them (a
# shared subscription splits per message), and one row per vehicle would serialise them on its
# lock; the table exists there too, empty (one schema for both).
received_marks = Table(
    "received_marks",
    metadata,
    Column("vehicle", String(64), primary_key=True),
    Column("boot", String(16), primary_key=True),
    Column("hwm", BigInteger, nullable=False),  # every seq <= hwm was seen (or given up)
    Column("above", Integer, nullable=False),  # ``received`` rows of this boot (all above hwm)
    Column("updated", Float, nullable=False),  # when hwm last moved (the give-up/forget clock)
    sqlite_with_rowid=False,
)
