"""The CSMS's rules (retire threshold, ready SoC, timeouts, prices) and station layouts, from data files."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

DATA = Path(str(resources.files("anycar.swap") / "data"))


class LayoutError(ValueError):
    """A station layout or policy file that cannot be used; the message says file and field."""


@dataclass(frozen=True, slots=True)
class Policy:
    retire_soh: float
    ready_soc: float
    heartbeat_s: int
    swap_timeout_s: float
    max_clock_skew_s: float
    price_per_kwh: float
    swap_fee: float
    currency: str


@dataclass(frozen=True, slots=True)
class Layout:
    name: str
    vendor: str
    model: str
    slots: int
    chargers: int
    charger_kw: float
    grid_limit_kw: float
    swap_order: str
    mechanical_s: float
    empty_slots: int
    chemistry: str
    capacity_kwh: float
    soh: float
    soc: float


def _load(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise LayoutError(f"{path}: {exc}".splitlines()[0]) from None
    if not isinstance(doc, dict):
        raise LayoutError(f"{path}: must be a mapping")
    return doc


def _num(doc: dict[str, Any], key: str, path: Path, *, lo: float = 0.0, hi: float = 1e9) -> float:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise LayoutError(f"{path}: {key}: a number in [{lo:g}, {hi:g}] is required, got {value!r}")
    return float(value)


def load_policy(path: Path | None = None) -> Policy:
    path = path or DATA / "policy.yaml"
    doc = _load(path)
    return Policy(
        retire_soh=_num(doc, "retire_soh", path, hi=100),
        ready_soc=_num(doc, "ready_soc", path, hi=100),
        heartbeat_s=int(_num(doc, "heartbeat_s", path, lo=1, hi=86400)),
        swap_timeout_s=_num(doc, "swap_timeout_s", path, lo=0.1),
        max_clock_skew_s=_num(doc, "max_clock_skew_s", path, lo=1),
        price_per_kwh=_num(doc, "price_per_kwh", path),
        swap_fee=_num(doc, "swap_fee", path),
        currency=str(doc.get("currency", "EUR"))[:3],
    )


def layout_path(name_or_path: str) -> Path:
    """A layout by name (``pickman-8``: shipped in data/stations) or by file path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return DATA / "stations" / f"{name_or_path}.yaml"


def load_layout(name_or_path: str) -> Layout:
    path = layout_path(name_or_path)
    if not path.exists():
        shipped = sorted(p.stem for p in (DATA / "stations").glob("*.yaml"))
        raise LayoutError(f"station layout {name_or_path!r}: no such file (shipped: {', '.join(shipped)})")
    doc = _load(path)
    pack = doc.get("pack")
    if not isinstance(pack, dict):
        raise LayoutError(f"{path}: pack: a mapping (chemistry, capacity_kwh, soh, soc) is required")
    order = doc.get("swap_order", "In-Out")
    if order not in ("In-Out", "Out-In"):
        raise LayoutError(f"{path}: swap_order: In-Out or Out-In, got {order!r}")
    slots = int(_num(doc, "slots", path, lo=1, hi=999))
    layout = Layout(
        name=str(doc.get("name", path.stem)),
        vendor=str(doc.get("vendor", "anycar"))[:50],
        model=str(doc.get("model", path.stem))[:20],
        slots=slots,
        chargers=int(_num(doc, "chargers", path, lo=1, hi=slots)),
        charger_kw=_num(doc, "charger_kw", path, lo=0.1),
        grid_limit_kw=_num(doc, "grid_limit_kw", path, lo=0.1),
        swap_order=order,
        mechanical_s=_num(doc, "mechanical_s", path, hi=3600),
        empty_slots=int(_num(doc, "empty_slots", path, lo=1, hi=slots)),
        chemistry=str(pack.get("chemistry", "LFP"))[:16],
        capacity_kwh=_num(pack, "capacity_kwh", path, lo=0.1),
        soh=_num(pack, "soh", path, hi=100),
        soc=_num(pack, "soc", path, hi=100),
    )
    return layout
