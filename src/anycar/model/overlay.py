"""VSS overlays: files that add nodes to the tree or change existing ones at run time.

Three spellings load the same way, as vss-tools and the KUKSA tooling write them:
- ``.vspec`` / ``.yaml``: a mapping of dotted paths to node attributes (the vspec form);
- ``.json``: the same flat form, or the nested form vss-tools exports (``children``);
- a Python ``dict`` of either form.
An overlay is parsed into ``OverlayNode`` objects with the file and line each came from, so
that every error names where it is.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from anycar import decoding
from anycar.errors import OverlayError

STANDARD_KEYS = frozenset(
    {
        "type",
        "datatype",
        "description",
        "comment",
        "unit",
        "min",
        "max",
        "allowed",
        "default",
        "pattern",
        "arraysize",
        "deprecation",
        "instances",
        "uuid",
        "$file_name$",
        "fka",
        "const_uid",
    }
)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RANGE_INSTANCE = re.compile(r"^(\w+)\[(\d+),(\d+)\]$")
MAX_OVERLAY_NODES = 20_000


@dataclass(slots=True)
class OverlayNode:
    path: str
    attrs: dict[str, Any]
    source: str = "<overlay>"
    line: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source


@dataclass(slots=True)
class Overlay:
    nodes: list[OverlayNode]
    source: str = "<overlay>"


def load_overlay(path: str | Path, *, extended_attributes: Iterable[str] | bool = ()) -> Overlay:
    """Read an overlay file (.vspec, .yaml, .yml, .json)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise OverlayError(f"{p}: cannot read overlay: {exc.strerror}") from None
    return parse_overlay_text(text, source=str(p), extended_attributes=extended_attributes)


def parse_overlay_text(
    text: str, *, source: str = "<overlay>", extended_attributes: Iterable[str] | bool = ()
) -> Overlay:
    lines: dict[str, int] = {}
    if source.endswith(".json"):
        try:
            data = decoding.load_document(text, source)
        except decoding.DecodingError as exc:
            raise OverlayError(str(exc)) from None
    else:
        try:
            with decoding.yaml_errors(text, source):
                root = yaml.compose(text, Loader=yaml.SafeLoader)
                data = yaml.safe_load(text)
        except decoding.DecodingError as exc:
            raise OverlayError(str(exc)) from None
        if isinstance(root, yaml.MappingNode):
            for key_node, _ in root.value:
                lines[str(key_node.value)] = key_node.start_mark.line + 1
    return parse_overlay(data, source=source, lines=lines, extended_attributes=extended_attributes)


def parse_overlay(
    data: Any,
    *,
    source: str = "<overlay>",
    lines: Mapping[str, int] | None = None,
    extended_attributes: Iterable[str] | bool = (),
) -> Overlay:
    """Turn an overlay document (flat or nested) into checked nodes; instances are expanded."""
    if data is None:
        return Overlay([], source)
    if not isinstance(data, Mapping):
        raise OverlayError(f"{source}: an overlay is a mapping of paths to nodes, got {type(data).__name__}")
    flat = _flatten(data, source)
    if len(flat) > MAX_OVERLAY_NODES:
        raise OverlayError(f"{source}: {len(flat)} nodes exceed the limit of {MAX_OVERLAY_NODES}")
    allow_all = extended_attributes is True
    extended = frozenset() if isinstance(extended_attributes, bool) else frozenset(extended_attributes)
    nodes: list[OverlayNode] = []
    for path, attrs in flat.items():
        line = (lines or {}).get(path)
        where = f"{source}:{line}" if line else source
        if not isinstance(path, str):
            raise OverlayError(f"{where}: node name {path!r} is not a string")
        for seg in path.split("."):
            if not _NAME.match(seg):
                raise OverlayError(f"{where}: {path}: segment {seg!r} is not a VSS name (letters, digits, _)")
        if attrs is None:
            attrs = {}
        if not isinstance(attrs, Mapping):
            raise OverlayError(f"{where}: {path}: node attributes must be a mapping")
        std: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in attrs.items():
            if key in STANDARD_KEYS:
                std[key] = value
            elif allow_all or key in extended:
                extra[key] = value
            else:
                raise OverlayError(
                    f"{where}: {path}: unknown attribute {key!r} "
                    f"(standard ones: {', '.join(sorted(STANDARD_KEYS - {'$file_name$'}))})"
                )
        nodes.append(OverlayNode(path, std, source, line, extra))
    return Overlay(_expand_instances(nodes), source)


def _flatten(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Accept both the flat vspec form and vss-tools' nested JSON form."""
    out: dict[str, Any] = {}

    def walk(prefix: str, node: Mapping[str, Any]) -> None:
        attrs = {k: v for k, v in node.items() if k != "children"}
        out[prefix] = attrs
        children = node.get("children") or {}
        if not isinstance(children, Mapping):
            raise OverlayError(f"{source}: {prefix}: 'children' must be a mapping")
        for name, child in children.items():
            if not isinstance(child, Mapping):
                raise OverlayError(f"{source}: {prefix}.{name}: node must be a mapping")
            walk(f"{prefix}.{name}", child)

    for key, node in data.items():
        if isinstance(node, Mapping) and "children" in node:
            walk(str(key), node)
        else:
            out[key] = node
    return out


def instance_names(spec: Any, where: str) -> list[list[str]]:
    """Expand a VSS ``instances`` value into a list of dimensions, each a list of names."""
    if isinstance(spec, str):
        spec = [spec]
    if not isinstance(spec, list) or not spec:
        raise OverlayError(f"{where}: 'instances' must be a name, a range like Row[1,2], or a list")
    # A list of lists is several dimensions; a flat list is one dimension unless it holds ranges.
    if all(isinstance(s, list) for s in spec):
        return [_dimension(s, where) for s in spec]
    dims: list[list[str]] = []
    plain: list[str] = []
    for item in spec:
        if isinstance(item, list):
            dims.append(_dimension(item, where))
        elif isinstance(item, str) and _RANGE_INSTANCE.match(item):
            dims.append(_dimension([item], where))
        elif isinstance(item, str):
            plain.append(item)
        else:
            raise OverlayError(f"{where}: instance {item!r} is not a name")
    if plain:
        dims.append(plain)
    return dims


def _dimension(items: list[Any], where: str) -> list[str]:
    names: list[str] = []
    for item in items:
        m = _RANGE_INSTANCE.match(item) if isinstance(item, str) else None
        if m:
            lo, hi = int(m.group(2)), int(m.group(3))
            if hi < lo or hi - lo > 1000:
                raise OverlayError(f"{where}: bad instance range {item!r}")
            names.extend(f"{m.group(1)}{i}" for i in range(lo, hi + 1))
        elif isinstance(item, str) and _NAME.match(item):
            names.append(item)
        else:
            raise OverlayError(f"{where}: instance {item!r} is not a VSS name or range")
    return names


def _expand_instances(nodes: list[OverlayNode]) -> list[OverlayNode]:
    """Copy the children of a branch with ``instances`` under each instance (vss-tools' rule)."""
    instanced = {n.path: n for n in nodes if "instances" in n.attrs}
    if not instanced:
        return nodes
    out: list[OverlayNode] = []
    for node in nodes:
        owner = next(
            (p for p in sorted(instanced, key=len, reverse=True) if node.path.startswith(p + ".")),
            None,
        )
        if owner is None:
            if node.path in instanced:
                attrs = {k: v for k, v in node.attrs.items() if k != "instances"}
                out.append(OverlayNode(node.path, attrs, node.source, node.line, node.extra))
                dims = instance_names(node.attrs["instances"], f"{node.where()}: {node.path}")
                for combo in itertools.product(*dims):
                    for depth in range(1, len(combo) + 1):
                        sub = ".".join(combo[:depth])
                        out.append(
                            OverlayNode(
                                f"{node.path}.{sub}",
                                {"type": "branch", "description": f"{sub} instance"},
                                node.source,
                                node.line,
                            )
                        )
            else:
                out.append(node)
            continue
        dims = instance_names(instanced[owner].attrs["instances"], node.where())
        rest = node.path[len(owner) + 1 :]
        for combo in itertools.product(*dims):
            out.append(
                OverlayNode(
                    f"{owner}.{'.'.join(combo)}.{rest}",
                    dict(node.attrs),
                    node.source,
                    node.line,
                    dict(node.extra),
                )
            )
    seen: dict[str, OverlayNode] = {}
    for node in out:
        seen.setdefault(node.path, node)
    return list(seen.values())
