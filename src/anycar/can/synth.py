"""Realistic synthetic traffic from a DBC model, for benchmarks, tests and logs.

Every message of the network is sent at its cycle time (the DBC's ``GenMsgCycleTime``, else
100 ms). Counters count, checksums vary, value-table signals mostly hold and sometimes switch,
numeric signals drift within their DBC range: data changes the way it does on a real bus, so a
benchmark over it cannot live on repeated identical frames.
"""

from __future__ import annotations

import random
import re
from typing import Any

import can
from cantools.database.can import Message
from cantools.database.can import Signal as DbcSignal

from anycar.can.codec import physical_range
from anycar.can.network import CanNetwork

_COUNTER = re.compile(r"(counter|cnt|alive|rolling)", re.IGNORECASE)
_CHECKSUM = re.compile(r"(checksum|crc|chksm|_cs$|parity)", re.IGNORECASE)
DEFAULT_CYCLE_S = 0.1


def _raw_bounds(sig: DbcSignal) -> tuple[int, int]:
    if sig.is_signed:
        return -(2 ** (sig.length - 1)), 2 ** (sig.length - 1) - 1
    return 0, 2**sig.length - 1


class _SignalState:
    def __init__(self, sig: DbcSignal, rnd: random.Random) -> None:
        self.sig = sig
        lo, hi = _raw_bounds(sig)
        rng = physical_range(sig)
        if rng is not None and sig.minimum is not None and sig.maximum is not None and sig.scale:
            a = round((float(sig.minimum) - sig.offset) / sig.scale)
            b = round((float(sig.maximum) - sig.offset) / sig.scale)
            lo, hi = max(lo, min(a, b)), min(hi, max(a, b))
        if sig.choices:
            keys = [int(k) for k in sig.choices if lo <= int(k) <= hi]
            self.choices = keys or [lo]
        else:
            self.choices = []
        self.lo, self.hi = lo, max(lo, hi)
        self.kind = (
            "counter" if _COUNTER.search(sig.name) else "checksum" if _CHECKSUM.search(sig.name) else "value"
        )
        self.raw = rnd.choice(self.choices) if self.choices else rnd.randint(self.lo, self.hi)
        self.step = max(1, (self.hi - self.lo) // 200)

    def advance(self, rnd: random.Random) -> int:
        if self.kind == "counter":
            self.raw = self.lo if self.raw >= self.hi else self.raw + 1
        elif self.kind == "checksum":
            self.raw = rnd.randint(self.lo, self.hi)
        elif self.choices:
            if rnd.random() < 0.02:
                self.raw = rnd.choice(self.choices)
        elif self.sig.length == 1:
            if rnd.random() < 0.02:
                self.raw ^= 1
        elif rnd.random() < 0.5:
            self.raw = min(self.hi, max(self.lo, self.raw + rnd.randint(-self.step, self.step)))
        return self.raw


def _cycle(message: Message) -> float:
    ms = message.cycle_time
    return ms / 1000.0 if ms else DEFAULT_CYCLE_S


def _encode_raw(message: Message, raws: dict[str, int]) -> bytes:
    data: bytes = message.encode(raws, scaling=False, strict=False, padding=False)
    return data


def traffic(
    network: CanNetwork,
    count: int,
    *,
    seed: int = 1,
    start: float = 0.0,
    only_mapped: set[tuple[str, int]] | None = None,
) -> list[can.Message]:
    """``count`` frames of every message of the network, in time order."""
    rnd = random.Random(seed)  # nosec B311 # seeded synthetic CAN traffic for tests, not security
    streams: list[dict[str, Any]] = []
    for bus in network.buses:
        for key, (msg, _dbc) in network.frames(bus.name).items():
            if only_mapped is not None and (bus.name, key) not in only_mapped:
                continue
            if msg.is_container or msg.length == 0:
                continue
            states = [_SignalState(s, rnd) for s in msg.signals]
            streams.append(
                {
                    "msg": msg,
                    "channel": bus.channel or bus.name,
                    "states": states,
                    "period": _cycle(msg),
                    "next": start + rnd.random() * _cycle(msg),
                }
            )
    out: list[can.Message] = []
    if not streams:
        return out
    while len(out) < count:
        s = min(streams, key=lambda x: x["next"])
        message: Message = s["msg"]
        raws = _mux_consistent(message, {st.sig.name: st.advance(rnd) for st in s["states"]})
        try:
            data = _encode_raw(message, raws)
        except Exception:
            s["next"] += s["period"]
            continue
        out.append(
            can.Message(
                timestamp=s["next"],
                arbitration_id=message.frame_id,
                is_extended_id=bool(message.is_extended_frame),
                is_fd=bool(message.is_fd) or int(message.length) > 8,
                data=data,
                channel=s["channel"],
            )
        )
        s["next"] += s["period"]
    return out


def _mux_consistent(message: Message, raws: dict[str, int]) -> dict[str, int]:
    """Keep only the signals of the variant the selector picks (cantools encodes exactly those)."""
    if not message.is_multiplexed():
        return raws
    out = {}
    for sig in message.signals:
        if sig.multiplexer_ids is None:
            out[sig.name] = raws[sig.name]
    for sig in message.signals:
        if sig.is_multiplexer:
            ids = sorted(
                {
                    i
                    for s in message.signals
                    if s.multiplexer_signal == sig.name
                    for i in s.multiplexer_ids or ()
                }
            )
            if ids and raws[sig.name] not in ids:
                out[sig.name] = ids[raws[sig.name] % len(ids)]
    for sig in message.signals:
        selector = sig.multiplexer_signal
        if (
            sig.multiplexer_ids is not None
            and selector is not None
            and out.get(selector) in sig.multiplexer_ids
        ):
            out[sig.name] = raws[sig.name]
    return out
