"""The processes ``anycar bench fleet`` starts: a load generator that speaks the wire format, and
an ingest worker (the fleet's own ``IngestWorker``) that also records publish -> queryable.

``python -m anycar.bench.fleet_procs publish PORT VEHICLES RATE SECONDS PREFIX`` publishes
telemetry batches of 10 values (QoS 1, each vehicle its own boot and seq 1, 2, 3 ...) round-robin
over the vehicles, ``RATE`` messages/s (0: as fast as the broker acknowledges), and prints one
JSON line with what it published and what was acknowledged. Each sample's time is the moment it
was published, so the worker's ``commit returned - sample time`` is publish -> queryable.

``python -m anycar.bench.fleet_procs worker DB_URL PORT WORKER_ID STATS_FILE BATCH [domain]`` runs one
ingest worker and rewrites STATS_FILE (JSON) every 0.5 s and on SIGTERM; with ``domain`` it runs
what ``anycar fleet serve``'s workers run around it (ingest-worker): the domain handlers (trips,
geofences, rules) after each commit, the live feed over PostgreSQL NOTIFY and the webhook sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

from anycar.mqtt5 import MqttError, mqtt_string, properties, read_varint, varint

PATHS = (
    "Vehicle.CurrentLocation.Latitude",
    "Vehicle.CurrentLocation.Longitude",
    "Vehicle.Speed",
    "Vehicle.CurrentLocation.Heading",
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
    "Vehicle.Powertrain.TractionBattery.CurrentPower",
    "Vehicle.Powertrain.TractionBattery.CurrentVoltage",
    "Vehicle.Cabin.HVAC.AmbientAirTemperature",
    "Vehicle.TraveledDistance",
    "Vehicle.Exterior.AirTemperature",
)


def vehicle_name(prefix: str, i: int) -> str:
    return f"{prefix}{i:07d}"


class _Acks(threading.Thread):
    """Reads the broker's side of the generator's connection: CONNACK, then PUBACKs, counted."""

    def __init__(self, sock: Any) -> None:
        super().__init__(daemon=True)
        self.sock, self.acked, self.receive_max, self.error = sock, 0, 0, ""
        self.connected = threading.Event()

    def run(self) -> None:
        buf = bytearray()
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    self.error = self.error or "the broker closed the connection"
                    return
                if not buf and _only_pubacks(data):  # what nearly every read holds
                    self.acked += len(data) // 4
                    continue
                buf += data
                pos = 0
                while (head := read_varint(buf, pos + 1) if len(buf) - pos >= 2 else None) is not None:
                    length, start = head
                    if start + length > len(buf):
                        break
                    kind = buf[pos] >> 4
                    if kind == 4:
                        self.acked += 1
                    elif kind == 2:
                        body = bytes(buf[start : start + length])
                        if body[1] >= 0x80:
                            self.error = f"CONNACK refused: 0x{body[1]:02x}"
                        maximum = properties(body, 2)[0].get(0x21, 65535)  # Receive Maximum
                        self.receive_max = maximum if isinstance(maximum, int) else 65535
                        self.connected.set()
                    pos = start + length
                del buf[:pos]
        except (OSError, MqttError) as exc:
            self.error = self.error or str(exc)
        finally:
            self.connected.set()


_F64 = struct.Struct(">Bd")  # a CBOR double: 0xfb and 8 bytes
_U8, _U16, _U32 = struct.Struct(">BB"), struct.Struct(">BH"), struct.Struct(">BI")
_MID = struct.Struct(">HB")  # a PUBLISH's packet id and its properties' length (0)


def _only_pubacks(data: bytes) -> bool:
    """``data`` is whole PUBACKs of reason success (``40 02`` and a packet id, MQTT 5 3.4.2.1),
    told by stride without a loop over packets (ingest-loop: the generator's reader cost more
    than its writer)."""
    n, rest = divmod(len(data), 4)
    return n > 0 and not rest and data[0::4] == b"\x40" * n and data[1::4] == b"\x02" * n


def _cbor_uint(n: int) -> bytes:
    """CBOR major type 0 (RFC 8949 3.1), the shortest form, as cbor2 writes it."""
    if n < 24:
        return bytes((n,))
    if n < 0x1_0000_0000:
        return _U8.pack(0x18, n) if n < 0x100 else _U16.pack(0x19, n) if n < 0x1_0000 else _U32.pack(0x1A, n)
    for head, size in ((0x18, 1), (0x19, 2), (0x1A, 4), (0x1B, 8)):
        if n < 1 << (8 * size):
            return bytes([head]) + n.to_bytes(size, "big")
    raise ValueError(f"{n} is past CBOR's 64-bit integers")


# sentinels put in a template message, found in its bytes and cut out: seq, the times, longitude
_SEQ, _TS, _LON = 0x0123456789ABCDEF, 1.2345678901234567e9, 123.45678901234567


class Template:
    """One vehicle's telemetry message, encoded once, with the bytes that change cut out (ingest-
    worker: building and encoding each message was most of the generator's 0.03-0.05 ms of CPU a
    message, on the two cores it measures). ``payload(seq, t)`` is the CBOR of the message
    ``doc(seq, t)`` gives, byte for byte (a test checks it): 10 values, all sampled at ``t``
    (``t0 = ts = t``, offsets 0), so each value's time is its publish time."""

    def __init__(self, vehicle: str, boot: str, lat: float) -> None:
        from anycar.wire import encode

        self.vehicle, self.boot, self.lat = vehicle, boot, lat
        raw = encode(self.doc(_SEQ, _TS, _LON), validate=False)
        marks = []
        for what, mark in (
            ("seq", _cbor_uint(_SEQ)),
            ("ts", b"\xfb" + struct.pack(">d", _TS)),
            ("lon", b"\xfb" + struct.pack(">d", _LON)),
        ):
            pos = raw.find(mark)
            while pos >= 0:
                marks.append((pos, len(mark), what))
                pos = raw.find(mark, pos + len(mark))
        self.pieces: list[bytes] = []
        self.fields: list[str] = []
        at = 0
        for pos, size, what in sorted(marks):
            self.pieces.append(raw[at:pos])
            self.fields.append(what)
            at = pos + size
        self.pieces.append(raw[at:])
        if self.fields.count("ts") != 2 or self.fields.count("seq") != 1 or self.fields.count("lon") != 1:
            raise RuntimeError(f"fleet_procs: template cut into {self.fields}")
        # where each cut goes in (seq, ts, lon), and the payload's length without seq's bytes
        self.slots = tuple(("seq", "ts", "lon").index(f) for f in self.fields)
        self.fixed = sum(map(len, self.pieces)) + 3 * 9

    def doc(self, seq: int, t: float, lon: float | None = None) -> dict[str, Any]:
        values = [
            [n, 0, self.lat if n == 0 else (11.5 + seq / 1e5 if lon is None else lon) if n == 1 else float(n)]
            for n in range(len(PATHS))
        ]
        return {
            "v": 1,
            "kind": "telemetry",
            "vehicle": self.vehicle,
            "boot": self.boot,
            "seq": seq,
            "prio": 5,
            "ts": t,
            "campaign": "bench",
            "cv": 1,
            "t0": t,
            "paths": list(PATHS),
            "values": values,
        }

    def payload(self, seq: int, t: float) -> bytes:
        return b"".join(self.parts(seq, _F64.pack(0xFB, t))[1])

    def parts(self, seq: int, ts: bytes) -> tuple[int, tuple[bytes, ...]]:
        """(length, pieces) of the payload for ``seq``, ``ts`` its time already encoded (a burst's
        messages share it): the pieces go into one join per burst, so no byte is copied twice
        (ingest-loop, session 6: the generator's dict, loop and two concatenations a message)."""
        seq_bytes = _cbor_uint(seq)
        got = (seq_bytes, ts, _F64.pack(0xFB, 11.5 + seq / 1e5))
        p, (a, b, c, d) = self.pieces, self.slots
        return self.fixed + len(seq_bytes), (p[0], got[a], p[1], got[b], p[2], got[c], p[3], got[d], p[4])


def _header(size: int) -> bytes:
    """A QoS 1 PUBLISH's fixed header for a body of ``size`` bytes (MQTT 5 2.1.4)."""
    if 128 <= size < 16_384:  # every message of the bench's
        return _U16.pack(0x32, 0x8000 | (size & 0x7F) << 8 | size >> 7)
    return b"\x32" + varint(size)


def publish(port: int, vehicles: int, rate: float, seconds: float, prefix: str) -> dict[str, Any]:
    """The load: QoS 1 PUBLISH packets written straight to a socket (ingest-speed: paho's publish
    path cost the generator ~0.15 ms of CPU a message, more than the worker it measured), each
    payload patched into a pre-encoded template (``Template``), written in bursts: what is due
    since the last burst, then a sleep of a millisecond or two."""
    import socket

    from anycar.wire import Channel, topic

    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    acks = _Acks(sock)
    acks.start()
    client_id = mqtt_string(f"bench-pub-{os.getpid()}")  # CONNECT: MQTT 5, clean start, no properties
    sock.sendall(b"\x10" + varint(11 + len(client_id)) + b"\x00\x04MQTT\x05\x02\x00\x00\x00" + client_id)
    if not acks.connected.wait(10) or acks.error:
        raise SystemExit(f"fleet_procs publish: {acks.error or 'no CONNACK'}")
    window = max(1, min(4000, acks.receive_max))  # the broker's Receive Maximum caps what is in flight
    boot = f"{os.getpid() % 65536:04x}"
    templates = [
        Template(vehicle_name(prefix, i), f"{boot}{i:012x}", 48.1 + i / 1e4) for i in range(vehicles)
    ]
    topics = [mqtt_string(topic(t.vehicle, Channel.TELEMETRY)) for t in templates]
    seqs = [0] * vehicles
    published = 0
    pending: list[bytes] = []
    # between bursts: ~32 messages' time at the rate, 1-5 ms (each wake-up costs the generator
    # CPU on the cores it measures; a burst's messages carry the time they are written)
    pause = min(0.005, max(0.001, 32 / rate)) if rate > 0 else 0.0005
    start = time.time()
    end = start + seconds
    i = 0
    while True:
        now = time.time()
        if now >= end:
            break
        due = int((now - start) * rate) if rate > 0 else published + 64
        room = window - (published - acks.acked)  # as fast as acknowledged, within the window
        burst = min(due - published, room, 256)
        if burst <= 0:
            time.sleep(pause if room > 0 else 0.0005)
            continue
        ts = _F64.pack(0xFB, now)  # the burst's messages carry its time
        for _ in range(burst):
            v = i % vehicles
            i += 1
            seq = seqs[v] = seqs[v] + 1
            size, parts = templates[v].parts(seq, ts)
            name = topics[v]
            pending += (_header(len(name) + 3 + size), name, _MID.pack(published % 65535 + 1, 0))
            pending += parts
            published += 1
        sock.sendall(b"".join(pending))
        pending.clear()
    sent_s = time.time() - start
    deadline = time.time() + 120
    while acks.acked < published and time.time() < deadline and not acks.error:
        time.sleep(0.01)
    with contextlib.suppress(OSError):
        sock.sendall(b"\xe0\x00")
        sock.close()
    return {"published": published, "acked": acks.acked, "seconds": sent_s, "rate": published / sent_s}


class _Recorder:
    """Publish -> queryable of every stored position, as a histogram of whole milliseconds."""

    def __init__(self) -> None:
        self.hist: dict[int, int] = {}
        self.stored = 0
        self.first: float | None = None
        self.last: float | None = None
        # pg-tail: per second of commit (epoch s): [positions, over 500 ms, over 1 s, max ms], so a
        # p99 can be read against the checkpoints the bench records on the same clock
        self.seconds: dict[int, list[int]] = {}

    def __call__(self, stored: Any) -> None:
        now = time.time()
        self.first = self.first or now
        self.last = now
        self.stored += stored.messages
        worst = 0
        slow = slower = 0
        for p in stored.positions:
            ms = max(0, int((now - p["ts"]) * 1000))
            self.hist[ms] = self.hist.get(ms, 0) + 1
            if ms > 500:
                slow += 1
                slower += ms > 1000
            worst = max(worst, ms)
        second = self.seconds.setdefault(int(now), [0, 0, 0, 0])
        second[0] += len(stored.positions)
        second[1] += slow
        second[2] += slower
        second[3] = max(second[3], worst)


def _serving_parts(store: Any) -> tuple[Any, list[Any], Any]:
    """What ``FleetServer`` puts around its ingest workers, built the same way: the live feed
    (NOTIFY on PostgreSQL), the webhook sender and the domain pipeline hooked on the store's
    commits. Returns (the workers' live feed, components to start, the pipeline)."""
    from anycar.fleet.domain import DomainPipeline
    from anycar.fleet.live import LiveFeed
    from anycar.fleet.livebus import NotifyPublisher
    from anycar.fleet.webhooks import WebhookSender

    live: Any = NotifyPublisher(store.engine) if store.postgres else LiveFeed()
    webhooks = WebhookSender(store.engine)
    domain = DomainPipeline(store, live=live, notifier=webhooks)
    parts = [*([live] if store.postgres else []), webhooks, domain]
    return live, parts, domain


def _wal_stats(engine: Any) -> dict[str, int] | None:
    """SQLite's background checkpoints so far (``anycar.fleet.db.WalCheckpointer``), None on PostgreSQL."""
    from anycar.fleet.db import checkpointer

    ck = checkpointer(engine)
    if ck is None:
        return None
    return {k: getattr(ck, k) for k in ("passes", "restarts", "busy", "errors", "max_log_pages")}


def _schedstat() -> tuple[int, int]:
    """This thread's (ns on a CPU, ns runnable but waiting for one) from /proc; (0, 0) if absent."""
    try:
        on_cpu, waiting, *_ = (
            Path(f"/proc/self/task/{threading.get_native_id()}/schedstat").read_text().split()
        )
        return int(on_cpu), int(waiting)
    except (OSError, ValueError):
        return 0, 0


class _TimedCommits:
    """Wraps ``Store.commit`` (sqlite-ingest): per commit, in the thread that runs it, the wall
    time split into on a CPU, waiting for one (the machine's load) and neither — blocked on
    I/O, an fsync or a lock, which is the database's own doing and what a stall would be."""

    def __init__(self, commit: Any) -> None:
        self.commit = commit
        self.wall = self.cpu = self.runqueue = 0.0
        self.slowest = 0.0
        self.blocked_max = 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        c0, q0 = _schedstat()
        t0 = time.perf_counter()
        try:
            return self.commit(*args, **kwargs)
        finally:
            wall = time.perf_counter() - t0
            c1, q1 = _schedstat()
            cpu, queued = (c1 - c0) / 1e9, (q1 - q0) / 1e9
            self.wall += wall
            self.cpu += cpu
            self.runqueue += queued
            self.slowest = max(self.slowest, wall)
            self.blocked_max = max(self.blocked_max, wall - cpu - queued)

    def figures(self) -> dict[str, float]:
        return {
            "wall_s": round(self.wall, 3),
            "cpu_s": round(self.cpu, 3),
            "runqueue_s": round(self.runqueue, 3),
            "blocked_s": round(self.wall - self.cpu - self.runqueue, 3),
            "slowest_s": round(self.slowest, 3),
            "blocked_max_s": round(self.blocked_max, 3),
        }


def worker(
    db_url: str, port: int, worker_id: str, stats_file: Path, batch: int, domain: bool = False
) -> None:
    from anycar.fleet.db import make_engine
    from anycar.fleet.ingest import IngestWorker, tune_gc
    from anycar.fleet.store import Store

    recorder = _Recorder()
    cpu0 = 0.0
    store = Store(make_engine(db_url))
    timed = _TimedCommits(store.commit)
    store.commit = timed  # type: ignore[method-assign]
    live, parts, pipeline = _serving_parts(store) if domain else (None, [], None)
    w = IngestWorker(
        store,
        port=port,
        worker_id=worker_id,
        batch_max=batch or None,  # 0: the worker's own for its database
        session_s=3600,
        on_commit=recorder,
        live=live,
    )

    def dump() -> None:
        doc = {
            **w.status(),
            "hist": recorder.hist,
            "seconds": recorder.seconds,
            "first_commit": recorder.first,
            "last_commit": recorder.last,
            "pid": os.getpid(),
            "cpu_s": sum(os.times()[:2]) - cpu0,  # since ready: imports and connecting left out
            "domain": vars(pipeline.stats) if pipeline is not None else None,
            "wal": _wal_stats(store.engine),  # SQLite: the checkpointer's passes (sqlite-ingest)
            "commits": timed.figures(),
        }
        tmp = stats_file.with_name(stats_file.name + ".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, stats_file)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        nonlocal cpu0
        for part in parts:
            await part.start()
        tune_gc()
        await w.start(timeout=60)
        cpu0 = sum(os.times()[:2])
        print("ready", flush=True)
        while not stop.is_set():
            dump()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
        await w.stop()
        for part in reversed(parts):
            await part.stop()
        dump()

    asyncio.run(main())


def main() -> None:
    mode, *args = sys.argv[1:]
    if mode == "publish":
        port, vehicles, rate, seconds, prefix = args
        print(json.dumps(publish(int(port), int(vehicles), float(rate), float(seconds), prefix)), flush=True)
    elif mode == "worker":
        db_url, port, worker_id, stats_file, batch, *extra = args
        if extra not in ([], ["domain"]):
            raise SystemExit(f"fleet_procs worker: unknown {' '.join(extra)!r} (only: domain)")
        worker(db_url, int(port), worker_id, Path(stats_file), int(batch), domain=extra == ["domain"])
    else:
        raise SystemExit(f"fleet_procs: unknown mode {mode!r}")


if __name__ == "__main__":
    main()
