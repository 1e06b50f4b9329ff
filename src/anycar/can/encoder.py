"""From VSS values to frames (``vss2dbc``): actuator requests, and a simulator driving a bus.

Values for signals of the same message are merged into one frame; the message's other signals
keep the value last received on the bus (``observe``) or last encoded, else the DBC default.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from typing import Any

import can

from anycar.can.codec import FrameEncoder, frame_key
from anycar.can.mapping import Mapping, MappingRule
from anycar.can.network import CanNetwork, SignalRef
from anycar.can.transform import Transform, TransformFailed, compile_transform
from anycar.errors import AnycarError, InvalidValue, UnknownPath


@dataclass(slots=True)
class _Target:
    rule: MappingRule
    ref: SignalRef
    transform: Transform | None
    to_dbc: dict[str, int]


class VssEncoder:
    """Encodes VSS values into CAN frames with the ``vss2dbc`` rules of a mapping."""

    def __init__(self, network: CanNetwork, mapping: Mapping) -> None:
        self.network = network
        self.problems: list[str] = []
        self.encoders: dict[tuple[str, int], FrameEncoder] = {}
        self.targets: dict[str, list[_Target]] = {}
        for rule in mapping.vss2dbc:
            where = f"{rule.where()}: {rule.path}"
            refs = network.find(rule.signal, bus=rule.bus, message=rule.message)
            if not refs:
                self.problems.append(f"{where}: vss2dbc signal {rule.signal!r} is in none of the DBC files")
                continue
            ref = refs[0]
            try:
                transform = compile_transform(rule.transform, _vss_key, where)
            except AnycarError as exc:
                self.problems.append(str(exc))
                continue
            to_dbc = {str(v): int(k) for k, v in (ref.signal.choices or {}).items()}
            self.targets.setdefault(rule.path, []).append(_Target(rule, ref, transform, to_dbc))

    @property
    def paths(self) -> list[str]:
        return list(self.targets)

    def encoder_for(self, ref: SignalRef) -> FrameEncoder:
        key = (ref.bus, frame_key(ref.message.frame_id, bool(ref.message.is_extended_frame)))
        enc = self.encoders.get(key)
        if enc is None:
            enc = self.encoders[key] = FrameEncoder(ref.message)
        return enc

    def dbc_value(self, target: _Target, value: Any) -> Any:
        """The DBC physical value for a VSS value; raises ``TransformFailed``."""
        x = value
        if target.transform is not None:
            x = target.transform(value)
        if isinstance(x, str):
            if x not in target.to_dbc:
                raise TransformFailed(f"{x!r} is not in the value table of {target.ref.signal.name}")
            x = target.to_dbc[x]
        if isinstance(x, bool):
            x = int(x)
        if not isinstance(x, (int, float)):
            raise TransformFailed(f"{x!r} cannot be written to DBC signal {target.ref.signal.name}")
        return x

    def encode(self, values: MappingABC[str, Any]) -> list[tuple[str, can.Message]]:
        """Frames (with the bus each goes on) carrying ``values`` (VSS path -> value).

        Raises ``UnknownPath`` for a path without a vss2dbc rule and ``InvalidValue`` for a
        value that its transform or the DBC's range refuses; nothing is encoded then.
        """
        grouped: dict[tuple[str, int, int | None], dict[str, Any]] = {}
        refs: dict[tuple[str, int, int | None], SignalRef] = {}
        for path, value in values.items():
            targets = self.targets.get(path)
            if not targets:
                raise UnknownPath(path, "no vss2dbc rule maps this signal")
            for target in targets:
                try:
                    phys = self.dbc_value(target, value)
                except TransformFailed as exc:
                    raise InvalidValue(path, str(exc)) from None
                ref = target.ref
                sig = ref.signal
                # a multiplexed signal travels in a frame whose selector names its variant
                variant = int(sig.multiplexer_ids[0]) if sig.multiplexer_ids else None
                key = (ref.bus, frame_key(ref.message.frame_id, bool(ref.message.is_extended_frame)), variant)
                updates = grouped.setdefault(key, {})
                updates[sig.name] = phys
                if variant is not None and sig.multiplexer_signal is not None:
                    updates[sig.multiplexer_signal] = variant
                refs[key] = ref
        frames: list[tuple[str, can.Message]] = []
        for key, updates in grouped.items():
            enc = self.encoder_for(refs[key])
            try:
                frames.append((key[0], enc.encode(updates, commit=False)))
            except Exception as exc:  # cantools' range and type errors
                names = ", ".join(f"{k}={v!r}" for k, v in updates.items())
                raise InvalidValue(
                    ",".join(values), f"message {refs[key].message.name} refuses {names}: {exc}"
                ) from None
        for key, updates in grouped.items():
            self.encoder_for(refs[key]).commit(updates)
        return frames


def _vss_key(value: Any) -> Any:
    return value
