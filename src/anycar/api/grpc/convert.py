"""Values, datapoints and metadata between the broker and the kuksa.val protobufs (v1 and v2)."""

from __future__ import annotations

from typing import Any

from kuksa.val.v1 import types_pb2 as t1
from kuksa.val.v2 import types_pb2 as t2

from anycar.errors import InvalidValue
from anycar.model.datatypes import element_type, is_array
from anycar.model.signal import NodeType, Signal

# VSS datatype -> (v2 Value oneof field, DataType enum name suffix)
_FIELD = {
    "string": "string",
    "boolean": "bool",
    "int8": "int32",
    "int16": "int32",
    "int32": "int32",
    "int64": "int64",
    "uint8": "uint32",
    "uint16": "uint32",
    "uint32": "uint32",
    "uint64": "uint64",
    "float": "float",
    "double": "double",
}
_ARRAY_FIELD = {k: v + "_array" for k, v in _FIELD.items()}
_DATATYPE_V2 = {
    dt: getattr(t2, f"DATA_TYPE_{'BOOLEAN' if dt == 'boolean' else dt.upper()}") for dt in _FIELD
} | {
    dt + "[]": getattr(t2, f"DATA_TYPE_{'BOOLEAN' if dt == 'boolean' else dt.upper()}_ARRAY") for dt in _FIELD
}
_DATATYPE_V1 = {
    dt: getattr(t1, f"DATA_TYPE_{'BOOLEAN' if dt == 'boolean' else dt.upper()}") for dt in _FIELD
} | {
    dt + "[]": getattr(t1, f"DATA_TYPE_{'BOOLEAN' if dt == 'boolean' else dt.upper()}_ARRAY") for dt in _FIELD
}
_ENTRY_V2 = {
    NodeType.SENSOR: t2.ENTRY_TYPE_SENSOR,
    NodeType.ACTUATOR: t2.ENTRY_TYPE_ACTUATOR,
    NodeType.ATTRIBUTE: t2.ENTRY_TYPE_ATTRIBUTE,
}
_ENTRY_V1 = {
    NodeType.SENSOR: t1.ENTRY_TYPE_SENSOR,
    NodeType.ACTUATOR: t1.ENTRY_TYPE_ACTUATOR,
    NodeType.ATTRIBUTE: t1.ENTRY_TYPE_ATTRIBUTE,
}


# VSS datatype -> (Value oneof field, is an array): looked up on every value, so precomputed
VALUE_SPEC: dict[str, tuple[str, bool]] = {dt: (f, False) for dt, f in _FIELD.items()} | {
    dt + "[]": (f, True) for dt, f in _ARRAY_FIELD.items()
}


def field_for(datatype: str) -> str:
    return VALUE_SPEC[datatype][0]


def value_spec(datatype: str) -> tuple[str, bool]:
    """(``Value`` oneof field, is an array) for a VSS datatype."""
    return VALUE_SPEC[datatype]


# -- v2 -------------------------------------------------------------------------------------------
def value_to_v2(sig: Signal, value: Any) -> t2.Value:
    out = t2.Value()
    if value is None:
        return out
    name = field_for(sig.datatype)
    if is_array(sig.datatype):
        getattr(out, name).values.extend(value)
    else:
        setattr(out, name, value)
    return out


def fill_datapoint_v2(dp: t2.Datapoint, sig: Signal, value: Any, timestamp: float) -> None:
    """Fill ``dp`` in place (cheaper than building and copying a message); the hot path."""
    stamp = dp.timestamp
    seconds = int(timestamp)
    stamp.seconds = seconds
    stamp.nanos = int((timestamp - seconds) * 1e9)
    if value is None:
        return
    name, array = VALUE_SPEC[sig.datatype]
    if array:
        getattr(dp.value, name).values.extend(value)
    else:
        setattr(dp.value, name, value)


def value_from_v2(sig: Signal, value: t2.Value) -> Any:
    """The Python value of a v2 ``Value``; the broker still validates it against ``sig``."""
    which = value.WhichOneof("typed_value")
    if which is None:
        return None
    expected, array = VALUE_SPEC[sig.datatype]
    if which == expected and not array:
        return getattr(value, which)
    raw = getattr(value, which)
    if which.endswith("_array"):
        raw = list(raw.values)
    if which != expected and not _compatible(which, expected):
        raise InvalidValue(sig.path, f"expected a {sig.datatype} value ({expected}), got {which}")
    return raw


def _compatible(got: str, expected: str) -> bool:
    numeric = {"int32", "int64", "uint32", "uint64", "float", "double"}
    g, e = got.removesuffix("_array"), expected.removesuffix("_array")
    return got.endswith("_array") == expected.endswith("_array") and g in numeric and e in numeric


def metadata_v2(sig: Signal) -> t2.Metadata:
    md = t2.Metadata(
        path=sig.path,
        id=sig.id,
        data_type=_DATATYPE_V2[sig.datatype],
        entry_type=_ENTRY_V2[sig.type],
        description=sig.description or "",
        comment=sig.comment or "",
        deprecation=sig.deprecation or "",
        unit=sig.unit or "",
    )
    if sig.min is not None:
        md.min.CopyFrom(_bound_v2(sig, sig.min))
    if sig.max is not None:
        md.max.CopyFrom(_bound_v2(sig, sig.max))
    if sig.allowed:
        name = _ARRAY_FIELD[element_type(sig.datatype)]
        getattr(md.allowed_values, name).values.extend(sig.allowed)
    return md


def _bound_v2(sig: Signal, bound: float) -> t2.Value:
    name = _FIELD[element_type(sig.datatype)]
    out = t2.Value()
    setattr(out, name, bound if name in ("float", "double") else int(bound))
    return out


# -- v1 -------------------------------------------------------------------------------------------
def datapoint_v1(sig: Signal, value: Any, timestamp: float | None) -> t1.Datapoint:
    dp = t1.Datapoint()
    if timestamp is not None:
        dp.timestamp.FromNanoseconds(int(timestamp * 1e9))
    if value is None:
        return dp
    name = field_for(sig.datatype)
    if is_array(sig.datatype):
        getattr(dp, name).values.extend(value)
    else:
        setattr(dp, name, value)
    return dp


def value_from_v1(sig: Signal, dp: t1.Datapoint) -> Any:
    which = dp.WhichOneof("value")
    if which is None:
        return None
    raw = getattr(dp, which)
    if which.endswith("_array"):
        raw = list(raw.values)
    if which == "string" and sig.datatype != "string":
        from anycar.model.datatypes import ValueRejected, parse_text

        try:
            return parse_text(sig.datatype, raw)
        except ValueRejected as exc:
            raise InvalidValue(sig.path, str(exc)) from None
    return raw


def metadata_v1(sig: Signal) -> t1.Metadata:
    md = t1.Metadata(
        data_type=_DATATYPE_V1[sig.datatype],
        entry_type=_ENTRY_V1[sig.type],
        description=sig.description or "",
        comment=sig.comment or "",
        deprecation=sig.deprecation or "",
        unit=sig.unit or "",
    )
    base = element_type(sig.datatype)
    if sig.min is not None or sig.max is not None or sig.allowed:
        if base == "string":
            md.value_restriction.string.allowed_values.extend(str(a) for a in sig.allowed or ())
        elif base in ("float", "double"):
            r = md.value_restriction.floating_point
            _restrict(r, sig, float)
        elif base.startswith("uint"):
            _restrict(md.value_restriction.unsigned, sig, int)
        elif base.startswith("int"):
            _restrict(md.value_restriction.signed, sig, int)
    if sig.type is NodeType.ACTUATOR:
        md.actuator.SetInParent()
    elif sig.type is NodeType.SENSOR:
        md.sensor.SetInParent()
    else:
        md.attribute.SetInParent()
    return md


def _restrict(r: Any, sig: Signal, cast: type) -> None:
    if sig.min is not None:
        r.min = cast(sig.min)
    if sig.max is not None:
        r.max = cast(sig.max)
    if sig.allowed:
        r.allowed_values.extend(cast(a) for a in sig.allowed)
