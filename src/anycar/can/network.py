"""A vehicle's CAN network: one or more named buses, each described by one or more DBC files."""

from __future__ import annotations

from dataclasses import dataclass, field

from cantools.database.can import Message
from cantools.database.can import Signal as DbcSignal

from anycar.can.codec import frame_key
from anycar.can.dbc import LoadedDbc


@dataclass(slots=True)
class Bus:
    """One CAN bus of a vehicle: a name used in mappings, its DBCs, and the channel it is seen on."""

    name: str
    dbcs: list[LoadedDbc]
    channel: str | None = None


@dataclass(slots=True, frozen=True)
class SignalRef:
    bus: str
    message: Message
    signal: DbcSignal
    dbc: LoadedDbc

    def line(self) -> int | None:
        return self.dbc.signal_line(self.message.name, self.signal.name)


@dataclass(slots=True)
class CanNetwork:
    buses: list[Bus]
    _index: dict[str, list[SignalRef]] = field(default_factory=dict, init=False)
    _messages: dict[str, dict[int, tuple[Message, LoadedDbc]]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for bus in self.buses:
            frames = self._messages.setdefault(bus.name, {})
            for dbc in bus.dbcs:
                renamed_back = {new: old for (_, old), new in dbc.renamed.items()}
                for msg in dbc.db.messages:
                    frames[frame_key(msg.frame_id, bool(msg.is_extended_frame))] = (msg, dbc)
                    for sig in msg.signals:
                        ref = SignalRef(bus.name, msg, sig, dbc)
                        self._index.setdefault(sig.name, []).append(ref)
                        if sig.name in renamed_back:
                            self._index.setdefault(renamed_back[sig.name], []).append(ref)

    @property
    def bus_names(self) -> list[str]:
        return [b.name for b in self.buses]

    def bus(self, name: str) -> Bus | None:
        return next((b for b in self.buses if b.name == name), None)

    def find(self, signal: str, *, bus: str | None = None, message: str | None = None) -> list[SignalRef]:
        """Every place a DBC signal of this name is carried, narrowed by bus and message name."""
        return [
            r
            for r in self._index.get(signal, ())
            if (bus is None or r.bus == bus) and (message is None or r.message.name == message)
        ]

    def frames(self, bus: str) -> dict[int, tuple[Message, LoadedDbc]]:
        return self._messages.get(bus, {})

    def all_frames(self) -> list[tuple[str, Message, LoadedDbc]]:
        return [(b, m, d) for b, frames in self._messages.items() for m, d in frames.values()]
