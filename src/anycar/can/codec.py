"""Signal readers compiled from the DBC model, and the frame encoder for ``vss2dbc``.

A frame is read as two integers (its bytes little- and big-endian), and each signal the mapping
needs becomes a shift and a mask on one of them, then sign, scale and offset, which is what
cantools computes, without decoding the signals nobody mapped. Tests check every reader against
``cantools``'s own decoder over random frames of the real DBCs.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import can
from cantools.database.can import Message
from cantools.database.can import Signal as DbcSignal

Reader = Callable[[int, int], Any]
CAN_FD_LENGTHS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64)


def frame_key(frame_id: int, extended: bool) -> int:
    """One key for (id, standard/extended): 0x123 standard and 0x123 extended are different frames."""
    return frame_id | 0x80000000 if extended else frame_id


def accepted_lengths(message: Message) -> frozenset[int]:
    """The payload sizes a frame of this message may have: its own, or its CAN FD padding."""
    n = int(message.length)
    out = {n}
    if message.is_fd or n > 8:
        out.add(next((x for x in CAN_FD_LENGTHS if x >= n), n))
    return frozenset(out)


def bit_layout(sig: DbcSignal, length: int) -> tuple[bool, int, int]:
    """(big_endian_source, shift, mask) locating a signal's raw bits in the frame integer."""
    mask = (1 << sig.length) - 1
    if sig.byte_order == "little_endian":
        return False, int(sig.start), mask
    msb = (sig.start // 8) * 8 + (7 - sig.start % 8)
    lsb = msb + sig.length - 1
    return True, length * 8 - 1 - lsb, mask


def raw_reader(sig: DbcSignal, length: int) -> Reader:
    """A function (le_int, be_int) -> raw integer value of the signal (sign applied)."""
    big, shift, mask = bit_layout(sig, length)
    n = int(sig.length)
    if sig.is_float:
        fmt = ">f" if n == 32 else ">d"
        size = 4 if n == 32 else 8

        def read_float(le: int, be: int) -> Any:
            bits = ((be if big else le) >> shift) & mask
            return struct.unpack(fmt, bits.to_bytes(size, "big"))[0]

        return read_float
    if sig.is_signed:
        sign = 1 << (n - 1)
        full = 1 << n
        if big:
            return lambda le, be: v - full if (v := (be >> shift) & mask) & sign else v
        return lambda le, be: v - full if (v := (le >> shift) & mask) & sign else v
    if big:
        return lambda le, be: (be >> shift) & mask
    return lambda le, be: (le >> shift) & mask


def value_reader(sig: DbcSignal, length: int) -> Reader:
    """A function (le_int, be_int) -> physical value, computed the way cantools computes it."""
    raw = raw_reader(sig, length)
    scale, offset = sig.scale, sig.offset
    if sig.is_float or (scale == 1 and offset == 0 and type(scale) is int):
        return raw
    if type(scale) is int and type(offset) is int:
        return lambda le, be: raw(le, be) * scale + offset
    # 126 * 0.1 is 12.600000000000001 in binary floating point; the DBC means 12.6.
    divisor, shift = exact_division(scale, offset)
    if divisor:
        return lambda le, be: (raw(le, be) + shift) / divisor
    digits = decimals(scale, offset)
    return lambda le, be: round(raw(le, be) * scale + offset, digits)


def exact_division(scale: float, offset: float) -> tuple[int, int]:
    """(divisor, shift) with raw * scale + offset == (raw + shift) / divisor in exact decimals.

    DBC factors are mostly 1/10^k, 1/2, 1/4...: for those, one division gives the float nearest
    to the decimal value the DBC means, exactly what rounding the product would give, faster.
    (0, 0) when the factor is not the inverse of an integer.
    """
    try:
        s, o = Decimal(repr(float(scale))), Decimal(repr(float(offset)))
    except (ValueError, ArithmeticError):
        return 0, 0
    if s <= 0:
        return 0, 0
    inv = 1 / s
    if inv != inv.to_integral_value() or inv > 10**12:
        return 0, 0
    k = o * inv
    if k != k.to_integral_value():
        return 0, 0
    return int(inv), int(k)


def decimals(*numbers: float) -> int:
    """Decimal places the DBC wrote a factor or offset with (0.1 -> 1, 1e-07 -> 7)."""
    places = 0
    for n in numbers:
        exp = Decimal(repr(float(n))).as_tuple().exponent
        if isinstance(exp, int):
            places = max(places, -exp)
    return min(places, 15)


def le_mask(sig: DbcSignal, length: int) -> int:
    """The signal's bits as a mask on the little-endian frame integer."""
    big, shift, mask = bit_layout(sig, length)
    if not big:
        return mask << shift
    be_mask = mask << shift
    return int.from_bytes(be_mask.to_bytes(length, "big"), "little")


def physical_range(sig: DbcSignal) -> tuple[float, float] | None:
    """The DBC's [min|max] with half a step of slack, or None when the DBC gives no real range."""
    lo, hi = sig.minimum, sig.maximum
    if lo is None or hi is None or lo >= hi:
        return None
    slack = abs(sig.scale) / 2 if sig.scale else 0.0
    return float(lo) - slack, float(hi) + slack


def default_physical(sig: DbcSignal) -> Any:
    """A signal's value before anything was received: its DBC initial value, else 0 within range."""
    if sig.initial is not None:
        return sig.initial
    rng = physical_range(sig)
    if rng is not None and sig.minimum is not None and not rng[0] <= 0 <= rng[1]:
        return sig.minimum
    return 0


class FrameEncoder:
    """Builds frames of one message, keeping every other signal at its last known value.

    ``observe`` records the bytes last received for the message, so a request changes only the
    signals it names; until something was received the DBC's initial values (or 0) are used.
    """

    def __init__(self, message: Message) -> None:
        self.message = message
        self.values: dict[str, Any] = {s.name: default_physical(s) for s in message.signals}
        self._pending: bytes | None = None
        self._seen: bytes | None = None
        self._ranges = {s.name: r for s in message.signals if (r := physical_range(s)) is not None}
        #: anything with a ``last_data`` attribute (a frame decoder) to read received frames from
        self.source: Any = None

    def commit(self, updates: dict[str, Any]) -> None:
        self.values.update(updates)

    def observe(self, data: bytes) -> None:
        self._pending = bytes(data)

    def _refresh(self) -> None:
        if self.source is not None:
            latest = self.source.last_data
            if latest is not None and latest is not self._seen:
                self._seen = latest
                self._pending = bytes(latest)
        if self._pending is None:
            return
        data, self._pending = self._pending, None
        try:
            decoded = self.message.decode(data, decode_choices=False, scaling=True)
        except Exception:  # a bad last frame must not block sending; keep the older state
            return
        if not isinstance(decoded, dict):
            return
        for name, value in decoded.items():
            rng = self._ranges.get(name)
            if isinstance(value, (int, float)) and (rng is None or rng[0] <= value <= rng[1]):
                self.values[name] = value  # a received value the DBC refuses is not sent back

    def encode(self, updates: dict[str, Any], *, commit: bool = True) -> can.Message:
        """A frame with ``updates`` (signal name -> physical value) applied; raises on bad values.

        With ``commit=False`` the encoder's state is left as it was; ``commit(updates)`` keeps them.
        """
        self._refresh()
        values = dict(self.values)
        values.update(updates)
        data = self.message.encode(_active(self.message, values), scaling=True, strict=True)
        if commit:
            self.values = values
        msg = self.message
        return can.Message(
            arbitration_id=msg.frame_id,
            is_extended_id=bool(msg.is_extended_frame),
            is_fd=bool(msg.is_fd) or int(msg.length) > 8,
            data=data,
        )


def _active(message: Message, values: dict[str, Any]) -> dict[str, Any]:
    """Only the signals of the multiplexed variant the values select (cantools wants exactly those)."""
    if not message.is_multiplexed():
        return values
    selectors = {s.name: values.get(s.name) for s in message.signals if s.is_multiplexer}
    out: dict[str, Any] = {}
    for sig in message.signals:
        if sig.multiplexer_ids is None or (
            sig.multiplexer_signal in selectors and selectors[sig.multiplexer_signal] in sig.multiplexer_ids
        ):
            out[sig.name] = values[sig.name]
    return out
