"""What protobuf (upb) operations cost on the hub's hot paths, per 100-entry message.

Each variant does one way of reading a ``PublishValuesRequest`` or building a
``SubscribeResponse`` (100 float datapoints). Run a variant under callgrind with 0 and with N
repetitions; the difference over N is its instruction count per message, which does not depend
on the machine's load (docs/performance.md, session 5, hub-path):

    valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python tools/protobuf_op_cost.py sub_template 0
    valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python tools/protobuf_op_cost.py sub_template 100
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from kuksa.val.v2 import types_pb2 as t2
from kuksa.val.v2 import val_pb2 as v2

PATHS = [f"Vehicle.X{i}.Speed" for i in range(100)]
VALUES = [float(i) + 0.5 for i in range(100)]
FIELD = "float"  # the Value field, a variable as in the hub (one per datatype)
STAMPED = t2.Datapoint()
STAMPED.timestamp.seconds, STAMPED.timestamp.nanos = 1_700_000_000, 1000
REQUEST = v2.PublishValuesRequest()
for _i, _v in enumerate(VALUES):
    _dp = REQUEST.data_points[_i + 1]
    _dp.timestamp.CopyFrom(STAMPED.timestamp)
    _dp.value.float = _v
COPY_FROM = t2.Datapoint.CopyFrom
WHICH_ONEOF = t2.Value.WhichOneof
TEMPLATE = t2.Datapoint()
TEMPLATE.CopyFrom(STAMPED)
TEMPLATE_VALUE = TEMPLATE.value


# -- building a SubscribeResponse ------------------------------------------------------------------
def sub_map_only() -> Any:
    """The map insert alone (what every build pays)."""
    message = v2.SubscribeResponse()
    entries = message.entries
    for path in PATHS:
        entries[path]
    return message


def sub_copy_then_set() -> Any:
    """Session 3's build: copy a stamped template, then write the value into the entry."""
    message = v2.SubscribeResponse()
    entries = message.entries
    for path, value in zip(PATHS, VALUES, strict=True):
        out = entries[path]
        out.CopyFrom(STAMPED)
        setattr(out.value, FIELD, value)
    return message


def sub_template() -> Any:
    """This session's: the value into a held template's Value, then one unbound copy."""
    message = v2.SubscribeResponse()
    entries = message.entries
    for path, value in zip(PATHS, VALUES, strict=True):
        out = entries[path]
        setattr(TEMPLATE_VALUE, FIELD, value)
        COPY_FROM(out, TEMPLATE)
    return message


# -- reading a PublishValuesRequest ---------------------------------------------------------------
def pub_lookup_only() -> None:
    points = REQUEST.data_points
    for sid in points:
        points[sid]


def pub_fields() -> None:
    """Session 4's read: value (WhichOneof, getattr) and the timestamp's two fields."""
    points = REQUEST.data_points
    for sid in points:
        dp = points[sid]
        raw = dp.value
        getattr(raw, raw.WhichOneof("typed_value"))
        ts = dp.timestamp
        _ = (ts.seconds, ts.nanos)


def pub_items() -> None:
    for _sid, dp in REQUEST.data_points.items():
        raw = dp.value
        getattr(raw, raw.WhichOneof("typed_value"))
        ts = dp.timestamp
        _ = (ts.seconds, ts.nanos)


def pub_list_fields() -> None:
    points = REQUEST.data_points
    for sid in points:
        ((_, ts), (_, raw)) = points[sid].ListFields()
        raw.ListFields()
        ts.ListFields()


def pub_no_timestamp() -> None:
    points = REQUEST.data_points
    for sid in points:
        raw = points[sid].value
        getattr(raw, WHICH_ONEOF(raw, "typed_value"))


def pub_unbound_compare() -> None:
    """This session's read: unbound WhichOneof, the timestamp compared before it is read."""
    points = REQUEST.data_points
    last = None
    for sid in points:
        dp = points[sid]
        raw = dp.value
        getattr(raw, WHICH_ONEOF(raw, "typed_value"))
        ts = dp.timestamp
        if last is None or ts != last:
            last = ts
            _ = (ts.seconds, ts.nanos)


VARIANTS: dict[str, Callable[[], Any]] = {
    f.__name__: f
    for f in (
        sub_map_only,
        sub_copy_then_set,
        sub_template,
        pub_lookup_only,
        pub_fields,
        pub_items,
        pub_list_fields,
        pub_no_timestamp,
        pub_unbound_compare,
    )
}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in VARIANTS:
        sys.exit(f"usage: protobuf_op_cost.py {{{','.join(VARIANTS)}}} REPETITIONS")
    run = VARIANTS[sys.argv[1]]
    for _ in range(int(sys.argv[2])):
        run()
