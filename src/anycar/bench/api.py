"""`anycar bench api`: provider -> hub -> subscriber over loopback, through gRPC and through VISS.

Three processes, as a user would run them: the hub (``anycar hub``), a provider that publishes
batches over ``OpenProviderStream`` (``PublishValuesRequest``), and a subscriber: a
kuksa.val.v2 ``Subscribe`` client, or a VISS v2 WebSocket client. Figures count only what was
sent after a warm-up.

Latency is what KUKSA's databroker-perf measures (its reference figure is the goal): from the
moment the provider hands a finished message to its gRPC stream until the subscriber has it
decoded (one host, one clock). The provider stamps the datapoints of each message with their
sample time, distinct per message to the microsecond, and notes when it handed that message
over; the subscriber notes when each stamp arrived, and the two are joined afterwards. The
time the benchmark's Python provider takes to build a message of 100 datapoints (0.1-0.3 ms,
not the hub's) is then not counted as the hub's; it is reported on its own as ``age_*``: how old
a value is on arrival, counted from its sample time.

Per transport it measures (a) the saturation throughput: the provider sends as fast as the hub
lets it, and what reaches the subscriber per second is the figure; (b) latency at fixed offered
rates (5,000/s, a real car; 42,000/s; 84,000/s, KUKSA's figure). Latency at an offered rate the
pipeline cannot carry would only measure a queue, so each run also says what was held back
(offered but not sent on time, because the hub's flow control made the provider wait) and what
was dropped (the hub's count of updates a full subscriber queue discarded): under overload the
latency must stay bounded and the excess show up there.
"""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing as mp
import os
import subprocess  # nosec B404 # the benchmark starts the hub it measures
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from anycar.bench.broker import KUKSA_REFERENCE, bench_signals
from anycar.bench.stats import latency_summary
from anycar.model import Catalog

GOAL = {
    "saturation_per_s": 84_000,
    "p99_ms": {"5000": 2.0, "42000": 5.0},
    "overload": "latency bounded; the excess held back or dropped, and counted",
}
RATES = (5_000.0, 42_000.0, 84_000.0)
# below this rate a run lasts at least LOW_RATE_SECONDS: at 5,000 signals/s in messages of 100, a
# 4 s run holds 150 messages, and its p99 would be the second-slowest of them
LOW_RATE = 20_000.0
LOW_RATE_SECONDS = 10.0
SUBSCRIBER_QUEUE = 1000  # kuksa.val.v2 buffer_size: the databroker's maximum


# -- the processes ---------------------------------------------------------------------------------
def _freeze_startup_heap() -> None:
    """Like ``anycar hub``: imported modules live as long as the process, so a full collection
    need not walk them (it takes tens of ms and would show as latency in the client, not the hub)."""
    gc.collect()
    gc.freeze()


def _provider(
    port: int,
    plan: list[tuple[int, str, list[Any]]],
    seconds: float,
    rate: float,
    batch: int,
    warmup: float,
    warmup_at: Any,
    out: Any,
) -> None:
    import grpc
    from kuksa.val.v2 import val_pb2 as v2
    from kuksa.val.v2 import val_pb2_grpc

    async def run() -> None:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stub = val_pb2_grpc.VALStub(channel)
        sent = 0
        rounds = len(plan[0][2])
        messages_per_round = max(1, len(plan) // batch)
        interval = batch / rate if rate > 0 else 0.0

        call = stub.OpenProviderStream()
        errors = 0

        async def read_reports() -> None:
            nonlocal errors
            try:
                while True:
                    response = await call.read()
                    if response is grpc.aio.EOF:
                        return
                    if response.HasField("publish_values_response"):
                        errors += len(response.publish_values_response.status)
            except (grpc.aio.AioRpcError, asyncio.CancelledError):
                return

        reader = asyncio.create_task(read_reports())
        warm_from = time.time() + warmup
        warmup_at[0] = warm_from
        warm_from_us = int(warm_from * 1e6)
        cpu0, wall0 = time.process_time(), time.monotonic()
        own0 = _switches()
        start = time.perf_counter()
        next_at = start
        k = 0
        measured = 0  # datapoints stamped after the warm-up
        behind = 0.0  # the longest the provider was behind its schedule, s
        handed: list[tuple[int, float]] = []  # (a message's stamp in µs, when it went to gRPC)
        last_us = 0
        while time.perf_counter() - start < seconds:
            values = k % rounds
            chunk = plan[(k % messages_per_round) * batch : (k % messages_per_round + 1) * batch]
            # the sample time, in whole µs (VISS's precision) and distinct per message: the
            # stamp a subscriber receives names the message it came in
            stamp_us = max(time.time_ns() // 1000, last_us + 2)
            last_us = stamp_us
            seconds_part, micros = divmod(stamp_us, 1_000_000)
            nanos = micros * 1000
            # filled in place: building a Datapoint and copying it into the map costs twice
            message = v2.OpenProviderStreamRequest()
            request = message.publish_values_request
            request.request_id = k
            points = request.data_points
            for sid, field, vals in chunk:
                dp = points[sid]
                stamp = dp.timestamp
                stamp.seconds = seconds_part
                stamp.nanos = nanos
                setattr(dp.value, field, vals[values])
            # built: from here on the time is the API's (databroker-perf takes its Instant here)
            handed_at = time.time()
            await call.write(message)
            sent += len(chunk)
            warm = stamp_us >= warm_from_us
            if warm:
                measured += len(chunk)
                handed.append((stamp_us, handed_at))
            k += 1
            if interval:
                next_at += interval
                delay = next_at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif warm:
                    behind = max(behind, -delay)
        own = _per_message(own0, _switches(), k)
        await asyncio.sleep(0.3)  # error reports, if any, arrive before the stream ends
        call.cancel()
        reader.cancel()
        await channel.close()
        cpu = 100 * (time.process_time() - cpu0) / (time.monotonic() - wall0)
        out.send(
            {
                "sent": sent,
                "measured": measured,
                "behind_ms": round(behind * 1000, 1),
                "elapsed_s": time.perf_counter() - start,
                "errors": errors,
                "cpu_percent": round(cpu, 1),
                "per_message": own,
                "messages": k,
                "handed": handed,
            }
        )

    _freeze_startup_heap()
    asyncio.run(run())


def _grpc_subscriber(port: int, paths: list[str], warmup_at: Any, ready: Any, stop: Any, out: Any) -> None:
    import grpc
    from kuksa.val.v2 import val_pb2 as v2
    from kuksa.val.v2 import val_pb2_grpc

    async def run() -> None:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stub = val_pb2_grpc.VALStub(channel)
        call = stub.Subscribe(v2.SubscribeRequest(signal_paths=paths, buffer_size=SUBSCRIBER_QUEUE))
        await call.read()  # the initial state: the subscription is in place
        ready.set()
        cpu0, wall0 = time.process_time(), time.monotonic()
        own0 = _switches()
        arrivals: list[tuple[int, float, int]] = []  # (stamp in µs, received at, datapoints)
        counted = 0
        first = last = 0.0

        async def watch() -> None:
            # a thread blocked on the event, not a poll: no wake-ups of its own during the run
            await asyncio.to_thread(stop.wait)
            call.cancel()

        watcher = asyncio.create_task(watch())
        try:
            while True:
                message = await call.read()
                if message is grpc.aio.EOF:
                    break
                now = time.time()
                warm_from_us = warmup_at[0] * 1e6
                stamps: dict[int, int] = {}
                for dp in message.entries.values():
                    ts = dp.timestamp
                    key = ts.seconds * 1_000_000 + (ts.nanos + 500) // 1000
                    stamps[key] = stamps.get(key, 0) + 1
                for key, n in stamps.items():
                    if key >= warm_from_us:
                        arrivals.append((key, now, n))
                        counted += n
                        if not first:
                            first = now
                        last = now
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        watcher.cancel()
        await channel.close()
        cpu = round(100 * (time.process_time() - cpu0) / (time.monotonic() - wall0), 1)
        own1 = _switches()
        out.send(
            {"arrivals": arrivals, "received": counted, "first": first, "last": last, "cpu_percent": cpu}
            | {"switches": (own0, own1)}
        )

    _freeze_startup_heap()
    asyncio.run(run())


def _viss_subscriber(port: int, paths: list[str], warmup_at: Any, ready: Any, stop: Any, out: Any) -> None:
    from websockets.asyncio.client import connect

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    one_us = timedelta(microseconds=1)

    def parse_us(text: str) -> int:
        """VISS's ISO 8601 text, to the microsecond exactly (no float on the way)."""
        return (datetime.fromisoformat(text) - epoch) // one_us

    async def run() -> None:
        arrivals: list[tuple[int, float, int]] = []  # (stamp in µs, received at, datapoints)
        counted = 0
        first = last = 0.0
        root = "Vehicle"
        rel = [p.removeprefix(root + ".") for p in paths]
        async with connect(f"ws://127.0.0.1:{port}", subprotocols=["VISSv2"], max_size=None) as ws:  # type: ignore[list-item]
            await ws.send(
                json.dumps(
                    {
                        "action": "subscribe",
                        "path": root,
                        "filter": {"type": "paths", "parameter": rel},
                        "requestId": "b",
                    }
                )
            )
            reply = json.loads(await ws.recv())
            assert "subscriptionId" in reply, reply  # nosec B101 # a benchmark's sanity check of the hub's reply, not a guard
            ready.set()
            cpu0, wall0 = time.process_time(), time.monotonic()
            own0 = _switches()

            async def watch() -> None:
                await asyncio.to_thread(stop.wait)  # no wake-ups of its own during the run
                await ws.close()

            watcher = asyncio.create_task(watch())
            try:
                async for raw in ws:
                    now = time.time()
                    data = json.loads(raw).get("data")
                    if data is None:
                        continue
                    warm_from_us = warmup_at[0] * 1e6
                    stamps: dict[str, int] = {}
                    for obj in data if isinstance(data, list) else [data]:
                        dps = obj["dp"]
                        for dp in dps if isinstance(dps, list) else [dps]:
                            text = dp["ts"]
                            stamps[text] = stamps.get(text, 0) + 1
                    for text, n in stamps.items():
                        key = parse_us(text)
                        if key >= warm_from_us:
                            arrivals.append((key, now, n))
                            counted += n
                            if not first:
                                first = now
                            last = now
            except Exception:  # nosec B110 # the measuring client ends when the hub closes the socket; the counts so far are the result
                pass
            watcher.cancel()
        cpu = round(100 * (time.process_time() - cpu0) / (time.monotonic() - wall0), 1)
        own1 = _switches()
        out.send(
            {"arrivals": arrivals, "received": counted, "first": first, "last": last, "cpu_percent": cpu}
            | {"switches": (own0, own1)}
        )

    _freeze_startup_heap()
    asyncio.run(run())


def _latencies(
    handed: list[tuple[int, float]], arrivals: list[tuple[int, float, int]]
) -> tuple[list[float], list[float], int]:
    """Per datapoint received, in arrival order: seconds from its message's hand-over to gRPC,
    and seconds from its sample time (its age); and how many datapoints named no message sent
    (0 unless the hub changed a timestamp).

    A stamp may come back a microsecond short (a hub that cuts the float it keeps rather than
    rounding it); stamps are at least 2 µs apart, so the one after it is the same message.
    """
    sent_at = dict(handed)
    latency: list[float] = []
    age: list[float] = []
    unmatched = 0
    for stamp_us, received, n in arrivals:
        at = sent_at.get(stamp_us)
        if at is None:
            at = sent_at.get(stamp_us + 1)
        if at is None:
            unmatched += n
            continue
        latency.extend([received - at] * n)
        age.extend([received - stamp_us / 1e6] * n)
    return latency, age, unmatched


# -- orchestration -----------------------------------------------------------------------------------
def _start_hub(profile: str | None = None) -> tuple[subprocess.Popen[str], dict[str, str]]:
    prefix = ["-m", "cProfile", "-o", profile] if profile else []
    cmd = [
        sys.executable,
        *prefix,
        "-m",
        "anycar.cli.main",
        "hub",
        "--grpc-port",
        "0",
        "--viss-port",
        "0",
        "--http-port",
        "0",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # nosec B603 # a fixed argument list (this interpreter, anycar hub, port 0), no shell, no outside input
    assert proc.stdout is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
    line = proc.stdout.readline()
    if not line.startswith("anycar hub ready "):
        proc.kill()
        raise RuntimeError(f"the hub did not start: {line!r}")
    return proc, json.loads(line.removeprefix("anycar hub ready "))


def _start_relay() -> tuple[subprocess.Popen[str], dict[str, str]]:
    """The baseline relay (``anycar.bench.relay``) and its endpoints, as ``_start_hub``'s."""
    cmd = [sys.executable, "-m", "anycar.bench.relay"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # nosec B603 # a fixed argument list (this interpreter, the relay module), no shell, no outside input
    assert proc.stdout is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
    line = proc.stdout.readline()
    if not line.startswith("relay ready "):
        proc.kill()
        raise RuntimeError(f"the baseline relay did not start: {line!r}")
    return proc, {"grpc": f"grpc://127.0.0.1:{int(line.split()[2])}"}


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc); None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _switches(pid: int | str = "self") -> tuple[int, int, int] | None:
    """(voluntary context switches, involuntary ones, CPU ns) summed over a process's threads
    (Linux /proc); None elsewhere.

    Load-independent figures per message: a voluntary switch is a thread that waited and was
    woken (each wake-up on the path costs latency when the process is idle between messages);
    the CPU time comes from schedstat, in nanoseconds. Involuntary switches are preemptions
    (other processes wanting the core): they grow with the machine's load, not with the path.
    """
    voluntary = involuntary = cpu = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                status = f.read()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ran = f.read().split()[0]
            voluntary += int(status.split("\nvoluntary_ctxt_switches:")[1].split()[0])
            involuntary += int(status.split("nonvoluntary_ctxt_switches:")[1].split()[0])
            cpu += int(ran)
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return voluntary, involuntary, cpu


def _per_message(
    before: tuple[int, int, int] | None, after: tuple[int, int, int] | None, messages: int
) -> dict[str, float | None]:
    """Wake-ups, preemptions and CPU µs per message between two ``_switches`` readings."""
    if before is None or after is None or messages <= 0:
        return {"wakeups": None, "preempted": None, "cpu_us": None}
    return {
        "wakeups": round((after[0] - before[0]) / messages, 2),
        "preempted": round((after[1] - before[1]) / messages, 2),
        "cpu_us": round((after[2] - before[2]) / messages / 1000, 1),
    }


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _hub_dropped(http_url: str | None, transport: str) -> int | None:
    """What the hub's subscriptions of ``transport`` dropped so far (its REST API's counters);
    None for the relay, which has no such API (what it drops shows as ``lost``)."""
    prefix = "grpc:" if transport == "grpc" else "viss:"
    if http_url is None:
        return None
    try:
        # the hub's own http:// address from its ready line, never a user-given URL
        with urllib.request.urlopen(f"{http_url}/api/v1/subscriptions", timeout=10) as reply:  # nosec B310
            subs = json.load(reply)["subscriptions"]
    except (OSError, ValueError, KeyError):
        return None
    # full queue (dropped) or too old (expired, limits.max_update_age_ms): not delivered either way
    return sum(
        s["dropped"] + s.get("expired", 0)
        for s in subs
        if s["name"].startswith(prefix) and s["name"] != "viss:history"
    )


def _one(
    transport: str,
    endpoints: dict[str, str],
    seconds: float,
    rate: float,
    batch: int,
    signals: int,
    warmup: float,
    hub_pid: int,
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    chosen = bench_signals(Catalog.load_default(), signals)
    from anycar.api.grpc.convert import field_for

    plan = [(sig.id, field_for(sig.datatype), vals) for sig, vals in chosen]
    paths = [sig.path for sig, _ in chosen]
    ready, stop = ctx.Event(), ctx.Event()
    sub_recv, sub_send = ctx.Pipe(duplex=False)
    prov_recv, prov_send = ctx.Pipe(duplex=False)
    warmup_at = ctx.Array("d", [float("inf")])
    over_grpc = transport != "viss"  # the hub's kuksa.val.v2, or the baseline relay's
    target = _grpc_subscriber if over_grpc else _viss_subscriber
    port = _port(endpoints["grpc" if over_grpc else "viss"])
    subscriber = ctx.Process(target=target, args=(port, paths, warmup_at, ready, stop, sub_send), daemon=True)
    subscriber.start()
    if not ready.wait(30):
        subscriber.kill()
        raise RuntimeError(f"the {transport} subscriber did not subscribe")
    dropped_before = _hub_dropped(endpoints.get("http"), transport)
    provider = ctx.Process(
        target=_provider,
        args=(_port(endpoints["grpc"]), plan, seconds, rate, batch, warmup, warmup_at, prov_send),
        daemon=True,
    )
    cpu_before, wall_before = _cpu_seconds(hub_pid), time.monotonic()
    hub_before = _switches(hub_pid)
    provider.start()
    sent: dict[str, Any] = (
        prov_recv.recv() if prov_recv.poll(seconds + 60) else {"sent": 0, "measured": 0, "errors": -1}
    )
    provider.join(10)
    cpu_after, wall_after = _cpu_seconds(hub_pid), time.monotonic()
    hub_after = _switches(hub_pid)
    time.sleep(0.5)  # let the last updates arrive
    dropped_after = _hub_dropped(endpoints.get("http"), transport)
    stop.set()
    result: dict[str, Any] = (
        sub_recv.recv() if sub_recv.poll(60) else {"arrivals": [], "received": 0, "first": 0, "last": 0}
    )
    subscriber.join(10)
    window = max(1e-9, result["last"] - result["first"])
    measured_s = max(1e-9, seconds - warmup)
    offered = rate * measured_s if rate > 0 else None
    out: dict[str, Any] = {
        "transport": transport,
        "subscriber": "kuksa.val.v2 Subscribe" if over_grpc else "VISS v2 WebSocket subscribe",
        "provider": "kuksa.val.v2 OpenProviderStream PublishValuesRequest",
        "signals": len(plan),
        "batch": batch,
        "offered_per_s": rate if rate > 0 else "unpaced",
        "published": sent["sent"],
        "publish_errors": sent["errors"],
        "sent_after_warmup": sent.get("measured", 0),
        "sent_per_s": round(sent.get("measured", 0) / measured_s),
        # offered but not sent on schedule: the hub's flow control made the provider wait
        "held_back": max(0, round(offered - sent.get("measured", 0))) if offered is not None else None,
        "provider_behind_ms": sent.get("behind_ms"),
        "received": result["received"],
        "dropped_by_hub": (
            dropped_after - dropped_before
            if dropped_after is not None and dropped_before is not None
            else None
        ),
        "lost": max(0, sent.get("measured", 0) - result["received"]),
        "signals_per_s": round(result["received"] / window) if result["received"] else 0,
        "seconds": seconds,
        "provider_cpu_percent": sent.get("cpu_percent"),
        "subscriber_cpu_percent": result.get("cpu_percent"),
        "hub_cpu_percent": (
            round(100 * (cpu_after - cpu_before) / (wall_after - wall_before), 1)
            if cpu_before is not None and cpu_after is not None
            else None
        ),
    }
    # per message sent, over the whole run (warm-up included): the hub's from outside, the
    # provider's and subscriber's from inside (the subscriber's count includes its idle wait
    # for the first message and the end, a few switches per run)
    messages = sent.get("messages", 0)
    sub_before, sub_after = result.get("switches", (None, None))
    out["per_message"] = {
        "hub": _per_message(hub_before, hub_after, messages),
        "provider": sent.get("per_message"),
        "subscriber": _per_message(sub_before, sub_after, messages),
    }
    out["hub_wakeups_per_message"] = out["per_message"]["hub"]["wakeups"]
    out["hub_cpu_us_per_message"] = out["per_message"]["hub"]["cpu_us"]
    latency, age, unmatched = _latencies(sent.get("handed", []), result["arrivals"])
    out.update(latency_summary(latency))
    # a queue that grows shows as a later half slower than the earlier one; a bounded one does not
    half = len(latency) // 2
    out["p99_ms_halves"] = [latency_summary(part)["p99_ms"] for part in (latency[:half], latency[half:])]
    ages = latency_summary(age)
    out["age_p50_ms"], out["age_p99_ms"] = ages["p50_ms"], ages["p99_ms"]
    out["unmatched"] = unmatched
    return out


FIGURES = (
    "signals_per_s",
    "p50_ms",
    "p99_ms",
    "max_ms",
    "age_p99_ms",
    "held_back",
    "dropped_by_hub",
    "lost",
    "hub_wakeups_per_message",
    "hub_cpu_us_per_message",
    "p50_over_relay_ms",
    "hub_cpu_us_over_relay",
)


def _difference(a: float | None, b: float | None) -> float | None:
    return round(a - b, 1) if a is not None and b is not None else None


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per offered rate (and ``saturation``): the figures of one run, or over several rounds
    ``[lowest, highest]`` of each (a busy machine spreads them; the range is the result)."""
    by_rate: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        key = "saturation" if r["offered_per_s"] == "unpaced" else str(round(r["offered_per_s"]))
        by_rate.setdefault(key, []).append(r)
    out: dict[str, Any] = {}
    for key, group in by_rate.items():
        figures: dict[str, Any] = {}
        for name in FIGURES:
            values = [r[name] for r in group if isinstance(r.get(name), (int, float))]
            if len(group) == 1 or not values:
                figures[name] = group[0].get(name)
            else:
                figures[name] = [min(values), max(values)]
        if len(group) == 1:
            figures["p99_ms_halves"] = group[0]["p99_ms_halves"]
        out[key] = figures
        if key == "saturation":
            out["saturation_per_s"] = figures["signals_per_s"]
    return out


def run(
    seconds: float = 4.0,
    rates: tuple[float, ...] = RATES,
    saturation: bool = True,
    batch: int = 100,
    signals: int = 100,
    warmup: float = 1.0,
    transports: tuple[str, ...] = ("grpc", "viss"),
    profile: str | None = None,
    low_rate_seconds: float = LOW_RATE_SECONDS,
    repeat: int = 1,
    baseline: bool = False,
) -> dict[str, Any]:
    """One hub; per transport a saturation run (unpaced) and one run per offered rate (runs
    below ``LOW_RATE`` last at least ``low_rate_seconds``), all of it ``repeat`` times.

    ``profile``: write a cProfile of the hub process there (to see where its time goes).
    ``baseline``: right after each gRPC run, the same run against the bare relay
    (``anycar.bench.relay``); each gRPC run then says how far its p50 is above the relay's.
    """
    hub, endpoints = _start_hub(profile)
    relay = relay_endpoints = None
    runs: list[dict[str, Any]] = []
    try:
        if baseline and "grpc" in transports:
            relay, relay_endpoints = _start_relay()
        for round_ in range(1, max(1, repeat) + 1):
            for transport in transports:
                for rate in ((0.0,) if saturation else ()) + tuple(rates):
                    length = max(seconds, low_rate_seconds) if 0 < rate < LOW_RATE else seconds
                    pairs = [(transport, endpoints, hub.pid)]
                    if transport == "grpc" and relay is not None and relay_endpoints is not None:
                        pairs.append(("relay", relay_endpoints, relay.pid))
                    done = []
                    for name, where, pid in pairs:
                        one = _one(name, where, length, rate, batch, signals, warmup, pid)
                        one["round"] = round_
                        one["load_1min"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
                        runs.append(one)
                        done.append(one)
                    if len(done) == 2:
                        ours, bare = done
                        ours["p50_over_relay_ms"] = round(ours["p50_ms"] - bare["p50_ms"], 4)
                        ours["hub_cpu_us_over_relay"] = _difference(
                            ours["per_message"]["hub"]["cpu_us"], bare["per_message"]["hub"]["cpu_us"]
                        )
    finally:
        _stop(hub)
        if relay is not None:
            _stop(relay)
    out: dict[str, Any] = {"benchmark": "api"}
    for transport in (*transports, "relay"):
        chosen = [r for r in runs if r["transport"] == transport]
        if chosen:
            out[transport] = _summary(chosen)
    out["runs"] = runs
    out["goal"] = GOAL
    out["reference"] = KUKSA_REFERENCE
    loads = [r["load_1min"] for r in runs if r["load_1min"] is not None]
    out["machine"] = {
        "cpus": os.cpu_count(),
        "processes": "hub, provider, subscriber",
        "load_1min": [min(loads), max(loads)] if loads else None,
    }
    return out
