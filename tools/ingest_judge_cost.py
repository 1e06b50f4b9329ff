"""What one piece of the ingest worker's loop outside the commit costs a message, for callgrind.

Why: on 2 shared cores timings move with the other helpers' load; instruction counts do not. Run
this under ``valgrind --tool=callgrind`` once with ``--part none`` and once with the part, and
the difference over ``--messages`` is the part's instructions a message (ingest-judge, session 7):

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python tools/ingest_judge_cost.py --part judge

The messages are the bench generator's (``fleet_procs.Template``: telemetry of 10 values, 200
vehicles), cut as MQTT PUBLISH packets, judged against a SQLite store that knows the vehicles
(looked up once before, as a batch's prefetch does), after ``tune_gc()`` as in a worker.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

PARTS = ("none", "cut", "loads", "fastcheck", "decode", "judge", "batch")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=PARTS, default="judge")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5, help="passes over the messages")
    parser.add_argument("--vehicles", type=int, default=200)
    parser.add_argument("--time", action="store_true", help="print CPU µs a message too (not for callgrind)")
    args = parser.parse_args()

    import cbor2

    from anycar.bench.fleet import database, register
    from anycar.bench.fleet_procs import Template, vehicle_name
    from anycar.fleet import store as store_module
    from anycar.fleet.db import make_engine
    from anycar.fleet.ingest import IngestWorker, judge, tune_gc
    from anycar.fleet.mqttin import Inbound, MqttIn, mqtt_string, varint
    from anycar.fleet.store import Accepted, Store
    from anycar.wire import decode
    from anycar.wire.fastcheck import telemetry_ok

    folder = Path(tempfile.mkdtemp(prefix="anycar-judge-cost-"))
    try:
        with database("sqlite", folder) as url:
            engine = make_engine(url)
            register(engine, "J", args.vehicles)
            t = time.time()
            templates = [
                Template(vehicle_name("J", i), f"{i:016x}", 48.0 + i / 1e4) for i in range(args.vehicles)
            ]
            wire: list[tuple[str, bytes]] = []
            for n in range(args.messages):
                tpl = templates[n % args.vehicles]
                wire.append(
                    (f"anycar/v1/{tpl.vehicle}/telemetry", tpl.payload(n // args.vehicles + 1, t + n / 1e4))
                )
            stream = b"".join(
                b"\x32" + varint(len(body)) + body
                for n, (name, payload) in enumerate(wire)
                for body in [mqtt_string(name) + (n % 65535 + 1).to_bytes(2, "big") + b"\x00" + payload]
            )
            # the vehicles stay cached through the run: under valgrind a run outlasts CACHE_S, and a
            # refresh (SQLAlchemy, ~10^5 instructions a vehicle) would land in some runs' counts
            store_module.CACHE_S = float("inf")
            store = Store(engine)
            store.prefetch({tpl.vehicle for tpl in templates})
            now = time.time()
            inbound = [Inbound(name, payload, 1, 1) for name, payload in wire]
            docs = [cbor2.loads(p) for _, p in wire]
            worker = IngestWorker(store)
            for name, payload in wire:  # warm: topic memory, known path lists and ids
                judge(store, name, payload, now)
            tune_gc()
            c0 = time.process_time()
            for _ in range(args.repeat):
                if args.part == "cut":
                    client = MqttIn("127.0.0.1", 1, "cost")  # never connected: fed the bytes
                    for i in range(0, len(stream), 4096):  # ~16 packets a read, as in the bench
                        client._received(stream[i : i + 4096])
                    if len(client.take(args.messages)) != args.messages:
                        raise RuntimeError("cut: lost packets")
                elif args.part == "loads":
                    for _, payload in wire:
                        cbor2.loads(payload)
                elif args.part == "fastcheck":
                    for doc in docs:
                        telemetry_ok(doc)
                elif args.part == "decode":
                    for _, payload in wire:
                        decode(payload)
                elif args.part == "judge":
                    for name, payload in wire:
                        if not isinstance(judge(store, name, payload, now), Accepted):
                            raise RuntimeError("judge: a message refused")
                elif args.part == "batch":  # the worker's _judge over batches of 500 (prefetch in it)
                    import asyncio

                    for i in range(0, len(inbound), 500):
                        asyncio.run(worker._judge(inbound[i : i + 500]))
            cpu = time.process_time() - c0
            engine.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.time:
        print(
            f"{args.part}: {cpu / (args.messages * args.repeat) * 1e6:.2f} µs CPU a message", file=sys.stderr
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
