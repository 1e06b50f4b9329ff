"""Where the slowest messages of `anycar bench api` spend their time: per message, per hop.

Measurement only (docs/performance.md, "api-tail2, session 8"). Starts `anycar hub` with
``tools/hop_probe_site/sitecustomize.py`` on PYTHONPATH (it records, in every process of the run,
each garbage collection and each event-loop callback over 20 µs, and in the hub the wall time at
each hop of a message), runs the bench's own provider and subscriber against it (``api._one``) and
joins everything by the message's stamp. Per run it prints the median message's hops and the
slowest 1 % one by one: provider hand-over -> hub ``handle`` entered (``in``: the provider's
write, loopback, grpc.aio's hand-over to the loop) -> left (``pub``) -> Subscribe encoder or VISS
notification entered (``wake``) -> left (``out``) -> the subscriber has it decoded (``recv``),
and what ran meanwhile: collections in any process, hub and client callbacks over 0.1 ms.

    .venv/bin/python tools/api_hop_probe.py --transports grpc,viss --rate 5000 --seconds 20 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from anycar.bench import api

HOPS = ("in", "pub", "wake", "out", "recv")


def steal() -> tuple[int, int]:
    """(steal ticks, all ticks) of the machine so far (/proc/stat)."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    return parts[7], sum(parts)


def load(folder: str) -> dict[int, Any]:
    out = {}
    for path in Path(folder).glob("*.json"):
        out[int(path.stem)] = json.loads(path.read_text())
    return out


def overlapping(events: list[list[Any]], t0: float, t1: float, least: float) -> list[list[Any]]:
    return [e for e in events if e[1] >= least and e[0] < t1 and e[0] + e[1] > t0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transports", default="grpc,viss")
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--slowest", type=float, default=1.0, help="per cent of messages shown")
    parser.add_argument("--hub-args", default="", help="extra `anycar hub` arguments")
    args = parser.parse_args()
    site = str(Path(__file__).with_name("hop_probe_site"))
    os.environ["PYTHONPATH"] = os.pathsep.join([site, os.environ.get("PYTHONPATH", "")])
    captured: dict[str, Any] = {}
    real_latencies = api._latencies

    def latencies(handed: Any, arrivals: Any) -> Any:
        captured["handed"], captured["arrivals"] = handed, arrivals
        return real_latencies(handed, arrivals)

    api._latencies = latencies  # type: ignore[assignment]
    hub_folder = tempfile.mkdtemp(prefix="hop-hub-")
    os.environ["HOP_PROBE_DIR"] = hub_folder
    hub, endpoints = api._start_hub()
    runs = []
    try:
        for round_ in range(1, args.rounds + 1):
            for transport in args.transports.split(","):
                folder = tempfile.mkdtemp(prefix="hop-clients-")
                os.environ["HOP_PROBE_DIR"] = folder
                s0 = steal()
                one = api._one(transport, endpoints, args.seconds, args.rate, 100, 100, 1.0, hub.pid)
                s1 = steal()
                runs.append((round_, transport, one, folder, dict(captured), (s1[0] - s0[0], s1[1] - s0[1])))
    finally:
        api._stop(hub)
    hub_data = load(hub_folder)[hub.pid]
    us = lambda t: round(t * 1e6)  # noqa: E731
    for round_, transport, one, folder, cap, (st, total) in runs:
        clients = load(folder)
        handle = {us(h[1]): h for h in hub_data["hops"]["handle"]}
        outs = {us(h[0]): h for h in hub_data["hops"]["encode" if transport == "grpc" else "notify"]}
        sent_at = dict(cap["handed"])
        rows = []
        for stamp, received, _n in cap["arrivals"]:
            at = sent_at.get(stamp) or sent_at.get(stamp + 1)
            h = handle.get(stamp) or handle.get(stamp + 1) or handle.get(stamp - 1)
            o = outs.get(stamp) or outs.get(stamp + 1) or outs.get(stamp - 1)
            if at is None or h is None or o is None:
                continue
            rows.append((received - at, at, h[2], h[3], o[1], o[2], received))
        rows.sort()
        events = {"hub gc": [[e[0], e[1], f"gen{e[2]}"] for e in hub_data["gc"]]}
        if os.environ.get("HOP_PROBE_GC_DETAIL"):  # each of the hub's collections in the run
            first, last = min(r[1] for r in rows), max(r[6] for r in rows)
            inside = [e for e in hub_data["gc"] if first <= e[0] <= last]
            print(
                json.dumps(
                    {
                        "hub collections [gen, ms, pending young, collected]": [
                            [e[2], round(e[1] * 1000, 3), e[4] if len(e) > 4 else None, e[3]] for e in inside
                        ]
                    }
                )
            )
        hub_cbs = [list(c) for c in hub_data["callbacks"]]
        window = (rows[0][1], rows[-1][6]) if rows else (0.0, 0.0)
        if rows:
            window = (min(r[1] for r in rows), max(r[6] for r in rows))
        events["hub gc"] = [e for e in events["hub gc"] if window[0] <= e[0] <= window[1]]
        for _pid, data in clients.items():
            names = " ".join(c[2] for c in data["callbacks"])
            role = "prov" if "_provider" in names else "sub"
            data["gc"] = [e for e in data["gc"] if window[0] <= e[0] <= window[1]]
            events[f"{role} gc"] = [[e[0], e[1], f"gen{e[2]}"] for e in data["gc"]]
            events[f"{role} cb"] = [list(c) for c in data["callbacks"]]

        def hops(r: tuple[float, ...]) -> list[float]:
            return [round((r[i + 2] - r[i + 1]) * 1000, 3) for i in range(5)]

        per_hop = list(zip(*[hops(r) for r in rows], strict=True))
        hub_gc = events["hub gc"]
        hit = [bool(overlapping(hub_gc, r[1], r[6], 0.0)) for r in rows]
        rest = sorted(r[0] for r, h in zip(rows, hit, strict=True) if not h)
        summary = {
            "round": round_,
            "transport": transport,
            "messages": len(rows),
            "p50_ms": one["p50_ms"],
            "p99_ms": one["p99_ms"],
            "steal_percent": round(100 * st / max(1, total), 2),
            "median_hops_ms": dict(zip(HOPS, [round(statistics.median(h), 3) for h in per_hop], strict=True)),
            "p99_hops_ms": dict(
                zip(HOPS, [round(sorted(h)[int(0.99 * (len(h) - 1))], 3) for h in per_hop], strict=True)
            ),
            "messages_with_a_hub_collection_in_flight": sum(hit),
            "p99_ms_of_the_others": round(1000 * rest[int(0.99 * (len(rest) - 1))], 3) if rest else None,
            "young_threshold": os.environ.get("HOP_PROBE_GC_YOUNG", "default"),
            "hub_collections": len(events["hub gc"]),
            "hub_gc_ms": round(1000 * sum(e[1] for e in events["hub gc"]), 2),
            "hub_gc_by_gen": [sum(1 for e in events["hub gc"] if e[2] == f"gen{g}") for g in range(3)],
            "client_collections": {
                k: len(v) for k, v in events.items() if k.endswith("gc") and k != "hub gc"
            },
        }
        print(json.dumps(summary), flush=True)
        n = max(1, round(len(rows) * args.slowest / 100))
        for r in rows[-n:]:
            t0, t1 = r[1], r[6]
            meanwhile = {}
            for name, ev in events.items():
                found = overlapping(ev, t0, t1, 0.0 if name.endswith("gc") else 1e-4)
                if found:
                    meanwhile[name] = [f"{e[2]}@{(e[0] - t0) * 1000:.2f}+{e[1] * 1000:.2f}" for e in found]
            found = overlapping(hub_cbs, t0, t1, 1e-4)
            if found:
                meanwhile["hub cb"] = [f"{e[2]}@{(e[0] - t0) * 1000:.2f}+{e[1] * 1000:.2f}" for e in found]
            print(
                json.dumps(
                    {"ms": round(r[0] * 1000, 3), "hops_ms": dict(zip(HOPS, hops(r), strict=True))}
                    | meanwhile
                ),
                flush=True,
            )
        shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(hub_folder, ignore_errors=True)


if __name__ == "__main__":
    main()
