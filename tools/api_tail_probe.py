"""Where a run's slowest messages come from: the collector, per process, against each message.

Measurement only (docs/performance.md, "grpclib as the gRPC engine"). Starts the given targets
(as ``api_engine_probe.py``) with a ``sitecustomize`` on PYTHONPATH that records every garbage
collection (start, duration, generation) in every process of the run (server, provider,
subscriber; ``GC_PROBE_THRESHOLD=a,b,c`` sets ``gc.set_threshold`` in all of them), runs one
paced run per target and round, and prints per run: the latency quantiles, how many messages
were slower than ``--slow-ms`` and how many of those had a collection in some process of the path
while in flight, and the collections per process (count, total and longest ms, by generation).

    .venv/bin/python tools/api_tail_probe.py --targets "hub:--gc python,hub" --rounds 3
    LOOP_PROBE=1 .venv/bin/python tools/api_tail_probe.py --targets grpcio,hub --rounds 1
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from api_engine_probe import start  # tools/ is on sys.path when run as a script

from anycar.bench import api


def collections_during(events: list[list[float]], t0: float, t1: float) -> list[list[float]]:
    return [e for e in events if e[0] < t1 and e[0] + e[1] > t0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--site",
        default=str(Path(__file__).with_name("tail_probe_site")),
        help="folder holding the recording sitecustomize.py",
    )
    parser.add_argument("--targets", default="grpcio,hub")
    parser.add_argument("--transport", default="grpc")
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--slow-ms", type=float, default=2.0)
    args = parser.parse_args()
    captured: dict[str, Any] = {}
    real_latencies = api._latencies

    def latencies(handed: Any, arrivals: Any) -> Any:
        captured["handed"], captured["arrivals"] = handed, arrivals
        return real_latencies(handed, arrivals)

    api._latencies = latencies  # type: ignore[assignment]
    os.environ["PYTHONPATH"] = os.pathsep.join([args.site, os.environ.get("PYTHONPATH", "")])
    for round_ in range(1, args.rounds + 1):
        for t in args.targets.split(","):
            folder = tempfile.mkdtemp(prefix="gcprobe-")
            os.environ["GC_PROBE_DIR"] = folder
            name, _, extra = t.partition(":")
            proc, endpoints = start(name, extra.split() if extra else [])
            try:
                transport = "relay" if name in ("grpcio", "grpclib") else args.transport
                one = api._one(transport, endpoints, args.seconds, args.rate, 100, 100, 1.0, proc.pid)
            finally:
                api._stop(proc)
            sent_at = dict(captured["handed"])
            per_msg = []  # (latency s, handed at, received at)
            for stamp, received, _n in captured["arrivals"]:
                at = sent_at.get(stamp) or sent_at.get(stamp + 1)
                if at is not None:
                    per_msg.append((received - at, at, received))
            procs = {}
            slow_callbacks: dict[str, list[Any]] = {}
            for path in glob.glob(os.path.join(folder, "*.loop.json")):
                pid = int(os.path.basename(path).split(".")[0])
                with open(path) as f:
                    slow_callbacks["server" if pid == proc.pid else f"client:{pid}"] = json.load(f)
            for path in glob.glob(os.path.join(folder, "*[0-9].json")):
                with open(path) as f:
                    data = json.load(f)
                pid = int(os.path.basename(path)[:-5])
                procs["server" if pid == proc.pid else f"client:{pid}"] = data["events"]
            slow = [m for m in per_msg if m[0] * 1000 > args.slow_ms]
            slow_gc = sum(1 for m in slow if any(collections_during(ev, m[1], m[2]) for ev in procs.values()))
            all_gc = sum(
                1 for m in per_msg if any(collections_during(ev, m[1], m[2]) for ev in procs.values())
            )
            summary = {}
            for key, ev in procs.items():
                inrun = [e for e in ev if per_msg and per_msg[0][1] <= e[0] <= per_msg[-1][2]]
                summary[key] = {
                    "collections": len(inrun),
                    "by_gen": [sum(1 for e in inrun if e[2] == g) for g in range(3)],
                    "total_ms": round(1000 * sum(e[1] for e in inrun), 2),
                    "max_ms": round(1000 * max((e[1] for e in inrun), default=0), 3),
                }
            # long event-loop callbacks (LOOP_PROBE=1): which ran while a slow message was in flight
            culprits: dict[str, int] = {}
            for key, cbs in slow_callbacks.items():
                for m in slow:
                    for start_, dur, name in cbs:
                        if start_ < m[2] and start_ + dur > m[1]:
                            culprits[f"{key.split(':')[0]} {name}"] = (
                                culprits.get(f"{key.split(':')[0]} {name}", 0) + 1
                            )
                long_ = {}
                for _at, dur, name in cbs:
                    k = f"{key.split(':')[0]} {name}"
                    n, total, top = long_.get(k, (0, 0.0, 0.0))
                    long_[k] = (n + 1, total + dur, max(top, dur))
                summary_cb = {
                    k: [v[0], round(v[1] * 1000, 2), round(v[2] * 1000, 3)]
                    for k, v in sorted(long_.items(), key=lambda kv: -kv[1][0])[:12]
                }
                captured.setdefault("callbacks", {})[key] = summary_cb
            print(
                json.dumps(
                    {
                        "target": t,
                        "round": round_,
                        "threshold": os.environ.get("GC_PROBE_THRESHOLD", "default"),
                        "messages": len(per_msg),
                        "p50_ms": one["p50_ms"],
                        "p99_ms": one["p99_ms"],
                        "max_ms": one["max_ms"],
                        f"slower_than_{args.slow_ms}ms": len(slow),
                        "of_them_with_a_collection_in_flight": slow_gc,
                        "messages_with_a_collection_in_flight": all_gc,
                        "gc": summary,
                        "slow_messages_by_long_callback_in_flight": culprits,
                        "long_callbacks [count, total ms, max ms]": captured.pop("callbacks", {}),
                        "load_1min": round(os.getloadavg()[0], 2),
                    }
                ),
                flush=True,
            )
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
