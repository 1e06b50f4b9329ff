"""TLS when a certificate is configured (wss://, https://), and the API benchmark as a command."""

from __future__ import annotations

import json
import ssl

import httpx
from websockets.asyncio.client import connect

from anycar.bench import api as bench_api
from apis_support import hub_config, running_hub
from tls_support import self_signed


async def test_viss_and_rest_over_tls(tmp_path) -> None:
    cert, key = self_signed(tmp_path)
    cfg = hub_config()
    cfg.tls_cert, cfg.tls_key = cert, key
    async with running_hub(cfg) as hub:
        hub.broker.register_provider("test", ["Vehicle.Speed"]).publish("Vehicle.Speed", 4.0)
        assert hub.endpoints()["viss"].startswith("wss://") and hub.endpoints()["grpc"].startswith("grpcs://")
        trust = ssl.create_default_context(cafile=str(cert))
        async with connect(f"wss://127.0.0.1:{hub.viss_ws.port}", ssl=trust, subprotocols=["VISSv2"]) as ws:
            await ws.send(json.dumps({"action": "get", "path": "Vehicle.Speed", "requestId": "1"}))
            assert json.loads(await ws.recv())["data"]["dp"]["value"] == "4.0"
        async with httpx.AsyncClient(verify=trust) as http:
            reply = await http.get(f"https://127.0.0.1:{hub.http.port}/Vehicle/Speed")
            assert reply.json()["data"]["dp"]["value"] == "4.0"


def test_bench_api_runs_both_transports_in_separate_processes() -> None:
    """Not a timing test: the command works end to end, delivers what was published, and says
    for every run what was held back, dropped and lost."""
    result = bench_api.run(seconds=0.8, rates=(2_000,), batch=20, signals=20, warmup=0.2, low_rate_seconds=0)
    for transport in ("grpc", "viss"):
        runs = [r for r in result["runs"] if r["transport"] == transport]
        assert [r["offered_per_s"] for r in runs] == ["unpaced", 2_000]
        paced = runs[1]
        assert paced["published"] > 0 and paced["publish_errors"] == 0
        assert paced["received"] > 0 and paced["dropped_by_hub"] is not None
        assert paced["held_back"] is not None and paced["lost"] >= 0
        summary = result[transport]
        assert summary["saturation_per_s"] > 0 and set(summary["2000"]) >= {"p50_ms", "p99_ms", "held_back"}
