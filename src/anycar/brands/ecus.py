"""The car's own ECUs, simulated: the frames they would send so that the profile's ``dbc2vss``
mapping decodes the given VSS values.

A simulator needs the status frames a car broadcasts (speed from the inverter, gear from the
gearbox, ...), which is what ``dbc2vss`` reads; ``vss2dbc`` describes requests *to* the car,
often other messages (Tesla's hazard request is not its hazard status). So each ``dbc2vss``
rule is inverted: a value table is read backwards, a ``math`` transform is solved over the DBC
signal's range (bisection for monotonic ones, the candidate values for booleans), and a rule
that has a ``vss2dbc`` twin on the same DBC signal uses that twin. Counters count and checksums
are computed as the ECUs do (``anycar.brands.checksums``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import can

from anycar.brands.checksums import MessageGuard, guard_for
from anycar.brands.profile import BrandProfile, load_profile
from anycar.can.codec import FrameEncoder, physical_range
from anycar.can.decoder import choice_key, coercer
from anycar.can.mapping import MappingRule
from anycar.can.network import SignalRef
from anycar.can.transform import NoMappingEntry, TransformFailed, compile_transform
from anycar.errors import AnycarError
from anycar.model import Catalog

Inverse = Callable[[Any], float | int | None]  # VSS value -> DBC physical value (None: cannot)


@dataclass(slots=True)
class _Target:
    ref: SignalRef
    inverse: Inverse
    extra: dict[str, int]  # selector signals (multiplexing) this signal travels with
    sign: str | None
    span: tuple[float, float]  # the DBC signal's physical range: values are clamped into it


class EcuEncoder:
    """Encodes VSS values into the frames this profile's ECUs would broadcast."""

    def __init__(self, profile: BrandProfile | str) -> None:
        self.profile = load_profile(profile) if isinstance(profile, str) else profile
        network = self.profile.network()
        mapping = self.profile.mapping()
        self.problems: list[str] = []
        self.targets: dict[str, list[_Target]] = {}
        twins = {(r.path, r.signal): r for r in mapping.vss2dbc}
        for rule in mapping.dbc2vss:
            refs = network.find(rule.signal, bus=rule.bus, message=rule.message)
            if not refs:
                continue
            ref = refs[0]
            try:
                twin = twins.get((rule.path, rule.signal))
                inverse = _forward(twin, ref) if twin is not None else _inverse(rule, ref)
            except AnycarError as exc:
                self.problems.append(str(exc))
                continue
            extra = {name: value for name, value in rule.multiplexer}
            sig = ref.signal
            if sig.multiplexer_ids and sig.multiplexer_signal is not None:
                extra[sig.multiplexer_signal] = int(sig.multiplexer_ids[0])
            self.targets.setdefault(rule.path, []).append(
                _Target(ref, inverse, extra, rule.sign, _numeric_range(ref))
            )
        self._encoders: dict[tuple[str, int, tuple[tuple[str, int], ...]], FrameEncoder] = {}
        self._guards: dict[tuple[str, int], MessageGuard | None] = {}
        self._channels = {b.name: b.channel or b.name for b in self.profile.buses}

    @property
    def paths(self) -> list[str]:
        return list(self.targets)

    def encode(self, values: Mapping[str, Any], timestamp: float | None = None) -> list[can.Message]:
        """The frames carrying ``values`` (paths without a rule, or values out of range, are left out)."""
        grouped: dict[tuple[str, int, tuple[tuple[str, int], ...]], dict[str, Any]] = {}
        refs: dict[tuple[str, int, tuple[tuple[str, int], ...]], SignalRef] = {}
        for path, value in values.items():
            for target in self.targets.get(path, ()):
                phys = target.inverse(
                    abs(value) if target.sign and isinstance(value, (int, float)) else value
                )
                if phys is None:
                    continue
                phys = min(target.span[1], max(target.span[0], phys))
                ref = target.ref
                key = (ref.bus, int(ref.message.frame_id), tuple(sorted(target.extra.items())))
                updates = grouped.setdefault(key, {})
                updates[ref.signal.name] = phys
                updates.update(target.extra)
                if target.sign:
                    updates[target.sign] = 1 if isinstance(value, (int, float)) and value < 0 else 0
                refs[key] = ref
        frames = []
        for key, updates in grouped.items():
            frame = self._frame(refs[key], key, updates)
            if frame is None:
                continue
            frame.channel = self._channels[key[0]]
            if timestamp is not None:
                frame.timestamp = timestamp
            frames.append(frame)
        return frames

    def _frame(
        self, ref: SignalRef, key: tuple[str, int, tuple[tuple[str, int], ...]], updates: dict[str, Any]
    ) -> can.Message | None:
        enc = self._encoders.get(key)
        if enc is None:
            enc = self._encoders[key] = FrameEncoder(ref.message)
            # a mapped signal not sent yet starts at a value its own mapping reads (not the DBC's 0)
            for targets in self.targets.values():
                for t in targets:
                    keys = getattr(t.inverse, "keys", None)
                    if (
                        keys
                        and t.ref.message is ref.message
                        and enc.values.get(t.ref.signal.name) not in keys
                    ):
                        enc.values[t.ref.signal.name] = next(iter(keys))
        gkey = (ref.bus, int(ref.message.frame_id))
        if gkey not in self._guards:
            self._guards[gkey] = guard_for(self.profile.id, ref.message)
        guard = self._guards[gkey]
        if guard is not None:
            updates = {**updates, **guard.next_counter()}
            for sig in guard.checksums:
                updates.setdefault(sig.name, enc.values.get(sig.name, 0))
        try:
            frame = enc.encode(updates)
            if guard is not None and guard.compute is not None:
                zeroed = enc.encode({s.name: 0 for s in guard.checksums}, commit=False)
                sums = guard.compute(ref.message, bytes(zeroed.data), guard.count)
                frame = enc.encode(sums)
        except Exception:  # cantools' range errors: an ECU would not send such a value either
            return None
        return frame


class RequestReader:
    """The car's side of ``vss2dbc``: which VSS request a frame on the bus carries.

    A simulated ECU uses it to see what the hub asked for (a request frame the adapter sent),
    reading each ``vss2dbc`` rule backwards: a value table from DBC to VSS, a plain signal as is
    (a value-table name for strings, 0/1 for booleans). ``math`` transforms are solved over the
    VSS signal's range by bisection.
    """

    def __init__(self, profile: BrandProfile | str, catalog: Catalog) -> None:
        self.profile = load_profile(profile) if isinstance(profile, str) else profile
        network = self.profile.network()
        self.problems: list[str] = []
        self._rules: dict[tuple[str, int], list[tuple[str, SignalRef, Callable[[Any], Any]]]] = {}
        for rule in self.profile.mapping().vss2dbc:
            refs = network.find(rule.signal, bus=rule.bus, message=rule.message)
            if not refs:
                continue
            ref = refs[0]
            sig = catalog.find(rule.path)
            if sig is None:
                continue
            coerce = coercer(sig.datatype, ref.signal.choices, False)
            key = (ref.bus, int(ref.message.frame_id))
            self._rules.setdefault(key, []).append(
                (rule.path, ref, _backwards(rule, _forward(rule, ref), coerce))
            )
        self._channels = {b.channel or b.name: b.name for b in self.profile.buses}

    @property
    def paths(self) -> list[str]:
        return [path for rules in self._rules.values() for path, _ref, _fn in rules]

    def read(self, frame: can.Message, bus: str | None = None) -> dict[str, Any]:
        """The VSS values a request frame on ``bus`` (else its channel's bus) asks for."""
        bus = bus or self._channels.get(str(frame.channel), str(frame.channel))
        rules = self._rules.get((bus, int(frame.arbitration_id)))
        if not rules:
            if len(self.profile.buses) == 1:
                rules = self._rules.get((self.profile.buses[0].name, int(frame.arbitration_id)))
            if not rules:
                return {}
        try:
            decoded = rules[0][1].message.decode(bytes(frame.data), decode_choices=False, scaling=True)
        except Exception:  # not a frame this message can be: ignore it as an ECU would
            return {}
        out = {}
        for path, ref, back in rules:
            raw = decoded.get(ref.signal.name) if isinstance(decoded, dict) else None
            if raw is None:
                continue
            value = back(raw)
            if value is not None:
                out[path] = value
        return out


def _backwards(rule: MappingRule, forward: Inverse, coerce: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """DBC physical value -> the VSS value ``forward`` would have turned into it."""
    table = None
    if rule.transform is not None and "mapping" in rule.transform:
        table = [(item["from"], item["to"]) for item in rule.transform["mapping"]]

    def back(phys: Any) -> Any:
        if table is not None:
            for vss, _dbc in table:
                if forward(vss) == phys:
                    return vss
            return None
        if rule.transform is None:
            try:
                return coerce(phys)
            except (TransformFailed, NoMappingEntry):
                return None
        return None  # a math request transform: not read back (none of the shipped profiles has one)

    return back


def _numeric_range(ref: SignalRef) -> tuple[float, float]:
    sig = ref.signal
    rng = physical_range(sig)
    if rng is not None and sig.minimum is not None and sig.maximum is not None:
        return float(sig.minimum), float(sig.maximum)
    lo_raw, hi_raw = (
        (-(2 ** (sig.length - 1)), 2 ** (sig.length - 1) - 1) if sig.is_signed else (0, 2**sig.length - 1)
    )
    a, b = lo_raw * sig.scale + sig.offset, hi_raw * sig.scale + sig.offset
    return float(min(a, b)), float(max(a, b))


def _snap(ref: SignalRef, x: float) -> float:
    sig = ref.signal
    if sig.is_float or not sig.scale:
        return x
    return round((x - sig.offset) / sig.scale) * sig.scale + sig.offset


def _forward(twin: MappingRule, ref: SignalRef) -> Inverse:
    """A ``vss2dbc`` rule on the same signal: its transform is the way VSS -> DBC already."""
    where = f"{twin.where()}: {twin.path}"
    transform = compile_transform(twin.transform, lambda v: v, where)
    by_name = {str(v): int(k) for k, v in (ref.signal.choices or {}).items()}

    def run(value: Any) -> float | int | None:
        try:
            x = transform(value) if transform is not None else value
        except (TransformFailed, NoMappingEntry):
            return None
        if isinstance(x, str):
            return by_name.get(x)
        if isinstance(x, bool):
            return int(x)
        return x if isinstance(x, (int, float)) else None

    return run


def _inverse(rule: MappingRule, ref: SignalRef) -> Inverse:
    where = f"{rule.where()}: {rule.path}"
    transform = compile_transform(rule.transform, choice_key(ref, where), where)
    by_name = {str(v): int(k) for k, v in (ref.signal.choices or {}).items()}
    if transform is None:

        def plain(value: Any) -> float | int | None:
            if isinstance(value, str):
                return by_name.get(value)
            if isinstance(value, bool):
                return int(value)
            return value if isinstance(value, (int, float)) else None

        return plain
    table = getattr(transform, "table", None)
    if table is not None:
        back: dict[Any, Any] = {}
        for key, to in table.items():
            back.setdefault((type(to) is bool, to), key)

        def lookup(value: Any) -> float | int | None:
            hit = back.get((type(value) is bool, value))
            if hit is None and isinstance(value, (int, float)) and not isinstance(value, bool):
                hit = back.get((False, float(value)))
            return hit

        lookup.keys = list(table)  # type: ignore[attr-defined]
        return lookup
    lo, hi = _numeric_range(ref)
    fn = transform

    def solve(value: Any) -> float | int | None:
        if isinstance(value, bool):
            for x in _candidates(ref, lo, hi):
                try:
                    if bool(fn(x)) is value:
                        return x
                except (TransformFailed, NoMappingEntry, ArithmeticError):
                    continue
            return None
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        return _bisect(ref, fn, float(value), lo, hi)

    return solve


def _candidates(ref: SignalRef, lo: float, hi: float) -> list[float]:
    out = [0.0, 1.0, lo, hi, (lo + hi) / 2]
    return [x for x in out if lo <= x <= hi] or [lo]


def _bisect(ref: SignalRef, fn: Callable[[Any], Any], target: float, lo: float, hi: float) -> float | None:
    try:
        f_lo, f_hi = float(fn(lo)), float(fn(hi))
    except (TransformFailed, NoMappingEntry, ArithmeticError, TypeError, ValueError):
        return None
    if f_lo == f_hi:
        return None
    rising = f_hi > f_lo
    if not min(f_lo, f_hi) <= target <= max(f_lo, f_hi):
        return None
    a, b = lo, hi
    for _ in range(64):
        mid = (a + b) / 2
        if (float(fn(mid)) < target) == rising:
            a = mid
        else:
            b = mid
    best = None
    for x in (a, b):
        snapped = min(hi, max(lo, _snap(ref, x)))
        err = abs(float(fn(snapped)) - target)
        if best is None or err < best[0]:
            best = (err, snapped)
    return best[1] if best else None


__all__ = ["EcuEncoder", "RequestReader"]
