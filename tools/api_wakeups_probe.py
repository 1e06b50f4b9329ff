"""Per message through the hub: wake-ups, preemptions and CPU of each hub thread, per hub variant.

Measurement only (docs/performance.md, "what the latency is made of"): starts `anycar hub` in each
variant in turn (gRPC environment switches, uvloop), runs `anycar bench api`'s provider and
subscriber against it at a paced rate, and prints one JSON line per variant and transport with
the hub's voluntary context switches (wake-ups), involuntary ones (preemptions) and schedstat
CPU µs per message, in total and per thread. Counts, not times: they hold on a loaded machine.

    .venv/bin/python tools/api_wakeups_probe.py --variants base,-ee_listener,poll,uvloop \
        --transports grpc,viss --rate 5000 --seconds 6 --rounds 2

The uvloop variant needs uvloop installed (not a dependency of anycar).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess  # nosec B404 # starts the hub it measures
import time
from typing import Any

from anycar.bench import api

UVLOOP = (
    "import runpy, sys, uvloop; uvloop.install(); sys.argv[0] = 'anycar'; "
    "runpy.run_module('anycar.cli.main', run_name='__main__')"
)
VARIANTS: dict[str, tuple[dict[str, str], str | None]] = {
    "base": ({}, None),
    "-ee_listener": ({"GRPC_EXPERIMENTS": "-event_engine_listener"}, None),
    "poll": ({"GRPC_POLL_STRATEGY": "poll"}, None),
    "uvloop": ({}, UVLOOP),
}


def threads(pid: int) -> dict[str, tuple[str, int, int, int]]:
    """tid -> (name, voluntary switches, involuntary switches, CPU ns)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                status = f.read()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ran = int(f.read().split()[0])
        except OSError:
            continue
        voluntary = int(status.split("\nvoluntary_ctxt_switches:")[1].split()[0])
        involuntary = int(status.split("nonvoluntary_ctxt_switches:")[1].split()[0])
        out[tid] = (comm, voluntary, involuntary, ran)
    return out


def per_thread(before: dict[str, Any], after: dict[str, Any], messages: float) -> dict[str, list[float]]:
    rows = {}
    for tid, (comm, v, n, ns) in after.items():
        v0, n0, ns0 = before.get(tid, (comm, 0, 0, 0))[1:]
        if v - v0 or n - n0:
            rows[f"{comm}:{tid}"] = [
                round((v - v0) / messages, 2),
                round((n - n0) / messages, 2),
                round((ns - ns0) / messages / 1000, 1),
            ]
    return rows


def measure(variant: str, transports: list[str], rate: float, seconds: float) -> None:
    env, code = VARIANTS[variant]
    real_popen = subprocess.Popen

    def popen(cmd: list[str], *args: Any, **kw: Any) -> Any:
        if code:
            cmd = [cmd[0], "-c", code, *cmd[cmd.index("-m") + 2 :]]
        return real_popen(cmd, *args, env={**os.environ, **env}, **kw)  # nosec B603 # this interpreter and the hub's own arguments

    api.subprocess.Popen = popen  # type: ignore[assignment,misc]
    try:
        hub, endpoints = api._start_hub()
    finally:
        api.subprocess.Popen = real_popen  # type: ignore[misc]
    try:
        time.sleep(1)
        for transport in transports:
            before = threads(hub.pid)
            one = api._one(transport, endpoints, seconds, rate, 100, 100, 1.0, hub.pid)
            rows = per_thread(before, threads(hub.pid), one["published"] / 100)
            print(
                json.dumps(
                    {
                        "variant": variant,
                        "transport": transport,
                        "rate": rate,
                        "p50_ms": one["p50_ms"],
                        "wakeups": round(sum(r[0] for r in rows.values()), 2),
                        "preempted": round(sum(r[1] for r in rows.values()), 2),
                        "cpu_us": round(sum(r[2] for r in rows.values()), 1),
                        "load_1min": round(os.getloadavg()[0], 1),
                        "threads [wakeups, preempted, cpu_us]": rows,
                    }
                ),
                flush=True,
            )
    finally:
        api._stop(hub)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="base", help=f"comma list of {', '.join(VARIANTS)}")
    parser.add_argument("--transports", default="grpc,viss")
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    for _ in range(args.rounds):
        for variant in args.variants.split(","):
            measure(variant, args.transports.split(","), args.rate, args.seconds)


if __name__ == "__main__":
    main()
