"""A command's round trip through the whole system (fleet API -> PostgreSQL -> sender -> Mosquitto
-> hub -> SDK accessory -> result -> ingest), built on tests/test_fleet_commands_e2e.py's
``system()``: ``.venv/bin/python tools/bench_fleet_commands.py [N]``. Needs PostgreSQL and
Mosquitto on 127.0.0.1 as the tests do. Prints p50/p90/max in ms and the load average."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_fleet_commands_e2e import system

PACE_S = 0.6  # the hub takes 2 commands/s by default (uplink.commands.rate_per_s)


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with system(Path(folder)) as s:
            await s.until(lambda: s.get("/api/accessories"), lambda rows: len(rows) == 1, "the inventory")
            latencies = []
            for i in range(n):
                t0 = time.perf_counter()
                r = await s.post(
                    f"/api/vehicles/{s.vehicle}/commands",
                    {"actuate": {"Vehicle.Accessories.Cooler1.IsOn": i % 2 == 0}},
                )
                command = r.json()["id"]
                while (c := await s.get(f"/api/commands/{command}"))["status"] in ("pending", "sent"):
                    await asyncio.sleep(0.005)
                latencies.append((time.perf_counter() - t0) * 1000)
                if c["status"] != "accepted":
                    raise SystemExit(f"command {command}: {c['status']} {c['reason']}")
                await asyncio.sleep(PACE_S)
    latencies.sort()
    load = Path("/proc/loadavg").read_text().split()[0]
    print(
        f"n={n} p50={statistics.median(latencies):.0f} ms p90={latencies[int(n * 0.9) - 1]:.0f} ms "
        f"max={latencies[-1]:.0f} ms load={load}"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 40))
