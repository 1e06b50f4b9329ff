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


NUMBERS = (
    st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.sampled_from([0.0, -0.0, 5e-324, 1e300, 23.399999618530273])
)
STAMPS = st.sampled_from([0.0, 1.5, 1_700_000_000.000001, 1_700_000_001.999_999_7, 2, 2.0])


def _as_json_dumps_gives(sid: str, batch: list[Datapoint]) -> str:
    """The simple path: the notification object, built as data, through ``json.dumps``."""
    envelope = {"action": "subscription", "subscriptionId": sid, "data": data_field(batch), "ts": ""}
    return _without_send_time(json.dumps(envelope, separators=(",", ":")))


@given(
    st.lists(
        st.sampled_from([*PATHS, "Vehicle.Ünïcode.Päth", "Vehicle.A"]), min_size=1, max_size=11, unique=True
    ),
    st.lists(NUMBERS | st.booleans() | st.none(), min_size=11, max_size=11),
    st.lists(STAMPS, min_size=1, max_size=3),
    st.text(max_size=4),
)
def test_a_message_of_numbers_at_one_stamp_is_what_json_dumps_gives(
    paths: list[str], values: list[Any], stamps: list[float], sid: str
) -> None:
    """The joined path (one stamp, every value an int or float) and the per-value loop that
    takes the rest (a bool, None, another stamp) give json.dumps's text of the same data."""
    batch = [
        Datapoint(p, v, stamps[i % len(stamps)]) for i, (p, v) in enumerate(zip(paths, values, strict=False))
    ]
    text = notification_text(sid, batch)
    assert _without_send_time(text) == _as_json_dumps_gives(sid, batch)
    assert text.endswith('Z"}') and json.loads(text)["action"] == "subscription"


def test_the_joined_path_is_taken_for_the_usual_message_and_not_for_a_bool() -> None:
    numbers = [Datapoint(f"Vehicle.N{i}", v, 1.25) for i, v in enumerate([1, 2.5, -0.0, 10**30])]
    assert _without_send_time(notification_text("s", numbers)) == _as_json_dumps_gives("s", numbers)
    with_bool = [*numbers, Datapoint("Vehicle.B", True, 1.25)]
    assert '"value":"true"' in notification_text("s", with_bool)
    assert _without_send_time(notification_text("s", with_bool)) == _as_json_dumps_gives("s", with_bool)
    one = [Datapoint("Vehicle.N0", 3, 1.25)]
    assert json.loads(notification_text("s", one))["data"] == {
        "path": "Vehicle.N0",
        "dp": {"value": "3", "ts": "1970-01-01T00:00:01.250000Z"},
    }
