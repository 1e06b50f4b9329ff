"""The Eclipse KUKSA CAN provider's receive path, rebuilt as a baseline and a reference.

Modelled on kuksa-can-provider's ``dbcfeederlib`` (Apache-2.0): ``canreader.CanReader`` keeps only
frames of mapped ids (its CAN filter), decodes the whole message with cantools
(``Message.decode(data, allow_truncated=True, decode_containers=True)``), drops numeric values
outside the DBC ``[min|max]``, then for each mapping of each decoded signal checks
``VSSMapping.time_condition_fulfilled`` (which uses the interval up) and the ``multiplexer``
filter; the feeder's loop then runs ``transform_value`` (a ``mapping`` table searched in order, or
a ``math`` formula parsed by py-expression-eval on every value) and
``change_condition_fulfilled`` and sends what passes. Mappings are keyed by DBC signal name and
shared by every message carrying it, as in KUKSA's ``Mapper``.

Two things differ, both so that the model can run on recorded frames: the time of an
observation is the frame's timestamp (KUKSA takes ``time.time()`` when it reads the frame, which
is the same when a log is replayed at its pace), and the first observation passes because no
time is stored yet (KUKSA's sentinel is ``last_time == 0.0``). ``bench.can`` times it against the
adapter; ``tests/test_can_gating.py`` uses it as the reference for the interval and change rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import can
from cantools.database.can import Message
from cantools.database.namedsignalvalue import NamedSignalValue
from py_expression_eval import Parser

from anycar.can.codec import frame_key
from anycar.can.mapping import Mapping
from anycar.can.network import CanNetwork
from anycar.model import Catalog

Update = tuple[str, Any]


@dataclass(slots=True)
class KuksaMapping:
    """``dbc2vssmapper.VSSMapping``: one VSS signal fed by one DBC signal."""

    vss_name: str
    dbc_name: str
    transform: dict[str, Any] | None
    interval_ms: int
    on_change: bool
    datatype: str
    multiplexer: list[tuple[str, int]] = field(default_factory=list)
    last_time: float | None = None
    last_vss_value: Any = None

    parser = Parser()

    def time_condition_fulfilled(self, time: float) -> bool:
        fulfilled = True
        if self.interval_ms > 0 and self.last_time is not None:
            diff_ms = (time - self.last_time) * 1000.0
            if diff_ms < self.interval_ms:
                fulfilled = False
        if fulfilled:
            self.last_time = time  # set before the value is known, as KUKSA does
        return fulfilled

    def change_condition_fulfilled(self, vss_value: Any) -> bool:
        fulfilled = False
        if vss_value is not None:
            if self.last_vss_value is None:
                fulfilled = True
            elif self.on_change:
                fulfilled = self.last_vss_value != vss_value
            else:
                fulfilled = True
        if fulfilled:
            self.last_vss_value = vss_value
        return fulfilled

    def transform_value(self, value: Any) -> Any:
        if self.transform is None:
            if isinstance(value, NamedSignalValue):  # cantools.database.can.signal's, in KUKSA
                return value.name if self.datatype == "string" else value.value
            return value
        if "mapping" in self.transform:
            for item in self.transform["mapping"]:
                if item["from"] == value:
                    return item["to"]
            return None
        try:
            return self.parser.parse(self.transform["math"]).evaluate({"x": value})
        except Exception:  # KUKSA logs a warning and ignores the value
            return None


class KuksaProvider:
    """Frames in, VSS updates out, the way the KUKSA CAN provider does it."""

    def __init__(self, network: CanNetwork, mapping: Mapping, catalog: Catalog) -> None:
        # per message, the mappings of each signal; a mapping object is shared by every message
        # carrying its signal (KUKSA keys them by signal name). anycar's optional ``bus`` and
        # ``message`` keys narrow the messages, so a profile using them does the same work here.
        self.by_message: dict[int, dict[str, list[KuksaMapping]]] = {}
        self.frames: dict[str | None, dict[int, Message]] = {}
        for rule in mapping.dbc2vss:
            sig = catalog.find(rule.path)
            refs = network.find(rule.signal, bus=rule.bus, message=rule.message)
            if sig is None or not refs:
                continue
            m = KuksaMapping(
                rule.path,
                rule.signal,
                dict(rule.transform) if rule.transform is not None else None,
                rule.interval_ms,
                rule.on_change,
                sig.datatype,
                list(rule.multiplexer),
            )
            for ref in refs:
                # the CAN filter: only messages carrying a mapped signal, per channel (KUKSA: one bus)
                key = frame_key(ref.message.frame_id, bool(ref.message.is_extended_frame))
                bus = network.bus(ref.bus)
                channel = (bus.channel or bus.name) if bus is not None else ref.bus
                self.frames.setdefault(channel, {})[key] = ref.message
                self.frames.setdefault(None, {}).setdefault(key, ref.message)
                table = self.by_message.setdefault(id(ref.message), {})
                table.setdefault(ref.signal.name, []).append(m)
        self.frames.setdefault(None, {})

    def process(self, frames: Iterable[can.Message]) -> list[Update]:
        """``CanReader._process_can_message`` and the feeder's send loop, for a run of frames."""
        out: list[Update] = []
        by_channel = self.frames
        anywhere = by_channel[None]
        for msg in frames:
            channel = msg.channel
            table = by_channel.get(channel, anywhere) if isinstance(channel, str) else anywhere
            key = msg.arbitration_id | 0x80000000 if msg.is_extended_id else msg.arbitration_id
            message = table.get(key)
            if message is None:
                continue  # filtered out by the kernel in KUKSA
            try:
                decoded = message.decode(bytes(msg.data), allow_truncated=True, decode_containers=True)
            except Exception:  # KUKSA logs "Error processing CAN message" and goes on  # nosec B112 # the modelled KUKSA provider skips a frame it cannot decode, as KUKSA does
                continue
            if isinstance(decoded, dict):
                self._handle(message, decoded, msg.timestamp, out)
        return out

    def _handle(self, message: Message, decoded: dict[str, Any], rx_time: float, out: list[Update]) -> None:
        mappings = self.by_message.get(id(message), {})
        for name, raw in decoded.items():
            if isinstance(raw, (int, float)):
                sig = message.get_signal_by_name(name)
                if sig.minimum is not None and raw < sig.minimum:
                    continue
                if sig.maximum is not None and raw > sig.maximum:
                    continue
            for m in mappings.get(name, ()):
                if not m.time_condition_fulfilled(rx_time):
                    continue
                if any(decoded.get(s) != v for s, v in m.multiplexer):
                    continue
                value = m.transform_value(raw)  # in KUKSA: after the queue, in the feeder loop
                if m.change_condition_fulfilled(value):
                    out.append((m.vss_name, value))
