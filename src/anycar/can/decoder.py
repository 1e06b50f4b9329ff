"""From frames to VSS updates: per-frame decoders compiled from the DBC model and the mapping.

Each frame id of each bus gets a ``FrameDecoder`` holding only the mapped signals. KUKSA's
evaluation order is kept for every rule (kuksa-can-provider ``dbcfeederlib``): values outside
the DBC range are dropped first, then the interval is checked on the frame's time and used up,
then the transform runs, then the on-change check. As in KUKSA, the interval and the last value
belong to the VSS signal (a ``Gate``), shared by every message that carries its DBC signal, and a
value that then fails its transform (no mapping entry, a formula error) has still used the
interval. Work is skipped only where its result cannot differ: a signal whose bits are those
that last gave a valid value is not decoded or transformed again (transforms are pure), and
when every rule of a frame is on-change without interval and owns its gate, a frame whose mapped
bits did not change since the last clean one is skipped whole. Anything wrong with a frame or a
value is counted in ``BadInput`` by cause, and that value is dropped, never published.
``can.compiled`` writes the same loop out per frame id; ``process`` is the reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cantools.database.can import Message
from cantools.database.can import Signal as DbcSignal

from anycar.can.codec import (
    accepted_lengths,
    bit_layout,
    decimals,
    exact_division,
    frame_key,
    le_mask,
    physical_range,
    raw_reader,
    value_reader,
)
from anycar.can.mapping import Mapping, MappingRule
from anycar.can.network import CanNetwork, SignalRef
from anycar.can.transform import NoMappingEntry, Transform, TransformFailed, compile_transform
from anycar.errors import AnycarError
from anycar.model import Catalog
from anycar.model.datatypes import INTEGER_RANGES

Update = tuple[str, Any]
#: frame times are compared to the microsecond (the resolution of candump logs), so that frames
#: logged exactly ``interval_ms`` apart pass however their float timestamps round
TIME_TOLERANCE_S = 0.5e-6


class Gate:
    """The interval and on-change state of one VSS signal, shared by every message carrying it."""

    __slots__ = ("has_value", "last_time", "last_vss", "shared", "timed", "tracks")

    def __init__(self) -> None:
        self.last_time = -math.inf  # when the interval was last used up
        self.last_vss: Any = None  # the value last published
        self.has_value = False
        self.timed = False  # some rule of this signal has an interval
        self.tracks = False  # some rule of this signal is on-change
        self.shared = False  # more than one message carries the signal


@dataclass(slots=True)
class BadInput:
    """Counts of input that was refused, one counter per cause."""

    wrong_length: int = 0
    unknown_id: int = 0
    out_of_range: int = 0
    corrupt_log_line: int = 0
    transform_failed: int = 0
    unmapped_value: int = 0
    vss_rejected: int = 0
    error_frames: int = 0
    remote_frames: int = 0

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}

    def total(self) -> int:
        return sum(self.as_dict().values())


class _Entry:
    """One dbc2vss rule bound to one message carrying its signal.

    The signal's position is kept as plain numbers (shift, mask, sign, scale, offset) so the hot
    loop reads it without a function call; ``read`` is only used for IEEE float signals.
    """

    __slots__ = (
        "big",
        "bits_vss",
        "coerce",
        "digits",
        "divisor",
        "full",
        "gate",
        "interval",
        "kind",
        "last_bits",
        "mux",
        "negate",
        "offset",
        "on_change",
        "path",
        "range",
        "read",
        "rmask",
        "rule",
        "scale",
        "shift",
        "shift_in",
        "sign",
        "transform",
    )

    def __init__(
        self,
        rule: MappingRule,
        sig: DbcSignal,
        length: int,
        mux: tuple[tuple[Callable[[int, int], Any], int], ...],
        transform: Transform | None,
        coerce: Callable[[Any], Any] | None,
        gate: Gate,
    ) -> None:
        self.rule = rule
        self.gate = gate
        self.path = rule.path
        big, shift, mask = bit_layout(sig, length)
        self.big = big
        self.shift = shift
        self.rmask = mask << shift
        self.sign = (1 << (sig.length - 1)) if sig.is_signed else 0
        self.full = 1 << sig.length
        self.scale = sig.scale
        self.offset = sig.offset
        self.digits = decimals(sig.scale, sig.offset)
        self.divisor, self.shift_in = exact_division(sig.scale, sig.offset)
        if sig.is_float:
            self.kind = 3
        elif sig.scale == 1 and sig.offset == 0 and type(sig.scale) is int:
            self.kind = 0
        elif type(sig.scale) is int and type(sig.offset) is int:
            self.kind = 1
        elif self.divisor:
            self.kind = 4  # (raw + shift_in) / divisor: one correctly rounded division
        else:
            self.kind = 2
        self.read = raw_reader(sig, length)
        self.mux = mux
        self.negate: Callable[[int, int], Any] | None = None  # the sign bit, when the rule names one
        self.range = physical_range(sig)
        self.transform = transform
        self.coerce = coerce
        # KUKSA: blocked while less than interval_ms has passed since the gate was last used up
        self.interval = rule.interval_ms / 1000.0 - TIME_TOLERANCE_S if rule.interval_ms > 0 else 0.0
        self.on_change = rule.on_change
        self.last_bits: int | None = None  # the signal's bits when it last gave a valid value
        self.bits_vss: Any = None  # the VSS value those bits gave


@dataclass(slots=True)
class FrameDecoder:
    message: Message
    bus: str
    lengths: frozenset[int]
    length: int
    entries: list[_Entry] = field(default_factory=list)
    mask: int = 0
    last_key: int | None = None
    keep_last: bool = False
    last_data: bytes | None = None
    #: every rule is on_change without interval: a frame whose mapped bits did not change since
    #: the last cleanly processed one cannot yield anything, so it is skipped whole
    quiet: bool = False
    #: what the adapter calls per frame: ``process``, or a compiled equivalent (``can.compiled``)
    run: Callable[[bytes, float, list[Update], BadInput], None] | None = None
    selectors: list[tuple[Callable[[int, int], Any], frozenset[int]]] = field(default_factory=list)

    def process(self, data: bytes, ts: float, out: list[Update], bad: BadInput) -> None:
        """Append the VSS updates this frame yields to ``out``."""
        n = len(data)
        if n != self.length:
            if n not in self.lengths:
                bad.wrong_length += 1
                return
            data = data[: self.length]
        if self.keep_last:
            self.last_data = data
        entries = self.entries
        if not entries:
            return
        le = int.from_bytes(data, "little")
        be = -1
        key = le & self.mask
        if key == self.last_key:
            if self.quiet:
                return
        elif self.selectors:
            # a multiplexer value the DBC does not define means the frame is not what we think
            be = int.from_bytes(data, "big")
            for read_sel, ids in self.selectors:
                if read_sel(le, be) not in ids:
                    bad.out_of_range += 1
                    self.last_key = None
                    return
        clean = True
        for e in entries:
            g = e.gate
            if 0.0 <= ts - g.last_time < e.interval:
                continue
            if e.big:
                if be < 0:
                    be = int.from_bytes(data, "big")
                bits = be & e.rmask
            else:
                bits = le & e.rmask
            mux = e.mux
            if mux or e.negate is not None:
                if be < 0:
                    be = int.from_bytes(data, "big")
                if any(read(le, be) != want for read, want in mux):
                    continue
            elif bits == e.last_bits:
                # the same bits as the last valid value: the same value, nothing to decode
                g.last_time = ts
                vss = e.bits_vss
                if not (e.on_change and g.has_value and vss == g.last_vss and type(vss) is type(g.last_vss)):
                    g.last_vss = vss
                    g.has_value = True
                    out.append((e.path, vss))
                continue
            kind = e.kind
            if kind == 3:
                if be < 0:
                    be = int.from_bytes(data, "big")
                phys = e.read(le, be)
                if phys != phys or phys in _INFINITIES:  # NaN or infinite float signal
                    bad.out_of_range += 1
                    e.last_bits = None
                    clean = False
                    continue
            else:
                phys = bits >> e.shift
                if e.sign and phys & e.sign:
                    phys -= e.full
                if kind == 4:
                    phys = (phys + e.shift_in) / e.divisor
                elif kind == 2:
                    phys = round(phys * e.scale + e.offset, e.digits)
                elif kind == 1:
                    phys = phys * e.scale + e.offset
            rng = e.range
            if rng is not None and not rng[0] <= phys <= rng[1]:
                bad.out_of_range += 1  # KUKSA drops these before the interval check
                e.last_bits = None
                clean = False
                continue
            if e.negate is not None and e.negate(le, be):
                phys = -phys
            g.last_time = ts  # KUKSA uses the interval up before the transform
            try:
                if e.transform is not None:
                    vss = e.coerce(e.transform(phys))  # type: ignore[misc]  # set with every transform
                elif e.coerce is not None:
                    vss = e.coerce(phys)
                else:
                    vss = phys  # a number going to a float signal needs no conversion
            except NoMappingEntry:
                bad.unmapped_value += 1
                e.last_bits = None
                clean = False
                continue
            except TransformFailed:
                bad.transform_failed += 1
                e.last_bits = None
                clean = False
                continue
            e.last_bits = bits
            e.bits_vss = vss
            if e.on_change and g.has_value and vss == g.last_vss and type(vss) is type(g.last_vss):
                continue
            g.last_vss = vss
            g.has_value = True
            out.append((e.path, vss))
        self.last_key = key if clean else None


_INFINITIES = (math.inf, -math.inf)


def coercer(datatype: str, choices: dict[int, Any] | None, has_transform: bool) -> Callable[[Any], Any]:
    """Turn a DBC (or transformed) value into the VSS datatype, or fail the value."""
    if datatype == "boolean":

        def to_bool(v: Any) -> bool:
            if v is True or v is False:
                return bool(v)
            if v == 0:
                return False
            if v == 1:
                return True
            raise TransformFailed(f"{v!r} is not a boolean (0 or 1); add a transform")

        return to_bool
    if datatype in INTEGER_RANGES:

        def to_int(v: Any) -> int:
            if type(v) is int:
                return v
            if isinstance(v, (int, float)) and math.isfinite(v):
                return math.floor(v + 0.5)
            raise TransformFailed(f"{v!r} is not a number")

        return to_int
    if datatype in ("float", "double"):

        def to_float(v: Any) -> Any:
            if type(v) is bool or not isinstance(v, (int, float)):
                raise TransformFailed(f"{v!r} is not a number")
            return v

        return to_float
    if datatype == "string":
        names = {int(k): str(v) for k, v in (choices or {}).items()}

        def to_str(v: Any) -> str:
            if isinstance(v, str):
                return v
            if not has_transform and names and isinstance(v, (int, float)) and v == int(v):
                name = names.get(int(v))
                if name is None:
                    raise NoMappingEntry(f"no mapping entry for {v!r} (value not in the DBC's value table)")
                return name
            return str(v)

        return to_str

    def refuse(v: Any) -> Any:
        raise TransformFailed(f"datatype {datatype} is not supported by the CAN adapter")

    return refuse


def choice_key(ref: SignalRef, where: str) -> Callable[[Any], Any]:
    """How a ``from`` value of a dbc2vss table is read: a value-table name or a number."""
    by_name = {str(v): int(k) for k, v in (ref.signal.choices or {}).items()}

    def key(v: Any) -> Any:
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, str):
            if v in by_name:
                return by_name[v]
            raise AnycarError(
                f"{where}: 'from' value {v!r} is not in the value table of DBC signal {ref.signal.name}"
            )
        return v

    return key


@dataclass(slots=True)
class CompiledDecoders:
    by_bus: dict[str, dict[int, FrameDecoder]]
    any_bus: dict[int, FrameDecoder]
    channels: dict[str, str]
    problems: list[str]
    paths: list[str]


def compile_decoders(
    network: CanNetwork,
    mapping: Mapping,
    catalog: Catalog,
    *,
    refused: set[str] | frozenset[str] = frozenset(),
) -> CompiledDecoders:
    """Frame decoders for every frame of every bus; mapped frames carry their rules.

    ``refused`` are paths whose overlay node the catalog refused (already reported): skipped.
    """
    problems: list[str] = []
    by_bus: dict[str, dict[int, FrameDecoder]] = {}
    for bus in network.buses:
        frames = by_bus.setdefault(bus.name, {})
        for key, (msg, _dbc) in network.frames(bus.name).items():
            lengths = accepted_lengths(msg)
            frames[key] = FrameDecoder(msg, bus.name, lengths, int(msg.length))
    paths: dict[str, None] = {}
    gates: dict[str, Gate] = {}  # one per VSS signal, across all the messages carrying it
    for rule in mapping.dbc2vss:
        if rule.path in refused:
            continue
        where = f"{rule.where()}: {rule.path}"
        sig = catalog.find(rule.path)
        if sig is None:
            problems.append(f"{where}: unknown VSS path (DBC signal {rule.signal}); rule not used")
            continue
        refs = network.find(rule.signal, bus=rule.bus, message=rule.message)
        if not refs:
            problems.append(f"{where}: DBC signal {rule.signal!r} is in none of the DBC files")
            continue
        for ref in refs:
            dec = by_bus[ref.bus][frame_key(ref.message.frame_id, bool(ref.message.is_extended_frame))]
            gate = gates.get(rule.path) or Gate()
            try:
                entry = _entry(rule, ref, dec, sig.datatype, where, gate)
            except AnycarError as exc:
                problems.append(str(exc))
                continue
            gates[rule.path] = gate
            gate.timed = gate.timed or entry.interval > 0
            gate.tracks = gate.tracks or entry.on_change
            dec.entries.append(entry)
            paths.setdefault(rule.path)
    for frames in by_bus.values():
        for dec in frames.values():
            if dec.entries and dec.message.is_multiplexed():
                n = int(dec.message.length)
                for sel in dec.message.signals:
                    if sel.is_multiplexer:
                        ids = frozenset(
                            int(i)
                            for x in dec.message.signals
                            if x.multiplexer_signal == sel.name
                            for i in x.multiplexer_ids or ()
                        )
                        if ids and sel.multiplexer_ids is None:
                            dec.selectors.append((raw_reader(sel, n), ids))
                            dec.mask |= le_mask(sel, n)
    shared: dict[int, int] = {}
    for frames in by_bus.values():
        for dec in frames.values():
            for e in dec.entries:
                shared[id(e.gate)] = shared.get(id(e.gate), 0) + 1
    for frames in by_bus.values():
        for dec in frames.values():
            for e in dec.entries:
                e.gate.shared = shared[id(e.gate)] > 1
            # a gate shared with another message can change while this frame's bits do not
            dec.quiet = bool(dec.entries) and all(
                e.on_change and e.interval == 0 and shared[id(e.gate)] == 1 for e in dec.entries
            )
    any_bus: dict[int, FrameDecoder] = {}
    for bus in network.buses:
        for key, dec in by_bus[bus.name].items():
            if key not in any_bus or (dec.entries and not any_bus[key].entries):
                any_bus[key] = dec
    channels = {b.channel: b.name for b in network.buses if b.channel}
    return CompiledDecoders(by_bus, any_bus, channels, problems, list(paths))


def _selects(read: Callable[[int, int], Any], ids: frozenset[int]) -> Callable[[int, int], int]:
    """0 when the selector holds one of ``ids`` (a mux condition compared with 0)."""

    def check(le: int, be: int) -> int:
        return 0 if read(le, be) in ids else 1

    return check


def _entry(
    rule: MappingRule, ref: SignalRef, dec: FrameDecoder, datatype: str, where: str, gate: Gate
) -> _Entry:
    msg, s = ref.message, ref.signal
    length = int(msg.length)
    mux: list[tuple[Callable[[int, int], Any], int]] = []
    dec.mask |= le_mask(s, length)
    # The DBC's own multiplexing: the signal only counts when its selector has one of its ids.
    sel_name = s.multiplexer_signal
    sel_ids = s.multiplexer_ids
    if sel_name is not None and sel_ids:
        sel = msg.get_signal_by_name(sel_name)
        dec.mask |= le_mask(sel, length)
        if len(sel_ids) == 1:
            mux.append((raw_reader(sel, length), int(sel_ids[0])))
        else:
            mux.append((_selects(raw_reader(sel, length), frozenset(int(i) for i in sel_ids)), 0))
    for name, value in rule.multiplexer:
        try:
            sel = msg.get_signal_by_name(name)
        except KeyError:
            raise AnycarError(
                f"{where}: multiplexer signal {name!r} is not in message {msg.name} with {s.name}"
            ) from None
        dec.mask |= le_mask(sel, length)
        mux.append((value_reader(sel, length), value))
    transform = compile_transform(rule.transform, choice_key(ref, where), where)
    coerce: Callable[[Any], Any] | None = coercer(datatype, s.choices, transform is not None)
    if transform is None and datatype in ("float", "double") and not s.is_float:
        coerce = None
    entry = _Entry(rule, s, length, tuple(mux), transform, coerce, gate)
    if rule.sign is not None:
        try:
            sign = msg.get_signal_by_name(rule.sign)
        except KeyError:
            raise AnycarError(
                f"{where}: sign signal {rule.sign!r} is not in message {msg.name} with {s.name}"
            ) from None
        dec.mask |= le_mask(sign, length)
        entry.negate = raw_reader(sign, length)
    return entry
