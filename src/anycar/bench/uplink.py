"""`anycar bench uplink`: the uplink's figures against a real Mosquitto (a private one on a free
port, so the bench may stop and restart it).

- zero loss: N vehicle hubs (separate processes) drive while the broker goes away for a while
  and one hub is killed with SIGKILL and restarted; every (vehicle, boot, seq) that was spooled
  must arrive, counted once after dedup;
- throughput: one hub process samples 290 signals every 10 ms (a campaign), and, separately,
  pushes ready-made batches as fast as the spool and the link take them (the pipeline's
  capacity); the figure is what arrives at the fleet-side subscriber per second, with the
  hub's CPU;
- CPU at the default campaign's real rate (a moving vehicle, its signals written at 10 Hz), with
  and without the uplink;
- catch-up: 10 minutes of the default campaign's messages wait in the spool; time to drain them
  while a live campaign goes on, and that live data's latency meanwhile;
- bytes per vehicle-hour of the default campaign over a simulated PICKMAN hour (CBOR batches,
  deflated, with MQTT 5 framing), against the same values as one JSON message each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess  # nosec B404 # the benchmark starts the broker and the vehicle hubs it measures
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anycar.bench.stats import latency_summary
from anycar.bench.wire_subscriber import WireSubscriber
from anycar.errors import ConfigError

MOSQUITTO = "/usr/sbin/mosquitto"
FLOOD_SIGNALS = 400  # numeric sensors, each written and sampled every 10 ms: 40,000 values/s offered
DRIVE = """
id: drive
version: 1
priority: 5
events: true
signals: [{path: Vehicle.Speed}, {path: Vehicle.Powertrain.TractionBattery.StateOfCharge.Current}]
collect: {periodic: {period_ms: 100}}
batch: {max_values: 20, max_delay_ms: 200}
"""
FLOOD = """
id: flood
version: 1
priority: 5
signals: [{paths}]
collect: {{periodic: {{period_ms: 10}}}}
batch: {{max_values: 2000, max_delay_ms: 200}}
"""
LIVE = """
id: live
version: 1
priority: 2
signals: [{path: Vehicle.Speed}]
collect: {periodic: {period_ms: 200}}
batch: {max_values: 100, max_delay_ms: 200}
"""


# -- the broker and the fleet side ------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Mosquitto:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = self.folder / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.folder}/",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        conf.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(  # nosec B603 # a fixed argument list (mosquitto, its temp config), no shell
            [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.05)
        raise ConfigError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


# -- vehicle processes --------------------------------------------------------------------------
def vehicle_main() -> None:
    """One vehicle hub in its own process: ``MODE PORT VEHICLE SPOOL CAMPAIGN [RATE]``.

    Drives synthetic values into a bare hub with the uplink; on SIGTERM stops cleanly and prints
    one JSON line: boot, last seq, CPU seconds, wall seconds."""
    mode, port, vehicle, spool, campaign = sys.argv[1:6]
    rate = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
    asyncio.run(_vehicle(mode, int(port), vehicle, Path(spool), Path(campaign), rate))


async def _vehicle(mode: str, port: int, vehicle: str, spool: Path, campaign: Path, rate: float) -> None:
    from anycar.hub import Hub, HubConfig
    from anycar.uplink import UplinkComponent, UplinkConfig

    config = HubConfig()
    config.ports = dict.fromkeys(config.ports)
    hub = Hub(config)
    cfg = UplinkConfig.from_url(f"mqtt://127.0.0.1:{port}", vehicle)
    cfg.spool_path, cfg.campaigns = spool, [campaign]
    cfg.reconnect_min_s, cfg.reconnect_max_s = 0.1, 1.0
    cfg.quota_mb = 512
    flood = _flood_signals(hub) if mode in ("flood", "push") else []
    paths = (
        [p for p, _ in flood]
        if mode in ("flood", "push")
        else _default_paths()
        if mode == "default"
        else ["Vehicle.Speed", "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"]
    )
    provider = hub.broker.register_provider("bench", paths)
    uplink = UplinkComponent(cfg) if mode != "none" else None
    if uplink is not None:
        hub.add_component(uplink)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await hub.start()
    cpu0, wall0 = time.process_time(), time.monotonic()
    period = 0.1 if mode in ("default", "none") else 0.02 if mode == "drive" else 0.01
    i = 0
    while not stop.is_set():
        i += 1
        if mode == "push" and uplink is not None and uplink.spool is not None:
            # as fast as the spool and the link take them: batches of 2,000 ready-made values
            if uplink.spool.depth < 4 * cfg.window:
                now = time.time()
                rows = [(paths[k % len(paths)], now + k * 1e-4, float(k)) for k in range(2000)]
                uplink._emit_samples(next(iter(uplink.runners.values())).campaign, rows, None)
                await asyncio.sleep(0)
                continue
        elif mode == "flood":
            provider.publish_many([(p, values[(i + k) % 3]) for k, (p, values) in enumerate(flood)])
        elif mode in ("default", "none"):
            provider.publish_many(_default_values(i))
        else:
            provider.publish_many([(paths[0], 20.0 + (i % 50)), (paths[1], 80.0 - (i % 100) / 10)])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    await hub.stop()
    out: dict[str, Any] = {"cpu_s": round(cpu, 3), "wall_s": round(wall, 3)}
    if uplink is not None:
        out.update(boot=uplink.origin.boot, seq=uplink.seq)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


def _flood_signals(hub: Any) -> list[tuple[str, list[Any]]]:
    from anycar.bench.broker import bench_signals

    return [(s.path, values) for s, values in bench_signals(hub.broker.catalog, FLOOD_SIGNALS)]


def _default_paths() -> list[str]:
    return [
        "Vehicle.CurrentLocation.Latitude",
        "Vehicle.CurrentLocation.Longitude",
        "Vehicle.CurrentLocation.Heading",
        "Vehicle.Speed",
        "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
        "Vehicle.Powertrain.Range",
        "Vehicle.LowVoltageSystemState",
        "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen",
        "Vehicle.Body.Trunk.Rear.IsOpen",
    ]


def _default_values(i: int) -> list[tuple[str, Any]]:
    """A vehicle moving at ~30 km/h along a street, its battery slowly going down."""
    return [
        ("Vehicle.CurrentLocation.Latitude", 30.25 + i * 1e-5),
        ("Vehicle.CurrentLocation.Longitude", 120.17 + i * 1e-5),
        ("Vehicle.CurrentLocation.Heading", 45.0),
        ("Vehicle.Speed", 30.0 + (i % 20) / 4),
        ("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", 80.0 - i / 3000),
        ("Vehicle.Powertrain.Range", 90000 - i),
        ("Vehicle.LowVoltageSystemState", "ON"),
        ("Vehicle.Cabin.Door.Row1.DriverSide.IsOpen", False),
        ("Vehicle.Body.Trunk.Rear.IsOpen", i % 600 < 30),
    ]


def _spawn(
    mode: str, port: int, vehicle: str, folder: Path, campaign: Path, rate: float = 0.0
) -> subprocess.Popen[str]:
    code = "from anycar.bench.uplink import vehicle_main; vehicle_main()"
    return subprocess.Popen(  # nosec B603 # this interpreter running the benchmark's own vehicle, no shell
        [
            sys.executable,
            "-c",
            code,
            mode,
            str(port),
            vehicle,
            str(folder / f"{vehicle}.sqlite3"),
            str(campaign),
            str(rate),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


async def _until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def _spooled(path: Path) -> list[tuple[str, int]]:
    import sqlite3

    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(path)) as db:
        try:
            return [(r[0], r[1]) for r in db.execute("SELECT boot, seq FROM spool")]
        except sqlite3.OperationalError:
            return []


def _started(path: Path) -> bool:
    """The vehicle's uplink has written its first status (it is up and collecting)."""
    import sqlite3

    if not path.exists():
        return False
    with contextlib.closing(sqlite3.connect(path)) as db:
        try:
            return db.execute("SELECT 1 FROM meta WHERE key = 'status'").fetchone() is not None
        except sqlite3.OperationalError:
            return False


# -- the figures -----------------------------------------------------------------------------------
async def zero_loss(folder: Path, vehicles: int, seconds: float, outage_s: float) -> dict[str, Any]:
    broker = _Mosquitto(folder)
    broker.start()
    campaign = folder / "drive.yaml"
    campaign.write_text(DRIVE)
    names = [f"BENCH-{uuid.uuid4().hex[:6]}-{i}" for i in range(vehicles)]
    try:
        async with WireSubscriber(broker.port, persistent=True, keep=False) as fleet:
            procs = {n: _spawn("drive", broker.port, n, folder, campaign) for n in names}
            await _until(lambda: all(_started(folder / f"{n}.sqlite3") for n in names), 60)
            await asyncio.sleep(seconds * 0.3)
            broker.stop()
            await asyncio.sleep(outage_s / 2)
            victim = names[0]  # killed with a spool full of the outage
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait(10)
            at_kill = _spooled(folder / f"{victim}.sqlite3")
            procs[victim] = _spawn("drive", broker.port, victim, folder, campaign)
            await asyncio.sleep(outage_s / 2)
            broker.start()
            await asyncio.sleep(seconds * 0.7)
            finals = {n: _finish(p) for n, p in procs.items()}
            sent: dict[tuple[str, str], int] = {(n, f["boot"]): f["seq"] for n, f in finals.items() if f}
            # the killed boot: whatever it had spooled must arrive; its last seq is the highest it committed
            killed_boots = {b for b, _ in at_kill} - {f["boot"] for f in finals.values() if f}
            await _until(lambda: all(len(fleet.seen.get(k, ())) >= s for k, s in sent.items()), 60)
            for boot in killed_boots:
                got = fleet.seen.get((victim, boot), set())
                sent[(victim, boot)] = max([*got, *(s for b, s in at_kill if b == boot)])
            await _until(lambda: all(len(fleet.seen.get(k, ())) >= s for k, s in sent.items()), 30)
            received = sum(len(fleet.seen.get(k, set()) & set(range(1, s + 1))) for k, s in sent.items())
            spooled_at_kill_lost = sum(1 for b, s in at_kill if s not in fleet.seen.get((victim, b), set()))
            return {
                "vehicles": vehicles,
                "seconds": seconds,
                "outage_s": outage_s,
                "hub_kills": 1,
                "spooled_at_kill": len(at_kill),
                "sent": sum(sent.values()),
                "received_after_dedup": received,
                "duplicates_dropped": fleet.dedup.duplicates,
                "lost": sum(sent.values()) - received,
                "lost_of_spooled_at_kill": spooled_at_kill_lost,
                "bad_messages": len(fleet.bad),
            }
    finally:
        broker.stop()


async def throughput(folder: Path, seconds: float, mode: str = "flood") -> dict[str, Any]:
    """``flood``: a campaign samples 290 signals every 10 ms; ``push``: ready-made batches as fast
    as the spool and the link take them (the pipeline's capacity, without the sampler)."""
    broker = _Mosquitto(folder)
    broker.start()
    campaign = folder / "flood.yaml"
    try:
        from anycar.bench.broker import bench_signals
        from anycar.model import Catalog

        paths = [s.path for s, _ in bench_signals(Catalog.load_default(), FLOOD_SIGNALS)]
        campaign.write_text(FLOOD.format(paths=", ".join("{path: " + p + "}" for p in paths)))
        async with WireSubscriber(broker.port, persistent=True, keep=False) as fleet:
            name = f"FLOOD-{uuid.uuid4().hex[:6]}"
            proc = _spawn(mode, broker.port, name, folder, campaign)
            await _until(lambda: _started(folder / f"{name}.sqlite3"), 60)
            await asyncio.sleep(2.0)  # warm up
            v0, t0 = fleet.values, time.monotonic()
            await asyncio.sleep(seconds)
            values, took = fleet.values - v0, time.monotonic() - t0
            final = _finish(proc)
            lat = [x for xs in fleet.latency.values() for x in xs]
            return {
                "mode": mode,
                "signals": len(paths),
                "offered_values_per_s": round(len(paths) / 0.01) if mode == "flood" else None,
                "values_per_s": round(values / took),
                "hub_cpu_percent": round(100 * final.get("cpu_s", 0) / max(final.get("wall_s", 1), 1e-9), 1),
                "batch_latency": latency_summary(lat),
            }
    finally:
        broker.stop()


async def cpu_default(folder: Path, seconds: float) -> dict[str, Any]:
    from anycar.uplink.config import DEFAULT_CAMPAIGN

    broker = _Mosquitto(folder)
    broker.start()
    try:
        async with WireSubscriber(broker.port, persistent=True, keep=False):
            out: dict[str, Any] = {}
            for mode in ("none", "default"):
                proc = _spawn(
                    mode, broker.port, f"CPU-{mode}-{uuid.uuid4().hex[:6]}", folder, DEFAULT_CAMPAIGN
                )
                await asyncio.sleep(seconds)
                final = _finish(proc)
                out[mode] = round(100 * final["cpu_s"] / final["wall_s"], 2)
            return {
                "seconds": seconds,
                "hub_cpu_percent_without_uplink": out["none"],
                "hub_cpu_percent_with_uplink": out["default"],
                "uplink_cpu_percent": round(out["default"] - out["none"], 2),
            }
    finally:
        broker.stop()


def default_campaign_hour(
    minutes: float = 60.0, brand: str = "kaiyun_pickman"
) -> tuple[list[tuple[str, bytes]], dict[str, Any]]:
    """The default campaign's messages for ``minutes`` of a simulated vehicle, made by the real
    sampler and encoder (simulated time), and their size against one JSON message per value."""
    return asyncio.run(_hour(minutes, brand))


def _mqtt5_publish_bytes(topic: str, payload: bytes, content_type: str) -> int:
    """A QoS 1 PUBLISH with a content type, plus its PUBACK (what crosses the link, without TCP/TLS)."""
    props = 1 + 2 + len(content_type)
    remaining = 2 + len(topic) + 2 + 1 + props + len(payload)
    varint = 1 if remaining < 128 else 2 if remaining < 16384 else 3
    return 1 + varint + remaining + 4


async def _hour(minutes: float, brand: str) -> tuple[list[tuple[str, bytes]], dict[str, Any]]:
    from anycar.broker import SignalBroker
    from anycar.broker.datapoint import Datapoint
    from anycar.sim.simulator import Simulator
    from anycar.uplink.campaigns import Campaign, Periodic, load_campaign_file
    from anycar.uplink.collector import CampaignRunner
    from anycar.uplink.config import DEFAULT_CAMPAIGN
    from anycar.uplink.events import EventDetector
    from anycar.wire import Channel, Format, Origin, content_type, encode, new_boot_id, topic
    from anycar.wire import messages as msg

    broker = SignalBroker()
    campaign = load_campaign_file(DEFAULT_CAMPAIGN, broker.catalog)
    scheme = campaign.scheme
    assert isinstance(scheme, Periodic)  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
    origin = Origin("PM-0001", new_boot_id())
    now = [1_767_225_600.0]  # 2026-01-01, simulated
    seq = [0]
    out: list[tuple[str, bytes]] = []
    unbatched = {"bytes": 0, "messages": 0}

    def emit(c: Campaign, rows: list[Any], trigger: float | None) -> None:
        seq[0] += 1
        doc = msg.telemetry(
            origin, seq[0], rows, campaign=c.id, version=c.version, prio=c.priority, ts=now[0]
        )
        out.append((Channel.TELEMETRY, encode(doc, compress=True, validate=False)))
        for path, t, value in rows:
            single = {**origin.envelope("telemetry", seq[0], c.priority, t), "path": path, "value": value}
            unbatched["bytes"] += _mqtt5_publish_bytes(
                topic(origin.vehicle, "telemetry"), json.dumps(single).encode(), "application/json"
            )
            unbatched["messages"] += 1

    def emit_events(items: list[dict[str, Any]]) -> None:
        seq[0] += 1
        out.append(
            (
                Channel.EVENTS,
                encode(msg.events(origin, seq[0], items, prio=1, ts=now[0]), compress=True, validate=False),
            )
        )
        for item in items:
            single = {**origin.envelope("events", seq[0], 1, item["ts"]), "event": item}
            unbatched["bytes"] += _mqtt5_publish_bytes(
                topic(origin.vehicle, "events"), json.dumps(single).encode(), "application/json"
            )
            unbatched["messages"] += 1

    runner = CampaignRunner(campaign, broker, emit, clock=lambda: now[0])
    runner.deadband = {
        p: runner._deadband_of(p)
        for s in campaign.signals
        for p in (sig.path for sig in broker.catalog.match(s.pattern))
    }
    events = EventDetector(broker, emit_events, clock=lambda: now[0])
    sim = Simulator.for_profile(brand, dt=0.5)
    last_tick = last_full = last_flush = -1e9
    start = now[0]
    for step in sim.run(minutes * 60):
        now[0] = start + step.t
        batch = [
            Datapoint(p, v, now[0]) for p, v in step.values.items() if broker.catalog.find(p) is not None
        ]
        runner.on_values(batch)
        events.apply(batch)
        period = scheme.fast_period_s if runner._fast and scheme.fast_period_s else scheme.period_s
        if step.t - last_tick >= period - 1e-9:
            full = scheme.full_every_s is not None and step.t - last_full >= scheme.full_every_s - 1e-9
            runner.tick(full=full)
            last_tick = step.t
            if full:
                last_full = step.t
        if step.t - last_flush >= campaign.max_delay_s - 1e-9:
            runner.flush()
            last_flush = step.t
    runner.flush()
    tel = topic(origin.vehicle, "telemetry")
    batched = sum(_mqtt5_publish_bytes(tel, p, content_type(Format.CBOR, p[:1] == b"\x78")) for _, p in out)
    hours = minutes / 60
    return out, {
        "simulated_minutes": minutes,
        "brand": brand,
        "values": runner.samples,
        "events": sum(events.counts.values()),
        "messages": len(out),
        "bytes_per_vehicle_hour": round(batched / hours),
        "payload_bytes_per_vehicle_hour": round(sum(len(p) for _, p in out) / hours),
        "unbatched_json_messages": unbatched["messages"],
        "unbatched_json_bytes_per_vehicle_hour": round(unbatched["bytes"] / hours),
        "ratio_json_to_batched": round(unbatched["bytes"] / max(batched, 1), 1),
    }


async def catch_up(folder: Path, backlog: list[tuple[str, bytes]]) -> dict[str, Any]:
    from anycar.uplink.spool import Spool
    from anycar.wire import decode

    broker = _Mosquitto(folder)
    broker.start()
    vehicle = "PM-0001"
    spool_path = folder / f"{vehicle}.sqlite3"
    spool = Spool(spool_path, quota_bytes=512 * 1024 * 1024)
    boots = set()
    for channel, payload in backlog:  # what a hub spooled while its broker was away
        doc = decode(payload, validate=False)
        boots.add(doc["boot"])
        spool.put(channel, payload, prio=doc["prio"], qos=1, boot=doc["boot"], seq=doc["seq"])
    spool.close()
    live = folder / "live.yaml"
    live.write_text(LIVE)
    try:
        async with WireSubscriber(broker.port, persistent=True, keep=False) as fleet:
            proc = _spawn("drive", broker.port, vehicle, folder, live)
            boot = next(iter(boots))
            await _until(lambda: fleet.unique > 0, 60)
            t0 = time.monotonic()  # the link is up: the first message has arrived
            done = await _until(lambda: len(fleet.seen.get((vehicle, boot), ())) >= len(backlog), 120)
            took = time.monotonic() - t0
            await asyncio.sleep(3.0)  # live data after the catch-up, for comparison
            _finish(proc)
            return {
                "backlog_messages": len(backlog),
                "backlog_bytes": sum(len(p) for _, p in backlog),
                "drained": done,
                "catch_up_s": round(took, 2),
                "live_latency_during_catch_up": latency_summary(fleet.latency.get("live", [])),
            }
    finally:
        broker.stop()


def run(
    *,
    vehicles: int = 3,
    seconds: float = 12.0,
    outage_s: float = 4.0,
    throughput_s: float = 5.0,
    cpu_s: float = 8.0,
) -> dict[str, Any]:
    if not Path(MOSQUITTO).exists() or shutil.which(MOSQUITTO) is None:
        raise ConfigError(f"anycar bench uplink needs Mosquitto at {MOSQUITTO} (apt-get install mosquitto)")
    result: dict[str, Any] = {"benchmark": "uplink"}
    backlog, per_hour = default_campaign_hour(60.0)
    result["bytes"] = per_hour
    ten_minutes = backlog[: max(1, len(backlog) // 6)]
    with tempfile.TemporaryDirectory(prefix="anycar-bench-uplink-") as tmp:
        for name, work in (
            ("zero_loss", lambda d: zero_loss(d, vehicles, seconds, outage_s)),
            ("throughput", lambda d: throughput(d, throughput_s, "flood")),
            ("pipeline_capacity", lambda d: throughput(d, throughput_s, "push")),
            ("cpu_default_campaign", lambda d: cpu_default(d, cpu_s)),
            ("catch_up_10_min", lambda d: catch_up(d, ten_minutes)),
        ):
            folder = Path(tmp) / name
            folder.mkdir()
            result[name] = asyncio.run(work(folder))
    result["goals"] = {
        "zero_loss": result["zero_loss"]["lost"] == 0,
        "values_per_s_ge_20000": max(
            result["throughput"]["values_per_s"], result["pipeline_capacity"]["values_per_s"]
        )
        >= 20_000,
        "cpu_le_10_percent": result["cpu_default_campaign"]["hub_cpu_percent_with_uplink"] <= 10,
        "catch_up_le_60_s": result["catch_up_10_min"]["catch_up_s"] <= 60,
    }
    return result
