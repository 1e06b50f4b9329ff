"""The mapping between DBC signals and VSS: the Eclipse KUKSA CAN provider's overlay format.

A mapping file is a VSS overlay (flat ``.vspec``/``.yaml``, or nested ``.json`` like KUKSA's
``vss_dbc.json``) whose nodes carry the extended attributes ``dbc2vss`` (or its old synonym
``dbc``) and ``vss2dbc``::

    Vehicle.Speed:
      type: sensor
      datatype: float
      dbc2vss:
        signal: DI_uiSpeed
        interval_ms: 100
        on_change: true
        transform:
          math: "floor(x+0.5)"
        multiplexer: [{signal: PAGE, value: 1}]

Beyond KUKSA, two optional keys choose where the signal is read when several messages or buses
carry the same name: ``message`` (the DBC message name) and ``bus`` (a bus of the profile); and
``sign: SIGNAL`` names a sign bit of the same message (1 = negative), for DBCs that carry a
magnitude and its direction in two signals (steering angles, mostly).
Mapped nodes that carry ``type`` and ``datatype`` form an overlay; the adapter adds those that
are new to the catalog and never changes a standard signal (``anycar brand check`` reports a
mapping that disagrees with the catalog). Rules that are malformed are kept out and reported as problems, each
with its file and line, so one bad entry never disables a whole car. Unit names of older VSS
releases (``celsius`` in the KUKSA files for VSS 3.0 to 4.2) are read as VSS 6.0's
(``data/vss_unit_renames.yaml``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from anycar.errors import AnycarError, ConfigError
from anycar.model import Overlay, parse_overlay_text
from anycar.model.overlay import OverlayNode

Direction = Literal["dbc2vss", "vss2dbc"]
MAPPING_KEYS = ("dbc2vss", "dbc", "vss2dbc")
_DBC2VSS_KEYS = frozenset(
    {"signal", "interval_ms", "on_change", "transform", "multiplexer", "message", "bus", "sign"}
)
_VSS2DBC_KEYS = frozenset({"signal", "interval_ms", "on_change", "transform", "message", "bus"})
KUKSA_DEFAULT_INTERVAL_MS = 1000


@dataclass(slots=True)
class MappingRule:
    """One direction of one VSS signal's mapping."""

    path: str
    direction: Direction
    signal: str
    interval_ms: int = 0
    on_change: bool = False
    transform: AbcMapping[str, Any] | None = None
    multiplexer: tuple[tuple[str, int], ...] = ()
    sign: str | None = None
    message: str | None = None
    bus: str | None = None
    source: str = "<mapping>"
    line: int | None = None

    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source


@dataclass(slots=True)
class Mapping:
    rules: list[MappingRule] = field(default_factory=list)
    overlay: Overlay = field(default_factory=lambda: Overlay([]))
    declared: dict[str, OverlayNode] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    @property
    def dbc2vss(self) -> list[MappingRule]:
        return [r for r in self.rules if r.direction == "dbc2vss"]

    @property
    def vss2dbc(self) -> list[MappingRule]:
        return [r for r in self.rules if r.direction == "vss2dbc"]

    def paths(self, direction: Direction = "dbc2vss") -> list[str]:
        seen: dict[str, None] = {}
        for r in self.rules:
            if r.direction == direction:
                seen.setdefault(r.path)
        return list(seen)

    def merge(self, other: Mapping) -> Mapping:
        return Mapping(
            self.rules + other.rules,
            Overlay(self.overlay.nodes + other.overlay.nodes, self.overlay.source),
            {**self.declared, **other.declared},
            self.problems + other.problems,
            self.sources + other.sources,
        )


def load_mapping(path: str | Path) -> Mapping:
    """Read one mapping file; raises ``ConfigError`` only if the file itself is unreadable."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read mapping: {exc.strerror}") from None
    return parse_mapping_text(text, source=str(p))


def load_mappings(paths: Iterable[str | Path]) -> Mapping:
    out = Mapping()
    for p in paths:
        out = out.merge(load_mapping(p))
    return out


def parse_mapping_text(text: str, *, source: str = "<mapping>") -> Mapping:
    overlay = parse_overlay_text(text, source=source, extended_attributes=True)
    json_lines = _json_key_lines(text) if source.endswith(".json") else {}
    mapping = Mapping(sources=[source])
    new_nodes: list[OverlayNode] = []
    for node in overlay.nodes:
        line = node.line or json_lines.get(node.path)
        node.line = line
        has_rule = any(k in node.extra for k in MAPPING_KEYS)
        unit = node.attrs.get("unit")
        if has_rule and isinstance(unit, str):
            node.attrs["unit"] = unit_renames().get(unit, unit)
        if has_rule:
            mapping.declared[node.path] = node
        if has_rule and "type" in node.attrs and "datatype" in node.attrs:
            new_nodes.append(node)
        for key in MAPPING_KEYS:
            if key not in node.extra:
                continue
            direction: Direction = "vss2dbc" if key == "vss2dbc" else "dbc2vss"
            try:
                mapping.rules.append(_rule(node, direction, node.extra[key], source, line))
            except AnycarError as exc:
                mapping.problems.append(str(exc))
    mapping.overlay = Overlay(new_nodes, source)
    return mapping


@cache
def unit_renames() -> dict[str, str]:
    """Older VSS unit names and the VSS 6.0 unit each one is now (a data file of this package)."""
    text = resources.files("anycar.can").joinpath("data/vss_unit_renames.yaml").read_text(encoding="utf-8")
    table = yaml.safe_load(text) or {}
    return {str(k): str(v) for k, v in table.items()}


def _rule(node: OverlayNode, direction: Direction, spec: Any, source: str, line: int | None) -> MappingRule:
    where = f"{source}:{line}: {node.path}" if line else f"{source}: {node.path}"
    if not isinstance(spec, AbcMapping):
        raise ConfigError(f"{where}: '{direction}' must be a mapping with at least 'signal'")
    allowed = _DBC2VSS_KEYS if direction == "dbc2vss" else _VSS2DBC_KEYS
    unknown = set(spec) - allowed
    if unknown:
        raise ConfigError(
            f"{where}: {direction}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(allowed))})"
        )
    signal = spec.get("signal")
    if not isinstance(signal, str) or not signal:
        raise ConfigError(f"{where}: {direction}: 'signal' (the DBC signal name) is required")
    interval = spec.get("interval_ms")
    on_change = spec.get("on_change")
    if interval is not None and (isinstance(interval, bool) or not isinstance(interval, int) or interval < 0):
        raise ConfigError(f"{where}: {direction}: 'interval_ms' must be a non-negative integer")
    if on_change is not None and not isinstance(on_change, bool):
        raise ConfigError(f"{where}: {direction}: 'on_change' must be true or false")
    # KUKSA's defaults: nothing given means every 1000 ms; on_change alone means no interval.
    if interval is None:
        interval = 0 if on_change else KUKSA_DEFAULT_INTERVAL_MS
    transform = spec.get("transform")
    if transform is not None and not isinstance(transform, AbcMapping):
        raise ConfigError(f"{where}: {direction}: 'transform' must be a mapping with 'math' or 'mapping'")
    mux: list[tuple[str, int]] = []
    raw_mux = spec.get("multiplexer") or []
    if not isinstance(raw_mux, list):
        raise ConfigError(f"{where}: {direction}: 'multiplexer' must be a list of {{signal, value}}")
    for item in raw_mux:
        if (
            not isinstance(item, AbcMapping)
            or not isinstance(item.get("signal"), str)
            or isinstance(item.get("value"), bool)
            or not isinstance(item.get("value"), int)
        ):
            raise ConfigError(
                f"{where}: {direction}: each multiplexer entry needs 'signal' and integer 'value'"
            )
        mux.append((item["signal"], item["value"]))
    for key in ("message", "bus", "sign"):
        if spec.get(key) is not None and not isinstance(spec.get(key), str):
            raise ConfigError(f"{where}: {direction}: {key!r} must be a name")
    return MappingRule(
        path=node.path,
        direction=direction,
        signal=signal,
        interval_ms=interval,
        on_change=bool(on_change),
        transform=transform,
        multiplexer=tuple(mux),
        sign=spec.get("sign"),
        message=spec.get("message"),
        bus=spec.get("bus"),
        source=source,
        line=line,
    )


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"\s*:|[{}\[\]]|\n')


def _json_key_lines(text: str) -> dict[str, int]:
    """Line of each node in a nested (``children``) or flat VSS JSON file, for messages."""
    try:
        json.loads(text)
    except ValueError:
        return {}
    lines: dict[str, int] = {}
    stack: list[str | None] = []
    last_key: str | None = None
    line = 1
    for m in _TOKEN.finditer(text):
        tok = m.group(0)
        if tok == "\n":
            line += 1
            continue
        if tok == "{":
            stack.append(last_key)
            last_key = None
        elif tok == "[":
            stack.append(None)
            last_key = None
        elif tok in "}]":
            if stack:
                stack.pop()
            last_key = None
        else:
            key = json.loads(tok.rstrip()[:-1].rstrip())
            line += tok.count("\n")
            last_key = key
            parts = [k for k in stack if k is not None and k != "children"]
            if key != "children" and not any(k in MAPPING_KEYS for k in parts):
                path = ".".join([*parts, key])
                lines.setdefault(path, line)
            continue
        line += tok.count("\n")
    return lines
