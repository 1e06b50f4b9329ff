"""The bench's bytes-per-vehicle-hour figure comes from the real sampler and encoder."""

from __future__ import annotations

from anycar.bench.uplink import default_campaign_hour
from anycar.wire import decode


def test_default_campaign_bytes_against_unbatched_json() -> None:
    messages, figures = default_campaign_hour(minutes=6)
    assert figures["values"] > 100 and figures["messages"] == len(messages)
    kinds = {decode(p)["kind"] for _, p in messages}  # every message is valid on the wire
    assert "telemetry" in kinds
    assert figures["unbatched_json_messages"] > figures["messages"]
    assert figures["ratio_json_to_batched"] > 2
