"""`anycar bench swap`: the CSMS under a network of simulated stations, and station throughput.

- CSMS load: N stations (default 1,000, layout pickman-8: 8 slots) connect over TLS with basic
  auth to a CSMS running alone in its own process, pinned to one core; each sends a Heartbeat, a
  StatusNotification per slot and MeterValues (or TransactionEvent) per slot every 60 s, spread
  evenly; across the network a vehicle arrives every 6 s (10 swaps a minute): Authorize →
  RequestBatterySwap → BatteryIn → BatteryOut. Figures over the measuring window: every answer's
  latency as the station sees it (send → CALLRESULT, so the stations' own loop lag counts against
  the CSMS), and each swap's flow latency (Authorize sent → last BatterySwap answered) minus the
  robot's measured mechanical time; inside the CSMS, each CALL's handling (socket to answer) and
  each swap's CSMS time (``SwapResult.latency_ms``); the CSMS process's CPU seconds, and per CALL.
- Station throughput: the simpy station's ceiling for the nio-gen4 layout vs NIO's published figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import subprocess  # nosec B404 # the benchmark starts the CSMS process it measures
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from anycar.bench.stats import latency_summary
from anycar.errors import ConfigError

READY = "anycar-bench-csms ready "


def _certs(folder: Path) -> tuple[str, str, str]:
    """A CA and a certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "anycar-bench-ca")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1)).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csms")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = folder / "ca.pem", folder / "csms.pem", folder / "csms.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(paths[0]), str(paths[1]), str(paths[2])


def _populate(url: str, stations: int, vehicles: int, layout_name: str) -> tuple[dict[str, str], list[str]]:
    """Stations (stocked, three packs ready each), vehicles with tokens and packs, in bulk."""
    from sqlalchemy import insert

    from anycar.fleet import db as fleet_db
    from anycar.fleet.db import make_engine
    from anycar.fleet.registry import tenant_id
    from anycar.swap import tables as t
    from anycar.swap.migrate import upgrade
    from anycar.swap.policy import load_layout
    from anycar.swap.registry import password_hash

    engine = make_engine(url)
    upgrade(engine)
    layout = load_layout(layout_name)
    now = time.time()
    operator, fleet = tenant_id(engine, "swapco", create=True), tenant_id(engine, "acme", create=True)
    passwords = {f"bss-{i:04d}": secrets.token_urlsafe(24) for i in range(stations)}
    tokens = [secrets.token_hex(16) for _ in range(vehicles)]
    with engine.begin() as conn:
        conn.execute(
            insert(t.stations),
            [
                {"id": s, "tenant_id": operator, "password_hash": password_hash(p), "security_profile": 2, "layout": layout.name,
                 "grid_limit_kw": layout.grid_limit_kw, "online": False, "created": now}
                for s, p in passwords.items()
            ],
        )  # fmt: skip
        conn.execute(
            insert(t.slots),
            [
                {"station_id": s, "evse_id": e, "status": "Unavailable", "updated": now}
                for s in passwords
                for e in range(1, layout.slots + 1)
            ],
        )
        conn.execute(
            insert(t.packs),
            [
                {"serial": f"{s}-P{e:02d}", "chemistry": layout.chemistry, "capacity_kwh": layout.capacity_kwh, "soh": layout.soh,
                 "soc": 99.0 if e <= 3 else layout.soc, "cycles": 0.0, "state": "ready" if e <= 3 else "charging",
                 "station_id": s, "evse_id": e, "updated": now}
                for s in passwords for e in range(1, layout.slots - layout.empty_slots + 1)
            ],
        )  # fmt: skip
        for i, token in enumerate(tokens):
            key = conn.execute(
                insert(fleet_db.vehicles).values(
                    tenant_id=fleet, vin=f"LKYBENCH{i:09d}", brand="kaiyun_pickman", wire_id=f"bench-{i}", kind="hub",
                    revoked=False, created=now,
                )
            ).inserted_primary_key  # fmt: skip
            if key is None:
                raise ConfigError("bench swap: a vehicle row without a key")
            vid = key[0]
            conn.execute(insert(t.id_tokens).values(token=token, vehicle_id=vid, revoked=False, created=now))
            conn.execute(
                insert(t.packs).values(
                    serial=f"VEH-{i:04d}", chemistry=layout.chemistry, capacity_kwh=layout.capacity_kwh, soh=layout.soh, soc=20.0,
                    cycles=0.0, state="in_vehicle", vehicle_id=vid, updated=now,
                )
            )  # fmt: skip
    engine.dispose()
    return passwords, tokens


def serve_main(argv: list[str]) -> int:
    """The CSMS process of the benchmark: ``python -m anycar.bench.swap DB CERT KEY``."""
    from anycar.fleet.db import make_engine
    from anycar.swap.csms import Csms, server_tls
    from anycar.swap.ocpp21 import set_mode

    url, cert, key, *mode = argv
    set_mode(mode[0] if mode else "fast")
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[0]})  # one core

    async def main() -> None:
        csms = Csms(make_engine(url), ssl_context=server_tls(cert, key))
        csms.handled = []
        csms.flows_ms = []
        await csms.start()
        sys.stdout.write(f"{READY}{csms.port} {cores[0]}\n")
        sys.stdout.flush()
        handled = csms.handled
        await asyncio.get_running_loop().run_in_executor(
            None, sys.stdin.readline
        )  # "measure": drop the warm-up
        handled.clear()
        flows = csms.flows_ms
        flows.clear()
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "done"
        summary = latency_summary(list(handled))
        # each swap's time in the CSMS (its DB work, RequestBatterySwap's round trip, the events)
        inside = {f"swap_flow_{k}": v for k, v in latency_summary([f / 1000 for f in flows]).items()}
        doc = {"handled": len(handled), **summary, "over_1s": sum(1 for v in handled if v > 1)}
        sys.stdout.write(json.dumps({**doc, "swaps": len(flows), **inside}) + "\n")
        sys.stdout.flush()
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the bench closes stdin
        await csms.stop()

    asyncio.run(main())
    return 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _stations(port: int, ca: str, passwords: dict[str, str], tokens: list[str], *, layout: str, interval: float,
                    seconds: float, swaps_per_minute: float, speed: float, ready: Any, start_at: Any) -> dict[str, Any]:  # fmt: skip
    """One client process's share of the stations; raw figures for the parent to merge."""
    from anycar.swap.station import Pack, StationSim, Vehicle, client_tls

    tls = client_tls(ca)
    sims = [
        StationSim(s, f"wss://127.0.0.1:{port}/ocpp", layout, password=p, ssl_context=tls, speed=speed, meter_s=interval,
                   status_s=interval, tick_s=5.0, call_timeout=60, validate=False)
        for s, p in passwords.items()
    ]  # fmt: skip
    for sim in sims:
        for slot in sim.slots[:3]:
            if slot.pack:
                slot.pack.soc = 99.0
    rng = random.Random(min(passwords))  # nosec B311 # reproducible choice of stations, not a secret
    tasks: list[asyncio.Task[Any]] = []

    async def start(sim: StationSim, delay: float) -> None:
        await asyncio.sleep(delay)
        await sim.run(retry_s=5.0)

    connect_started = time.perf_counter()
    for sim in sims:  # connections and the periodic messages spread over one interval
        tasks.append(asyncio.ensure_future(start(sim, rng.uniform(0, interval))))
    await asyncio.wait_for(asyncio.gather(*(s.booted.wait() for s in sims)), interval + 600)
    connected_s = time.perf_counter() - connect_started
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, ready.wait)  # every process's stations booted
    begin = await loop.run_in_executor(None, start_at.get)  # epoch seconds: the measuring window opens
    await asyncio.sleep(max(0.0, begin - time.time()))
    for sim in sims:
        sim.latencies.clear()
    lags: list[float] = []

    async def lag() -> None:  # how late this process's event loop runs: it counts in every latency
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.1)
            lags.append(time.perf_counter() - before - 0.1)

    lagger = asyncio.ensure_future(lag())
    free_tokens = list(tokens)
    flows: list[float] = []
    outcomes: dict[str, int] = {}

    async def one_swap(sim: StationSim, token: str) -> None:
        vehicle = Vehicle(token, Pack(f"VEH-{token}", 20.0, 95.0, sim.layout.capacity_kwh))
        try:
            got = await sim.arrive(vehicle, timeout=sim.layout.mechanical_s / speed * 4 + 120)
        except Exception as exc:  # counted, the bench goes on
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
            return
        finally:
            free_tokens.append(token)
        outcomes["done" if got else "refused"] = outcomes.get("done" if got else "refused", 0) + 1
        if got is not None and vehicle.flow_s is not None:
            flows.append(vehicle.flow_s - vehicle.robot_s)

    swaps: list[asyncio.Task[None]] = []
    gap = 60.0 / swaps_per_minute if swaps_per_minute > 0 else seconds + 1
    end, next_swap = begin + seconds, time.time() + rng.uniform(0, gap)
    while (now := time.time()) < end:
        if now >= next_swap:
            next_swap += gap
            sim = rng.choice(sims)
            if sim.bay is None and free_tokens and sim.link is not None:
                swaps.append(asyncio.ensure_future(one_swap(sim, free_tokens.pop(0))))
        await asyncio.sleep(max(0.0, min(0.5, next_swap - now, end - now)))
    latencies = [(kind, lat) for sim in sims for kind, lat in sim.latencies]
    lagger.cancel()
    if swaps:
        await asyncio.wait(swaps, timeout=sims[0].layout.mechanical_s / speed * 4 + 60)
    for sim in sims:
        await sim.stop()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "latencies": latencies, "flows": flows, "outcomes": outcomes, "lags": lags, "connected_s": connected_s,
        "errors": sum(len(s.errors) for s in sims),
    }  # fmt: skip


def _client(kwargs: dict[str, Any], ready: Any, start_at: Any, out: Any) -> None:
    """A client process: its stations on every core but the CSMS's."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) > 1:
        os.sched_setaffinity(0, set(cores[1:]))
    try:
        out.put(asyncio.run(_stations(ready=ready, start_at=start_at, **kwargs)))
    except BaseException as exc:  # the parent reports it instead of waiting forever
        out.put({"error": f"{type(exc).__name__}: {exc}"})
        raise


def _load(port: int, ca: str, passwords: dict[str, str], tokens: list[str], *, layout: str, interval: float, warmup: float,
          seconds: float, swaps_per_minute: float, speed: float, pid: int, control: Any, processes: int) -> dict[str, Any]:  # fmt: skip
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    processes = max(1, min(processes, len(passwords)))
    ready = ctx.Barrier(processes + 1)
    out = ctx.Queue()
    names = list(passwords)
    starts, clients = [], []
    for i in range(processes):
        kwargs = dict(
            port=port, ca=ca, passwords={n: passwords[n] for n in names[i::processes]}, tokens=tokens[i::processes],
            layout=layout, interval=interval, seconds=seconds, swaps_per_minute=swaps_per_minute / processes, speed=speed,
        )  # fmt: skip
        start_at = ctx.Queue()
        client = ctx.Process(target=_client, args=(kwargs, ready, start_at, out), daemon=True)
        client.start()
        starts.append(start_at)
        clients.append(client)
    connect_started = time.perf_counter()
    try:
        ready.wait(timeout=interval + 660)
    except Exception:
        raise ConfigError("bench swap: the stations did not all boot in time") from None
    connected_s = time.perf_counter() - connect_started
    begin = time.time() + warmup
    for q in starts:
        q.put(begin)
    time.sleep(max(0.0, begin - time.time()))
    control("measure")
    cpu0 = _cpu_seconds(pid)
    time.sleep(max(0.0, begin + seconds - time.time()))
    cpu = _cpu_seconds(pid) - cpu0
    inside = control("done")
    parts = [out.get(timeout=seconds + 600) for _ in clients]
    for client in clients:
        client.join(30)
    failed = [p["error"] for p in parts if "error" in p]
    if failed:
        raise ConfigError(f"bench swap: a client process failed: {failed[0]}")
    latencies = [lat for p in parts for _, lat in p["latencies"]]
    by_kind: dict[str, int] = {}
    for p in parts:
        for kind, _ in p["latencies"]:
            by_kind[kind] = by_kind.get(kind, 0) + 1
    outcomes: dict[str, int] = {}
    for p in parts:
        for k, v in p["outcomes"].items():
            outcomes[k] = outcomes.get(k, 0) + v
    summary = latency_summary(latencies)
    flow = latency_summary([f for p in parts for f in p["flows"]])
    return {
        "stations": len(passwords),
        "client_processes": processes,
        "connected_s": round(connected_s, 1),
        "measured_s": round(seconds, 1),
        "messages": len(latencies),
        "messages_per_s": round(len(latencies) / seconds, 1),
        "by_kind": by_kind,
        "answer_p50_ms": summary["p50_ms"],
        "answer_p99_ms": summary["p99_ms"],
        "answer_max_ms": summary["max_ms"],
        "answers_over_1s": sum(1 for v in latencies if v > 1.0),
        "csms_handling": inside,
        "stations_loop_lag": latency_summary([lag for p in parts for lag in p["lags"]]),
        "swaps": outcomes,
        "swap_flow_p50_ms": flow["p50_ms"],
        "swap_flow_p99_ms": flow["p99_ms"],
        "swap_flow_max_ms": flow["max_ms"],
        "csms_cpu_s": round(cpu, 2),
        "csms_cpu_share_of_one_core": round(cpu / seconds, 3),
        # everything the CSMS process did (TLS, WebSocket, OCPP, database) per CALL it handled
        "csms_cpu_us_per_message": round(cpu / max(1, int(inside.get("handled", 0))) * 1e6, 1),
        "station_errors": sum(p["errors"] for p in parts),
    }


def run(*, stations: int = 1000, layout: str = "pickman-8", interval: float = 60.0, warmup: float = 30.0, seconds: float = 120.0,
        swaps_per_minute: float = 10.0, speed: float = 30.0, db: str | None = None, processes: int = 4,
        ocpp_mode: str = "fast") -> dict[str, Any]:  # fmt: skip
    """One run of the CSMS load, plus the station-throughput comparison. ``ocpp_mode``: the CSMS
    with ``anycar.swap.ocpp21``'s fast path (``fast``) or the ``ocpp`` library as shipped."""
    from anycar.swap.simulate import nio_comparison

    if stations < 1 or seconds <= 0 or interval <= 0:
        raise ConfigError("--stations at least 1; --seconds and --interval above 0")
    with tempfile.TemporaryDirectory(prefix="anycar-bench-swap-") as tmp:
        url = db or f"sqlite:///{Path(tmp) / 'fleet.sqlite3'}"
        ca, cert, key = _certs(Path(tmp))
        passwords, tokens = _populate(url, stations, max(20, int(swaps_per_minute * 4)), layout)
        load_before = os.getloadavg()
        proc = subprocess.Popen(  # nosec B603 # our own interpreter and module, no shell
            [sys.executable, "-m", "anycar.bench.swap", url, cert, key, ocpp_mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            if proc.stdout is None or proc.stdin is None:
                raise ConfigError("bench swap: the CSMS process has no pipes")
            line = proc.stdout.readline()
            if not line.startswith(READY):
                raise ConfigError(f"bench swap: the CSMS did not start: {line.strip()!r}")
            port, core = (int(x) for x in line[len(READY) :].split())
            stdin, stdout = proc.stdin, proc.stdout

            def control(word: str) -> Any:
                stdin.write(word + "\n")
                stdin.flush()
                return json.loads(stdout.readline()) if word == "done" else None

            result = _load(
                port, ca, passwords, tokens, layout=layout, interval=interval, warmup=warmup, seconds=seconds,
                swaps_per_minute=swaps_per_minute, speed=speed, pid=proc.pid, control=control, processes=processes,
            )  # fmt: skip
            result["csms_core"] = core
        finally:
            if proc.stdin:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    result["loadavg_before"] = [round(v, 2) for v in load_before]
    result["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
    result["goal_no_answer_over_1s"] = result["answers_over_1s"] == 0
    result["goal_swap_flow_p99_le_200ms"] = result["swap_flow_p99_ms"] <= 200
    result["station_throughput"] = nio_comparison()
    result["benchmark"] = "swap"
    result["ocpp_mode"] = ocpp_mode
    result["command"] = (
        f"anycar bench swap --stations {stations} --seconds {seconds:g} --client-processes {processes}"
        + ("" if ocpp_mode == "fast" else f" --ocpp-mode {ocpp_mode}")
        + " --json"
    )
    return result


if __name__ == "__main__":
    raise SystemExit(serve_main(sys.argv[1:]))
