"""Relays (and hubs) side by side: grpcio against grpclib, interleaved rounds, same minute.

Measurement only (docs/performance.md, "grpclib as the gRPC engine"): starts the bare relay of
each engine (``anycar.bench.relay``, ``anycar.bench.relay_grpclib``) and, with ``--hub``, the hub
itself, then runs `anycar bench api`'s grpcio provider and subscriber against each in turn, per
rate, for ``--rounds`` rounds. One JSON line per run: p50/p99/max, what did not arrive, and per
message the server's wake-ups and CPU µs (and the provider's and subscriber's).

    .venv/bin/python tools/api_engine_probe.py --rates 5000,42000 --rounds 3
    .venv/bin/python tools/api_engine_probe.py --targets grpcio,grpclib,hub --rates 5000 --rounds 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess  # nosec B404 # starts the servers it measures
import sys
from pathlib import Path
from typing import Any

from anycar.bench import api

RELAY_OF = {
    "grpcio": ["-m", "anycar.bench.relay"],
    "grpclib": [str(Path(__file__).with_name("relay_grpclib.py"))],
}


def start_relay(target: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """A bare relay (grpcio: ``anycar.bench.relay``; grpclib: ``tools/relay_grpclib.py``)."""
    proc = subprocess.Popen(  # nosec B603 # this interpreter and a fixed module or file
        [sys.executable, *RELAY_OF[target]], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None  # nosec B101 # narrows an Optional for mypy
    line = proc.stdout.readline()
    if not line.startswith("relay ready "):
        proc.kill()
        raise SystemExit(f"the {target} relay did not start: {line!r}")
    return proc, {"grpc": f"grpc://127.0.0.1:{int(line.split()[2])}"}


def start(target: str, hub_args: list[str]) -> tuple[subprocess.Popen[str], dict[str, str]]:
    if target in RELAY_OF:
        return start_relay(target)
    real_popen = subprocess.Popen

    def popen(cmd: list[str], *args: Any, **kw: Any) -> Any:
        return real_popen([*cmd, *hub_args], *args, **kw)  # nosec B603 # this interpreter and the hub's own arguments

    api.subprocess.Popen = popen  # type: ignore[assignment,misc]
    try:
        return api._start_hub()
    finally:
        api.subprocess.Popen = real_popen  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--targets", default="grpcio,grpclib", help="comma list of grpcio, grpclib, hub, hub:ARGS"
    )
    parser.add_argument("--transport", default="grpc", help="grpc, or viss (hubs only)")
    parser.add_argument("--rates", default="5000,42000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    targets = args.targets.split(",")
    servers = {}
    try:
        for t in targets:
            name, _, extra = t.partition(":")
            servers[t] = start(name, extra.split() if extra else [])
        for round_ in range(1, args.rounds + 1):
            for rate in [float(r) for r in args.rates.split(",")]:
                order = targets if round_ % 2 else targets[::-1]
                for t in order:
                    proc, endpoints = servers[t]
                    transport = "relay" if t in RELAY_OF else args.transport
                    one = api._one(transport, endpoints, args.seconds, rate, 100, 100, 1.0, proc.pid)
                    pm = one["per_message"]
                    row = {
                        "target": t,
                        "round": round_,
                        "rate": rate,
                        "signals_per_s": one["signals_per_s"],
                        "p50_ms": one["p50_ms"],
                        "p99_ms": one["p99_ms"],
                        "max_ms": one["max_ms"],
                        "held_back": one["held_back"],
                        "lost": one["lost"],
                        "server_wakeups": pm["hub"]["wakeups"],
                        "server_cpu_us": pm["hub"]["cpu_us"],
                        "provider": [pm["provider"]["wakeups"], pm["provider"]["cpu_us"]]
                        if pm["provider"]
                        else None,
                        "subscriber": [pm["subscriber"]["wakeups"], pm["subscriber"]["cpu_us"]],
                        "load_1min": round(os.getloadavg()[0], 2),
                    }
                    print(json.dumps(row), flush=True)
    finally:
        for proc, _ in servers.values():
            api._stop(proc)


if __name__ == "__main__":
    main()
