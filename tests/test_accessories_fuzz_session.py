"""Random frames sent on a live, commissioned accessory connection: each gets an answer or is
ignored, the connection survives, and what was accepted before is still there."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers_accessories import fit, make, running_hub, until

values = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
frames = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda t, extra: json.dumps({"type": t, **extra}),
        st.sampled_from(
            ["publish", "actuate", "subscribe", "command_result", "heartbeat", "hello", "bye2", "values"]
        ),
        st.dictionaries(
            st.sampled_from(["id", "values", "path", "value", "ok", "paths", "reason"]),
            values
            | st.dictionaries(
                st.sampled_from(["FanSpeed", "IsOscillating", "Nope", "9x"]), values, max_size=3
            ),
            max_size=4,
        ),
    ),
)


async def _session(batch: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with running_hub(Path(tmp) / "hub.sqlite3") as hub:
            fan = make("clip_fan", hub, "F-1")
            rec = await fit(hub, fan, "dash_mount_left")
            await fan.publish_checked(FanSpeed=42)
            for frame in batch:
                await fan.send_raw(frame)
            # still connected and served: a request after the noise gets its answer
            answer: dict[str, Any] = await fan.publish_checked(IsOscillating=True)
            assert answer["ok"] is True
            assert hub.manager.fitted["Fan1"].status == "RUNNING"
            fan_speed = hub.broker.get(rec.paths["FanSpeed"])
            assert fan_speed is not None
            assert fan_speed.value == 42 or any('"FanSpeed"' in f for f in batch)
            await until(lambda: hub.broker.get(rec.paths["IsOscillating"]).value is True)  # type: ignore[union-attr]
            await fan.stop()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames, min_size=1, max_size=25))
def test_random_frames_on_a_live_session(batch: list[str]) -> None:
    asyncio.run(_session(batch))
