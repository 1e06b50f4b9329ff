"""Campaigns (after AWS IoT FleetWise's, in the open): which signals, collected how, sent how.

A campaign is a data file (YAML here, or the ``campaign`` of a signed message from the fleet)
checked against the wire's ``campaign-document`` schema, then here: patterns must be valid VSS
patterns, conditions must parse with the same trimmed expression parser as the CAN mappings and
name only catalog paths (plus ``true`` and ``false``), start and stop must be ISO times.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from anycar.can.transform import parse_expression
from anycar.errors import AnycarError, ConfigError
from anycar.model import paths
from anycar.model.catalog import Catalog
from anycar.wire import WireError
from anycar.wire.schema import CAMPAIGN_DOCUMENT, check

MAX_FILE_BYTES = 256 * 1024
CONSTANTS = {"true": True, "false": False}


class Condition:
    """A boolean expression over signal values; ``None`` while any signal it names has no value."""

    def __init__(self, text: str, catalog: Catalog, where: str) -> None:
        self.text = text
        self._parsed = parse_expression(text, where, "condition")
        self.paths: list[str] = []
        for name in self._parsed.variables():
            if name in CONSTANTS:
                continue
            if catalog.find(name) is None:
                raise ConfigError(f"{where}: condition {text!r} names {name!r}, which is not a VSS signal")
            self.paths.append(name)

    def evaluate(self, values: Mapping[str, Any]) -> bool | None:
        env = dict(CONSTANTS)
        for path in self.paths:
            value = values.get(path)
            if value is None:
                return None
            env[path] = value
        try:
            return bool(self._parsed.evaluate(env))
        except Exception:  # a type mismatch (string > number) counts as not met, never a crash
            return False


@dataclass(frozen=True)
class SignalSpec:
    pattern: str
    deadband: float | None = None  # None: every sample; 0: on change; > 0: after moving this much


@dataclass(frozen=True)
class Periodic:
    period_s: float
    fast_when: Condition | None = None
    fast_period_s: float | None = None
    full_every_s: float | None = None


@dataclass(frozen=True)
class Triggered:
    condition: Condition
    rising_edge: bool = True
    min_interval_s: float = 0.0
    before_s: float = 0.0
    after_s: float = 0.0


@dataclass(frozen=True)
class Campaign:
    id: str
    version: int
    signals: tuple[SignalSpec, ...]
    scheme: Periodic | Triggered
    description: str = ""
    priority: int = 5
    qos: int = 1
    ttl_s: float | None = None
    start: float | None = None
    stop: float | None = None
    quota_bytes: int | None = None
    events: bool = False
    max_values: int = 2000
    max_delay_s: float = 5.0
    source: str = "file"
    document: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        return f"{self.id}@{self.version}"

    def active(self, now: float) -> bool:
        return (self.start is None or now >= self.start) and (self.stop is None or now < self.stop)

    def summary(self) -> dict[str, Any]:
        scheme = self.scheme
        how: dict[str, Any]
        if isinstance(scheme, Periodic):
            how = {"periodic_ms": round(scheme.period_s * 1000)}
            if scheme.fast_when is not None and scheme.fast_period_s is not None:
                how["while"] = {
                    "condition": scheme.fast_when.text,
                    "period_ms": round(scheme.fast_period_s * 1000),
                }
        else:
            how = {
                "condition": scheme.condition.text,
                "trigger": "rising_edge" if scheme.rising_edge else "always",
                "before_s": scheme.before_s,
                "after_s": scheme.after_s,
            }
        return {
            "id": self.id,
            "version": self.version,
            "source": self.source,
            "priority": self.priority,
            "qos": self.qos,
            "signals": [s.pattern for s in self.signals],
            "collect": how,
            "events": self.events,
            "start": self.start,
            "stop": self.stop,
        }


def _time(value: Any, where: str) -> float | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ConfigError(f"{where}: {value!r} needs a time zone (Z or +hh:mm)")
    return moment.timestamp()


def parse_campaign(doc: Any, catalog: Catalog, *, where: str, source: str = "file") -> Campaign:
    """A checked campaign from its document; ``ConfigError`` naming the field otherwise."""
    try:
        check(CAMPAIGN_DOCUMENT, doc, what=where)
    except WireError as exc:
        raise ConfigError(str(exc)) from None
    if doc.get("remove"):
        raise ConfigError(f"{where}: a removal is not a campaign to run")
    specs = []
    for i, item in enumerate(doc["signals"]):
        try:
            paths.split(item["path"])
        except AnycarError as exc:
            raise ConfigError(f"{where}: signals[{i}].path: {exc}") from None
        specs.append(SignalSpec(item["path"], item.get("deadband")))
    collect = doc["collect"]
    scheme: Periodic | Triggered
    if "periodic" in collect:
        p = collect["periodic"]
        fast = p.get("while")
        scheme = Periodic(
            period_s=p["period_ms"] / 1000,
            fast_when=Condition(fast["condition"], catalog, f"{where}: collect.periodic.while")
            if fast
            else None,
            fast_period_s=fast["period_ms"] / 1000 if fast else None,
            full_every_s=p["full_every_ms"] / 1000 if "full_every_ms" in p else None,
        )
    else:
        c = collect["condition"]
        scheme = Triggered(
            condition=Condition(c["expression"], catalog, f"{where}: collect.condition.expression"),
            rising_edge=c.get("trigger", "rising_edge") == "rising_edge",
            min_interval_s=c.get("min_interval_ms", 0) / 1000,
            before_s=float(c.get("before_s", 0)),
            after_s=float(c.get("after_s", 0)),
        )
    batch = doc.get("batch") or {}
    quota = doc.get("spool_quota_mb")
    return Campaign(
        id=doc["id"],
        version=doc["version"],
        signals=tuple(specs),
        scheme=scheme,
        description=doc.get("description", ""),
        priority=doc.get("priority", 5),
        qos=doc.get("qos", 1),
        ttl_s=doc.get("ttl_s"),
        start=_time(doc.get("start"), f"{where}: start"),
        stop=_time(doc.get("stop"), f"{where}: stop"),
        quota_bytes=int(quota * 1024 * 1024) if quota else None,
        events=bool(doc.get("events", False)),
        max_values=batch.get("max_values", 2000),
        max_delay_s=batch.get("max_delay_ms", 5000) / 1000,
        source=source,
        document=dict(doc),
    )


def load_campaign_file(path: str | Path, catalog: Catalog) -> Campaign:
    file = Path(path)
    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"{file}: a campaign file is at most {MAX_FILE_BYTES} bytes")
        text = file.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read campaign {file}: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{file}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_campaign(doc, catalog, where=str(file), source=f"file:{file.name}")
