"""Accessory manifests: parsed, checked against the published JSON Schema, the trait catalog and
the VSS model, and bound to a fitted instance.

Every error names its exact field (``power.peak_w``, ``vss.Intensity.unit``,
``vss["Vehicle.Chassis.X"]``, ``reads[2]``), so a maker can fix the file without guessing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from anycar import decoding
from anycar.accessories.errors import ManifestError
from anycar.accessories.traits import Trait, trait_catalog
from anycar.errors import AnycarError, OverlayError
from anycar.model import Catalog, NodeType, Overlay, parse_overlay
from anycar.model.signal import LEAF_TYPES
from anycar.policy.access import ACCESSORIES_BRANCH, AccessControl
from anycar.policy.power import Priority

RESERVED_NAMES = frozenset({"Status"})  # hub-provided signals of every instance
SAMPLE_LOCATION = {"row": "Row1", "side": "DriverSide"}
_PLACEHOLDER = re.compile(r"\{(row|side)\}")
_ATTR_IN_MESSAGE = re.compile(
    r"\b(datatype|unit|min|max|pattern|allowed|arraysize|default|type)\b|'(datatype|unit|min|max|pattern|allowed|arraysize|default|type)'"
)


@cache
def schema() -> dict[str, Any]:
    text = resources.files("anycar.accessories").joinpath("data/manifest.schema.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


def mount_types() -> list[str]:
    """The mount types the schema knows (one source for manifests and mounts.yaml)."""
    return list(schema()["$defs"]["mount_type"]["enum"])


def field_path(parts: Any) -> str:
    """``['vss', 'Vehicle.Cabin.X', 'unit']`` -> ``vss["Vehicle.Cabin.X"].unit``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f"[{json.dumps(str(part))}]"
    return out


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """One entry of the manifest's VSS overlay."""

    key: str  # as written: relative name, or absolute standard path (may hold {row}/{side})
    attrs: Mapping[str, Any]

    @property
    def standard(self) -> bool:
        return self.key.startswith("Vehicle.")

    @property
    def local(self) -> str:
        """The name the accessory uses for this signal in protocol messages."""
        return self.key.rsplit(".", 1)[-1] if self.standard else self.key


@dataclass(frozen=True, slots=True)
class Power:
    standby_w: float
    typical_w: float
    peak_w: float


@dataclass(frozen=True, slots=True)
class Binding:
    """Where each of a fitted instance's signals lives, and the overlay that creates them."""

    instance: str
    paths: dict[str, str]  # local name -> full VSS path
    overlay: Overlay
    status_path: str


@dataclass(frozen=True)
class Manifest:
    data: dict[str, Any]
    source: str
    traits: tuple[Trait, ...]
    signals: tuple[SignalSpec, ...]
    power: Power
    priority: Priority

    @property
    def vendor_id(self) -> int:
        return int(self.data["vendor_id"])

    @property
    def product_id(self) -> int:
        return int(self.data["product_id"])

    @property
    def product_key(self) -> str:
        return f"{self.vendor_id:04x}:{self.product_id:04x}"

    @property
    def model(self) -> str:
        return str(self.data["model"])

    @property
    def product_name(self) -> str:
        return str(self.data["product_name"])

    @property
    def firmware_version(self) -> str:
        return str(self.data["firmware_version"])

    @property
    def mount_types(self) -> tuple[str, ...]:
        return tuple(self.data["mount_types"])

    @property
    def reads(self) -> tuple[str, ...]:
        return tuple(self.data.get("reads", ()))

    @property
    def actuates(self) -> tuple[str, ...]:
        return tuple(self.data.get("actuates", ()))

    @property
    def signed(self) -> bool:
        return isinstance(self.data.get("signature"), dict)

    @property
    def ux_restricted(self) -> bool:
        return any(t.driver_restricted for t in self.traits)

    def signal(self, local: str) -> SignalSpec | None:
        return next((s for s in self.signals if s.local == local), None)

    def summary(self) -> dict[str, Any]:
        return {
            "vendor_id": self.vendor_id,
            "vendor_name": self.data["vendor_name"],
            "product_id": self.product_id,
            "product_name": self.product_name,
            "model": self.model,
            "firmware_version": self.firmware_version,
            "traits": [t.id for t in self.traits],
            "mount_types": list(self.mount_types),
            "power": {
                "standby_w": self.power.standby_w,
                "typical_w": self.power.typical_w,
                "peak_w": self.power.peak_w,
            },
            "priority": self.priority.label,
        }

    # -- binding to a fitted instance -------------------------------------------------------
    def bind(
        self,
        instance: str,
        location: Mapping[str, Any],
        catalog: Catalog,
        *,
        is_free: Callable[[str], bool] = lambda path: True,
    ) -> Binding:
        """Choose each signal's path for ``instance`` fitted at ``location``.

        A standard path is used when the mount's row/side fill it, the catalog has it and no one
        else provides it; otherwise the signal goes under ``Vehicle.Accessories.<instance>``.
        """
        base = f"{ACCESSORIES_BRANCH}.{instance}"
        fill = _location_values(location)
        nodes: dict[str, Any] = {
            ACCESSORIES_BRANCH: {
                "type": "branch",
                "description": "Accessories fitted at the vehicle's mount points, one branch per instance (anycar).",
            },
            base: {
                "type": "branch",
                "description": f"{self.data['vendor_name']} {self.product_name} ({self.model})",
            },
            f"{base}.Status": {
                "type": "sensor",
                "datatype": "string",
                "allowed": ["RUNNING", "UNAVAILABLE", "SHED", "REMOVED"],
                "description": "Hub's view of this accessory: running, silent, shed for power, or removed.",
            },
        }
        paths: dict[str, str] = {}
        for spec in self.signals:
            if spec.standard:
                sample = catalog.find(_fill(spec.key, SAMPLE_LOCATION) or "")
                wanted = _fill(spec.key, fill)
                found = catalog.find(wanted) if wanted else None
                if found is not None and is_free(found.path):
                    paths[spec.local] = found.path
                    continue
                ref = found or sample
                assert ref is not None  # checked when the manifest was parsed  # nosec B101 # the manifest was checked when parsed; narrows the type for mypy
                meta = {k: v for k, v in ref.metadata().items() if k in _OVERLAY_KEYS}
                meta.update(spec.attrs)
                nodes[f"{base}.{spec.local}"] = meta
                paths[spec.local] = f"{base}.{spec.local}"
            else:
                nodes[f"{base}.{spec.key}"] = dict(spec.attrs)
                if spec.attrs.get("type") != "branch":
                    paths[spec.local] = f"{base}.{spec.key}"
        overlay = parse_overlay(nodes, source=f"{self.source} as {instance}")
        return Binding(instance, paths, overlay, f"{base}.Status")


_OVERLAY_KEYS = frozenset(
    {"type", "datatype", "description", "unit", "min", "max", "allowed", "pattern", "arraysize"}
)


def _location_values(location: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    row = location.get("row")
    if isinstance(row, int):
        out["row"] = f"Row{row}"
    side = location.get("side")
    if isinstance(side, str):
        out["side"] = side
    return out


def _fill(template: str, values: Mapping[str, str]) -> str | None:
    missing = False

    def sub(m: re.Match[str]) -> str:
        nonlocal missing
        if m.group(1) not in values:
            missing = True
            return ""
        return values[m.group(1)]

    out = _PLACEHOLDER.sub(sub, template)
    return None if missing else out


# -- loading --------------------------------------------------------------------------------
def load_manifest(path: str | Path, *, catalog: Catalog | None = None) -> Manifest:
    """Read and check a manifest file (.yaml, .yml or .json)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"{p}: cannot read: {exc.strerror}") from None
    return parse_manifest_text(text, source=str(p), catalog=catalog)


def read_manifest_data(text: str, source: str) -> dict[str, Any]:
    try:
        data = decoding.load_document(text, source)
    except decoding.DecodingError as exc:
        raise ManifestError(str(exc)) from None
    if not isinstance(data, dict):
        raise ManifestError(f"{source}: a manifest is a mapping, got {type(data).__name__}")
    return data


def parse_manifest_text(text: str, *, source: str = "<manifest>", catalog: Catalog | None = None) -> Manifest:
    return parse_manifest(read_manifest_data(text, source), source=source, catalog=catalog)


def parse_manifest(
    data: Any,
    *,
    source: str = "<manifest>",
    catalog: Catalog | None = None,
    access: AccessControl | None = None,
) -> Manifest:
    """Check ``data`` completely; raise ``ManifestError`` listing every problem with its field."""
    if not isinstance(data, dict):
        raise ManifestError(f"{source}: a manifest is a mapping, got {type(data).__name__}")
    problems: list[tuple[str, str]] = []
    errors = sorted(
        _validator().iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message)
    )
    for err in errors:
        problems.append((field_path(err.absolute_path) or "(top level)", _message(err)))
    if problems:
        _raise(source, problems)
    catalog = catalog if catalog is not None else Catalog.load_default()
    access = access if access is not None else AccessControl()
    power = Power(**{k: float(v) for k, v in data["power"].items()})
    if power.standby_w > power.typical_w:
        problems.append(
            ("power.standby_w", f"{power.standby_w:g} W is above typical_w {power.typical_w:g} W")
        )
    if power.typical_w > power.peak_w:
        problems.append(("power.typical_w", f"{power.typical_w:g} W is above peak_w {power.peak_w:g} W"))
    traits = tuple(trait_catalog()[t] for t in data["traits"])
    signals = tuple(SignalSpec(k, v) for k, v in data["vss"].items())
    problems.extend(_check_signals(signals, catalog, access))
    problems.extend(_check_traits(traits, signals, catalog))
    for i, pattern in enumerate(data.get("reads", [])):
        try:
            catalog.resolve(pattern)
        except AnycarError as exc:
            problems.append((f"reads[{i}]", str(exc)))
    for i, pattern in enumerate(data.get("actuates", [])):
        try:
            found = catalog.resolve(pattern)
        except AnycarError as exc:
            problems.append((f"actuates[{i}]", str(exc)))
            continue
        hit = access.pattern_hits_safety(pattern, catalog)
        if hit is not None:
            problems.append(
                (f"actuates[{i}]", f"{pattern!r} reaches safety-critical {hit}; no accessory may set it")
            )
        elif not any(s.type is NodeType.ACTUATOR for s in found):
            problems.append((f"actuates[{i}]", f"{pattern!r} covers no actuator"))
    if problems:
        _raise(source, problems)
    priority = Priority.parse(data["priority"]) if "priority" in data else min(t.priority for t in traits)
    return Manifest(data, source, traits, signals, power, priority)


def _message(err: ValidationError) -> str:
    if err.validator == "additionalProperties":
        return err.message.replace("Additional properties are not allowed", "unknown field(s)")
    if err.validator == "required":
        return err.message.replace("is a required property", "is required")
    if err.validator == "enum" and isinstance(err.validator_value, list) and len(err.validator_value) > 12:
        return f"{err.instance!r} is not one of the known values (see the schema)"
    return err.message


def _raise(source: str, problems: list[tuple[str, str]]) -> None:
    first_field, first_msg = problems[0]
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    raise ManifestError(f"{source}: {first_field}: {first_msg}{more}", field=first_field, problems=problems)


def _check_signals(
    signals: tuple[SignalSpec, ...], catalog: Catalog, access: AccessControl
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    scratch = Catalog.load_default()
    base = f"{ACCESSORIES_BRANCH}.Check"
    for spec in signals:
        where = field_path(["vss", spec.key])
        if spec.local in RESERVED_NAMES:
            problems.append((where, f"{spec.local!r} is reserved for the hub"))
            continue
        if spec.local in seen:
            problems.append((where, f"local name {spec.local!r} is also used by vss.{seen[spec.local]}"))
            continue
        seen[spec.local] = spec.key
        if spec.standard:
            path = _fill(spec.key, SAMPLE_LOCATION)
            assert path is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
            branch = access.safety_branch(path)
            if branch is not None:
                problems.append((where, f"{path} is in safety-critical {branch}; no accessory may write it"))
                continue
            try:
                access.check_provide("Check", path)
            except AnycarError as exc:
                problems.append((where, str(exc)))
                continue
            sig = catalog.find(path)
            if sig is None:
                problems.append((where, f"no standard VSS signal {path} (write a relative name instead)"))
                continue
            for key in ("type", "datatype", "unit"):
                if key in spec.attrs and spec.attrs[key] != getattr(sig, key):
                    problems.append(
                        (f"{where}.{key}", f"{spec.attrs[key]!r} differs from standard {getattr(sig, key)!r}")
                    )
            continue
        if spec.attrs.get("type") != "branch" and spec.attrs.get("type") not in [str(t) for t in LEAF_TYPES]:
            problems.append(
                (f"{where}.type", "a signal needs 'type' (sensor, actuator or attribute) or branch")
            )
            continue
        try:
            scratch.apply_overlay(parse_overlay({f"{base}.{spec.key}": dict(spec.attrs)}, source="vss"))
        except OverlayError as exc:
            detail = str(exc).split(f"{base}.{spec.key}: ", 1)[-1]
            m = _ATTR_IN_MESSAGE.search(detail)
            attr = (m.group(1) or m.group(2)) if m else None
            problems.append((f"{where}.{attr}" if attr else where, detail))
    return problems


def _check_traits(
    traits: tuple[Trait, ...], signals: tuple[SignalSpec, ...], catalog: Catalog
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    by_local = {s.local: s for s in signals}
    for i, trait in enumerate(traits):
        for need in trait.requires:
            spec = by_local.get(need.name)
            if spec is None:
                problems.append((f"traits[{i}]", f"trait {trait.id!r} needs signal {need.describe()} in vss"))
                continue
            if spec.standard:
                sig = catalog.find(_fill(spec.key, SAMPLE_LOCATION) or "")
                got = (str(sig.type), sig.datatype) if sig is not None else (None, None)
            else:
                got = (spec.attrs.get("type"), spec.attrs.get("datatype"))
            if got != (need.type, need.datatype):
                problems.append(
                    (
                        field_path(["vss", spec.key]),
                        f"trait {trait.id!r} needs {need.describe()}, found {got[0]} {got[1]}",
                    )
                )
    return problems
