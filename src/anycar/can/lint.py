"""Check a mapping against its DBC files and the VSS catalog, before any frame arrives.

Every finding names the mapping file and line, and the DBC file and line where it helps:
unknown VSS paths or DBC signals, datatype disagreements, DBC ranges wider than the VSS signal
allows, units that differ without a transform, table values VSS would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from anycar.can.decoder import choice_key
from anycar.can.mapping import Mapping, MappingRule
from anycar.can.network import CanNetwork, SignalRef
from anycar.can.transform import compile_transform
from anycar.errors import AnycarError
from anycar.model import Catalog
from anycar.model.datatypes import INTEGER_RANGES, ValueRejected
from anycar.model.signal import NodeType, Signal

_UNIT_ALIASES = {
    "kph": "km/h",
    "kmh": "km/h",
    "km/h": "km/h",
    "deg": "degrees",
    "degree": "degrees",
    "degrees": "degrees",
    "°": "degrees",
    "%": "percent",
    "percent": "percent",
    "degc": "celsius",
    "°c": "celsius",
    "c": "celsius",
    "celsius": "celsius",
    "rpm": "rpm",
    "1/min": "rpm",
    "v": "v",
    "a": "a",
    "m": "m",
    "km": "km",
    "deg/s": "degrees/s",
    "degrees/s": "degrees/s",
    "m/s^2": "m/s^2",
    "m/s2": "m/s^2",
    "kpa": "kpa",
    "bar": "bar",
    "nm": "nm",
    "kw": "kw",
    "w": "w",
    "l": "l",
    "liter": "l",
    "litre": "l",
    "unit_kilometerperhour": "km/h",
    "unit_liter": "l",
    "unit_percent": "percent",
    "unit_degrecelsi": "celsius",
    "unit_minutinver": "rpm",
    "unit_volt": "v",
    "unit_amper": "a",
    "unit_kilometer": "km",
    "unit_meter": "m",
    "unit_degreofarc": "degrees",
    "unit_bar": "bar",
    "unit_newtometer": "nm",
}


@dataclass(slots=True, frozen=True)
class Finding:
    level: str  # "error", "warning" or "note"
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.level}: {self.message}"


def _unit(u: str | None) -> str | None:
    if not u:
        return None
    return _UNIT_ALIASES.get(u.strip().lower(), u.strip().lower())


def lint_mapping(network: CanNetwork, mapping: Mapping, catalog: Catalog) -> list[Finding]:
    out: list[Finding] = []
    for problem in mapping.problems:
        where, _, msg = problem.partition(": ")
        out.append(Finding("error", where, msg))
    declared_new = {n.path: n for n in mapping.overlay.nodes}
    for rule in mapping.rules:
        out.extend(_lint_rule(rule, network, mapping, catalog, declared_new))
    return out


def _declared_signal(path: str, attrs: dict[str, Any]) -> Signal | None:
    try:
        return Signal(
            path=path,
            id=-1,
            type=NodeType(attrs.get("type", "sensor")),
            datatype=attrs["datatype"],
            unit=attrs.get("unit"),
            min=attrs.get("min"),
            max=attrs.get("max"),
            allowed=tuple(attrs["allowed"]) if attrs.get("allowed") else None,
        )
    except (KeyError, ValueError, TypeError):
        return None


def _lint_rule(
    rule: MappingRule,
    network: CanNetwork,
    mapping: Mapping,
    catalog: Catalog,
    declared_new: dict[str, Any],
) -> list[Finding]:
    where = rule.where()
    found: list[Finding] = []
    sig = catalog.find(rule.path)
    node = mapping.declared.get(rule.path)
    if sig is None:
        if rule.path in declared_new:
            sig = _declared_signal(rule.path, declared_new[rule.path].attrs)
        if sig is None:
            return [
                Finding(
                    "error", where, f"{rule.path}: unknown VSS path {catalog._suggest(rule.path)}".strip()
                )
            ]
    elif node is not None:
        for key in ("datatype", "type", "unit"):
            declared = node.attrs.get(key)
            actual = getattr(sig, key)
            if declared is not None and str(declared) != str(actual):
                found.append(
                    Finding(
                        "error",
                        where,
                        f"{rule.path}: mapping declares {key} {declared!r}, VSS has {actual!r}",
                    )
                )
    if rule.bus is not None and network.bus(rule.bus) is None:
        found.append(Finding("error", where, f"{rule.path}: unknown bus {rule.bus!r} ({network.bus_names})"))
        return found
    refs = network.find(rule.signal, bus=rule.bus, message=rule.message)
    if not refs:
        found.append(
            Finding(
                "error", where, f"{rule.path}: DBC signal {rule.signal!r} is not in the profile's DBC files"
            )
        )
        return found
    if rule.direction == "vss2dbc" and sig.type is not NodeType.ACTUATOR:
        found.append(
            Finding(
                "note",
                where,
                f"{rule.path}: vss2dbc on a {sig.type} (KUKSA maps only actuators; this one is for simulators)",
            )
        )
    for ref in refs:
        found.extend(_lint_ref(rule, ref, sig, where))
    return found


def _lint_ref(rule: MappingRule, ref: SignalRef, sig: Signal, where: str) -> list[Finding]:
    out: list[Finding] = []
    dbc_where = f"{ref.dbc.source}:{ref.line()}" if ref.line() else ref.dbc.source
    s = ref.signal
    label = f"{rule.path} <- {ref.message.name}.{s.name} ({dbc_where})"
    for name, _ in rule.multiplexer:
        if not any(x.name == name for x in ref.message.signals):
            out.append(Finding("error", where, f"{label}: multiplexer signal {name!r} is not in the message"))
    if rule.sign is not None and not any(x.name == rule.sign for x in ref.message.signals):
        out.append(Finding("error", where, f"{label}: sign signal {rule.sign!r} is not in the message"))
    try:
        if rule.direction == "dbc2vss":
            transform = compile_transform(rule.transform, choice_key(ref, where), where)
        else:
            transform = compile_transform(rule.transform, lambda v: v, where)
    except AnycarError as exc:
        out.append(Finding("error", where, f"{label}: {exc}"))
        return out
    spec = rule.transform or {}
    if rule.direction == "dbc2vss":
        if "mapping" in spec:
            for item in spec["mapping"]:
                try:
                    sig.validate(item["to"])
                except ValueRejected as exc:
                    out.append(Finding("error", where, f"{label}: mapping 'to' {item['to']!r}: {exc}"))
        elif transform is None:
            out.extend(_lint_plain(rule, ref, sig, where, label))
    else:
        if "mapping" in spec:
            names = {str(v) for v in (s.choices or {}).values()}
            for item in spec["mapping"]:
                to = item["to"]
                if isinstance(to, str) and to not in names:
                    out.append(Finding("error", where, f"{label}: 'to' {to!r} is not in the DBC value table"))
    return out


def _lint_plain(rule: MappingRule, ref: SignalRef, sig: Signal, where: str, label: str) -> list[Finding]:
    """A value that goes to VSS as it is: its type, range and unit must already fit."""
    out: list[Finding] = []
    s = ref.signal
    dt = sig.datatype
    if dt == "boolean" and s.length > 1 and not s.choices:
        out.append(Finding("warning", where, f"{label}: {s.length}-bit signal to boolean; only 0/1 pass"))
    if dt == "boolean" and s.choices and set(int(k) for k in s.choices) - {0, 1}:
        out.append(Finding("warning", where, f"{label}: value table has values beyond 0/1; add a mapping"))
    if dt == "string" and not s.choices:
        out.append(Finding("warning", where, f"{label}: numeric signal to string without a value table"))
    if dt.endswith("[]"):
        out.append(Finding("error", where, f"{label}: array datatype {dt} cannot come from one DBC signal"))
    if dt in INTEGER_RANGES and (isinstance(s.scale, float) and not float(s.scale).is_integer()):
        out.append(Finding("warning", where, f"{label}: scale {s.scale} to {dt}; values are rounded"))
    lo, hi = s.minimum, s.maximum
    if lo is not None and hi is not None and lo < hi and dt not in ("boolean", "string"):
        vlo = sig.min if sig.min is not None else INTEGER_RANGES.get(dt, (None, None))[0]
        vhi = sig.max if sig.max is not None else INTEGER_RANGES.get(dt, (None, None))[1]
        if (vlo is not None and lo < vlo) or (vhi is not None and hi > vhi):
            out.append(
                Finding(
                    "warning",
                    where,
                    f"{label}: DBC range [{lo}|{hi}] exceeds VSS range [{vlo}|{vhi}]; values outside are refused",
                )
            )
    du, vu = _unit(s.unit), _unit(sig.unit)
    if du and vu and du != vu:
        out.append(
            Finding(
                "warning",
                where,
                f"{label}: unit {s.unit!r} differs from VSS {sig.unit!r}; add a math transform",
            )
        )
    return out
