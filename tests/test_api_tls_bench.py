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


def test_bench_api_summary_gives_ranges_over_rounds() -> None:
    def fake(rate: object, p99: float, held: int | None) -> dict[str, object]:
        return {
            "offered_per_s": rate,
            "signals_per_s": 1000 + p99,
            "p50_ms": 1.0,
            "p99_ms": p99,
            "max_ms": p99 * 2,
            "held_back": held,
            "dropped_by_hub": 0,
            "lost": 0,
            "p99_ms_halves": [p99, p99],
        }

    one = bench_api._summary([fake("unpaced", 9.0, None), fake(5000.0, 2.5, 0)])
    assert one["saturation_per_s"] == 1009.0 and one["5000"]["p99_ms"] == 2.5
    assert one["5000"]["p99_ms_halves"] == [2.5, 2.5]
    two = bench_api._summary(
        [fake("unpaced", 9.0, None), fake(5000.0, 2.5, 0), fake("unpaced", 30.0, None), fake(5000.0, 1.5, 7)]
    )
    assert two["saturation_per_s"] == [1009.0, 1030.0] and two["saturation"]["held_back"] is None
    assert two["5000"]["p99_ms"] == [1.5, 2.5] and two["5000"]["held_back"] == [0, 7]


def test_bench_api_latency_counts_from_the_hand_over_and_age_from_the_sample_time() -> None:
    """The provider notes when each message (named by its stamp) went to gRPC; a datapoint's
    latency runs from there, its age from the stamp itself; a stamp cut short by a microsecond
    still names its message, and a stamp of no message sent is counted, not guessed."""
    handed = [(1_000_000_000, 1000.0005), (1_000_000_010, 1000.0105)]
    arrivals = [(1_000_000_000, 1000.0015, 2), (1_000_000_009, 1000.0125, 1), (1_000_000_500, 1000.1, 3)]
    latency, age, unmatched = bench_api._latencies(handed, arrivals)
    assert [round(x * 1e6) for x in latency] == [1000, 1000, 2000]
    assert [round(x * 1e6) for x in age] == [1500, 1500, 12491]
    assert unmatched == 3


def test_viss_timestamps_keep_the_microsecond_a_provider_gave() -> None:
    from anycar.api.viss.messages import iso

    for micros in (0, 1, 123_456, 500_000, 999_999):
        for second in (1_764_590_184, 1_796_126_927):
            ts = second + micros * 1000 * 1e-9  # as the hub keeps kuksa.val.v2 seconds + nanos
            assert iso(ts).endswith(f".{micros:06d}Z"), (second, micros, iso(ts))
    assert iso(1_764_590_184.9999997).endswith(":25.000000Z")
