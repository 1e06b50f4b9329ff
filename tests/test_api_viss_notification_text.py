"""A notification whose signals do not repeat (one object per update, built as one string) is the
same text as the grouping encoder gives, byte for byte; a batch that repeats a signal is grouped."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from anycar.api.viss.service import _grouped_notification_text, data_field, notification_text
from anycar.broker import Datapoint

VALUES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.lists(st.text(max_size=3) | st.booleans() | st.integers(), max_size=3)
)
PATHS = [f"Vehicle.Test{i}.Value" for i in range(8)] + ['Vehicle."Quoted".Path']


def _without_send_time(text: str) -> str:
    return text.rsplit(',"ts":"', 1)[0]  # the envelope's own ts is the time of sending


@given(
    st.lists(st.sampled_from(PATHS), min_size=1, max_size=9, unique=True),
    st.lists(st.tuples(VALUES, st.sampled_from([0.0, 1.5, 1_700_000_000.000001])), min_size=9, max_size=9),
)
def test_a_batch_without_repeats_is_the_grouped_text_byte_for_byte(
    paths: list[str], points: list[Any]
) -> None:
    batch = [Datapoint(path, value, ts) for path, (value, ts) in zip(paths, points, strict=False)]
    fast = notification_text("7", batch)
    assert _without_send_time(fast) == _without_send_time(_grouped_notification_text("7", batch))
    assert json.loads(fast)["data"] == json.loads(json.dumps(data_field(batch)))


def test_a_batch_that_repeats_a_signal_groups_its_updates() -> None:
    batch = [Datapoint("A.b", 1.5, 1.0), Datapoint("A.c", True, 1.0), Datapoint("A.b", 2.5, 2.0)]
    data = json.loads(notification_text("7", batch))["data"]
    assert data == json.loads(json.dumps(data_field(batch)))
    assert [d["value"] for d in data[0]["dp"]] == ["1.5", "2.5"]
