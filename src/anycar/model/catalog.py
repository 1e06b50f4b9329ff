"""The catalog: every node of the VSS tree, found by path, id or wildcard pattern.

It starts from the VSS 6.0 release compiled with vss-tools (``data/vss-6.0.json``, MPL-2.0)
and grows by overlays at run time (brand profiles, accessories).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from importlib import resources
from typing import Any

import yaml

from anycar.errors import OverlayError, UnknownPath
from anycar.model import paths
from anycar.model.datatypes import DATATYPES, ValueRejected, compile_validator, is_numeric
from anycar.model.overlay import Overlay, OverlayNode
from anycar.model.signal import Branch, NodeType, Signal

VSS_VERSION = "6.0"
CatalogListener = Callable[[list[Signal], list[Signal]], None]


@cache
def _default_tree() -> dict[str, Any]:
    text = resources.files("anycar.model").joinpath("data/vss-6.0.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def known_units() -> frozenset[str]:
    text = resources.files("anycar.model").joinpath("data/units.yaml").read_text("utf-8")
    return frozenset(yaml.safe_load(text))


class Catalog:
    """All branches and signals, with look-up by path, id and pattern."""

    def __init__(self) -> None:
        self._signals: dict[str, Signal] = {}
        self._by_id: list[Signal] = []
        # how many overlays were applied: a cache of anything derived from signals (a datatype,
        # a key) is stale once this moves
        self.generation = 0
        self._branches: dict[str, Branch] = {}
        self._listeners: list[CatalogListener] = []
        self._match_cache: dict[str, list[Signal]] = {}
        self._segments: list[tuple[str, ...]] = []  # each signal's path split, by id

    # -- building -------------------------------------------------------------------------
    @classmethod
    def load_default(cls) -> Catalog:
        """A fresh catalog of the standard VSS 6.0 tree (1,267 leaves)."""
        cat = cls()
        for name, node in _default_tree().items():
            cat._load_nested(name, node)
        return cat

    def _load_nested(self, path: str, node: dict[str, Any]) -> None:
        kind = NodeType(node["type"])
        if kind is NodeType.BRANCH:
            self._branches[path] = Branch(path, node.get("description", ""), node.get("comment"))
            for name, child in node.get("children", {}).items():
                self._load_nested(f"{path}.{name}", child)
            return
        self._add_signal(path, kind, node)

    def _add_signal(self, path: str, kind: NodeType, attrs: dict[str, Any]) -> Signal:
        allowed = attrs.get("allowed")
        sig = Signal(
            path=path,
            id=len(self._by_id),
            type=kind,
            datatype=attrs["datatype"],
            description=attrs.get("description", ""),
            unit=attrs.get("unit"),
            min=attrs.get("min"),
            max=attrs.get("max"),
            allowed=tuple(allowed) if allowed is not None else None,
            pattern=attrs.get("pattern"),
            arraysize=attrs.get("arraysize"),
            default=attrs.get("default"),
            comment=attrs.get("comment"),
            deprecation=attrs.get("deprecation"),
        )
        self._signals[path] = sig
        self._by_id.append(sig)
        return sig

    # -- look-up ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._signals)

    def __contains__(self, path: object) -> bool:
        return path in self._signals

    def __iter__(self) -> Iterator[Signal]:
        return iter(self._by_id)

    def find(self, path: str) -> Signal | None:
        return self._signals.get(path)

    def get(self, path: str) -> Signal:
        """The signal at ``path``; an unknown path raises with the nearest known paths."""
        sig = self._signals.get(path)
        if sig is None:
            raise UnknownPath(path, self._suggest(path))
        return sig

    def by_id(self, signal_id: int) -> Signal:
        if not isinstance(signal_id, int) or not 0 <= signal_id < len(self._by_id):
            raise UnknownPath(f"#{signal_id}", "no signal has this id")
        return self._by_id[signal_id]

    def branch(self, path: str) -> Branch | None:
        return self._branches.get(path)

    def is_branch(self, path: str) -> bool:
        return path in self._branches

    def branches(self) -> Iterator[Branch]:
        return iter(self._branches.values())

    def match(self, pattern: str) -> list[Signal]:
        """Every signal the pattern covers, in tree order; an empty list if none."""
        hit = self._match_cache.get(pattern)
        if hit is not None:
            return hit
        sig = self._signals.get(pattern)
        if sig is not None:
            result = [sig]
        else:
            matcher = paths.compile_pattern(pattern)  # checks the pattern and its limits
            if not paths.has_wildcard(pattern):
                prefix = pattern + "."  # a branch: every leaf below it
                result = (
                    [s for s in self._by_id if s.path.startswith(prefix)] if pattern in self._branches else []
                )
            else:
                result = [self._by_id[i] for i in matcher.select(self._all_segments())]
        if len(self._match_cache) > 1024:  # each entry may hold every signal: bound the memory
            self._match_cache.clear()
        self._match_cache[pattern] = result
        return result

    def _all_segments(self) -> list[tuple[str, ...]]:
        for sig in self._by_id[len(self._segments) :]:
            self._segments.append(tuple(sig.path.split(".")))
        return self._segments

    def resolve(self, pattern: str) -> list[Signal]:
        """Like ``match`` but an empty result is an error that says what is near."""
        found = self.match(pattern)
        if not found:
            raise UnknownPath(pattern, self._suggest(pattern))
        return found

    def resolve_all(
        self,
        patterns: Iterable[str],
        budget: paths.Budget | None = None,
        resolve: Callable[[str], list[Signal]] | None = None,
    ) -> list[Signal]:
        """Every signal any pattern covers, once each, in the order asked; unknown patterns
        raise as in ``resolve`` (or the given one: an API's, within the caller's rights), and
        the request's ``budget`` bounds patterns, catalog walks and signals."""
        budget = budget or paths.Budget()
        resolve = resolve or self.resolve
        out: list[Signal] = []
        seen: set[int] = set()
        for pattern in patterns:
            budget.pattern(scan=pattern not in self._signals)
            fresh = [sig for sig in resolve(pattern) if sig.id not in seen]
            budget.take(len(fresh))
            seen.update(sig.id for sig in fresh)
            out.extend(fresh)
        return out

    def _suggest(self, path: str) -> str:
        close = self.suggest(path)
        return f"did you mean {', '.join(close)}?" if close else ""

    def suggest(self, path: str, allowed: Callable[[str], bool] | None = None) -> list[str]:
        """The known paths nearest an unknown one, among those ``allowed`` accepts (an API passes
        the caller's read right, so a hint never names what the caller may not see)."""
        if not isinstance(path, str):
            return []
        prefix = path.rsplit(".", 1)[0]
        names = [p for p in self._signals if allowed is None or allowed(p)]
        pool = [p for p in names if p.startswith(prefix)] or names
        return difflib.get_close_matches(path, pool, n=3, cutoff=0.75)

    def add_listener(self, listener: CatalogListener) -> None:
        """Called with (added, changed) signals after each overlay."""
        self._listeners.append(listener)

    def apply_overlay(self, overlay: Overlay) -> tuple[list[Signal], list[Signal]]:
        """Add or change nodes. Checks everything first, so a bad overlay changes nothing."""
        plans = [self._check(node) for node in overlay.nodes]
        added: list[Signal] = []
        changed: list[Signal] = []
        for node, kind in plans:
            self._ensure_parents(node.path)
            if kind is NodeType.BRANCH:
                br = self._branches.setdefault(node.path, Branch(node.path))
                br.description = node.attrs.get("description", br.description)
                br.comment = node.attrs.get("comment", br.comment)
                continue
            existing = self._signals.get(node.path)
            if existing is None:
                sig = self._add_signal(node.path, kind, node.attrs)
                sig.extra.update(node.extra)
                added.append(sig)
            else:
                _update_signal(existing, kind, node)
                changed.append(existing)
        self._match_cache.clear()
        self.generation += 1
        for listener in list(self._listeners):
            listener(added, changed)
        return added, changed

    def _ensure_parents(self, path: str) -> None:
        parts = path.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            if parent not in self._branches:
                self._branches[parent] = Branch(parent, "implicit branch from an overlay")

    def _check(self, node: OverlayNode) -> tuple[OverlayNode, NodeType]:
        where = f"{node.where()}: {node.path}"
        existing_sig = self._signals.get(node.path)
        raw_type = node.attrs.get("type")
        if raw_type is None:
            if existing_sig is not None:
                kind = existing_sig.type
            elif node.path in self._branches:
                kind = NodeType.BRANCH
            else:
                raise OverlayError(f"{where}: a new node needs 'type' (branch, sensor, actuator, attribute)")
        else:
            try:
                kind = NodeType(raw_type)
            except ValueError:
                raise OverlayError(
                    f"{where}: type {raw_type!r} is not one of branch, sensor, actuator, attribute"
                ) from None
        parts = node.path.split(".")
        for i in range(1, len(parts)):
            if ".".join(parts[:i]) in self._signals:
                raise OverlayError(f"{where}: parent {'.'.join(parts[:i])} is a signal, not a branch")
        if kind is NodeType.BRANCH:
            if existing_sig is not None:
                raise OverlayError(f"{where}: cannot turn signal into a branch")
            return node, kind
        if node.path in self._branches:
            raise OverlayError(f"{where}: cannot turn a branch into a {kind}")
        merged: dict[str, Any] = {}
        if existing_sig is not None:
            merged.update(existing_sig.metadata())
        merged.update(node.attrs)
        datatype = merged.get("datatype")
        if datatype not in DATATYPES:
            raise OverlayError(f"{where}: datatype {datatype!r} is not a VSS datatype")
        unit = merged.get("unit")
        if unit is not None and unit not in known_units():
            raise OverlayError(f"{where}: unit {unit!r} is not defined in units.yaml")
        lo, hi = merged.get("min"), merged.get("max")
        for key, bound in (("min", lo), ("max", hi)):
            if bound is not None and (
                not is_numeric(datatype) or not isinstance(bound, (int, float)) or isinstance(bound, bool)
            ):
                raise OverlayError(f"{where}: field {key!r}={bound!r} needs a numeric datatype and value")
        if lo is not None and hi is not None and lo > hi:
            raise OverlayError(f"{where}: min {lo} is greater than max {hi}")
        pattern = merged.get("pattern")
        if pattern is not None:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as exc:
                raise OverlayError(f"{where}: field 'pattern' is not a regular expression: {exc}") from None
        allowed = merged.get("allowed")
        if allowed is not None and not isinstance(allowed, list):
            raise OverlayError(f"{where}: field 'allowed' must be a list")
        arraysize = merged.get("arraysize")
        if arraysize is not None and (not isinstance(arraysize, int) or arraysize < 0):
            raise OverlayError(f"{where}: field 'arraysize' must be a non-negative integer")
        try:
            element = compile_validator(datatype.removesuffix("[]"), minimum=lo, maximum=hi, pattern=pattern)
            for value in allowed or ():
                element(value)
            if merged.get("default") is not None:
                full = compile_validator(
                    datatype,
                    minimum=lo,
                    maximum=hi,
                    allowed=allowed,
                    pattern=pattern,
                    arraysize=arraysize,
                )
                full(merged["default"])
        except ValueRejected as exc:
            raise OverlayError(f"{where}: {exc}") from None
        return node, kind


def _update_signal(sig: Signal, kind: NodeType, node: OverlayNode) -> None:
    attrs = node.attrs
    sig.type = kind
    for key in (
        "datatype",
        "description",
        "unit",
        "min",
        "max",
        "pattern",
        "arraysize",
        "default",
        "comment",
        "deprecation",
    ):
        if key in attrs:
            setattr(sig, key, attrs[key])
    if "allowed" in attrs:
        sig.allowed = tuple(attrs["allowed"]) if attrs["allowed"] is not None else None
    sig.extra.update(node.extra)
    sig.compile()
