"""The CAN adapter: a broker provider that turns frames into VSS values and requests into frames.

Frames come from any source (a python-can bus, a log replay, a test) through ``feed`` or
``feed_many``; updates are published in one batch per call. Requests for mapped actuators are
encoded with ``vss2dbc`` and handed to ``send`` (a python-can bus's ``send``, or any callable);
an adapter without ``send`` (a replay) refuses them with a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import can

from anycar.broker import SignalBroker
from anycar.broker.actuation import ActuationRejected, ActuationRequest
from anycar.can.codec import frame_key
from anycar.can.compiled import compile_frame
from anycar.can.decoder import BadInput, FrameDecoder, Update, compile_decoders
from anycar.can.encoder import VssEncoder
from anycar.can.mapping import Mapping
from anycar.can.network import CanNetwork
from anycar.errors import AnycarError
from anycar.model import Catalog

Sender = Callable[[str, can.Message], None]


def apply_mapping_overlay(catalog: Catalog, mapping: Mapping) -> tuple[list[str], dict[str, str]]:
    """Add the signals a mapping defines that the catalog lacks; never change standard ones.

    Returns the paths added and, for each node the catalog refuses, a problem naming its file,
    line, path, DBC signal and reason: that node's rules cannot be used, the others still are.
    """
    from anycar.model import Overlay

    added: list[str] = []
    problems: dict[str, str] = {}
    signals = {r.path: r.signal for r in mapping.rules}
    for node in mapping.overlay.nodes:
        if catalog.find(node.path) is not None or catalog.is_branch(node.path):
            continue
        try:
            catalog.apply_overlay(Overlay([node], mapping.overlay.source))
        except AnycarError as exc:
            problems[node.path] = f"{exc} (DBC signal {signals.get(node.path, '?')}); rule not used"
            continue
        added.append(node.path)
    return added, problems


class CanAdapter:
    """One vehicle's CAN network as a broker provider (named ``name``).

    It claims every VSS signal its ``dbc2vss`` rules provide and every actuator its ``vss2dbc``
    rules can set. ``compiled=False`` keeps the generic decoding loop (for comparison in tests).
    ``problems`` lists the rules that could not be used, each with its file and line.
    """

    def __init__(
        self,
        broker: SignalBroker,
        network: CanNetwork,
        mapping: Mapping,
        *,
        name: str = "can",
        send: Sender | None = None,
        compiled: bool = True,
    ) -> None:
        self.broker = broker
        self.network = network
        self.mapping = mapping
        self.name = name
        self.send = send
        self.bad = BadInput()
        self.frames = 0
        self.published = 0
        _added, refused = apply_mapping_overlay(broker.catalog, mapping)
        built = compile_decoders(network, mapping, broker.catalog, refused=set(refused))
        self.encoder = VssEncoder(network, mapping)
        self.problems = (
            list(mapping.problems) + list(refused.values()) + built.problems + self.encoder.problems
        )
        self._by_bus = built.by_bus
        self._any_bus = built.any_bus
        self._channels = built.channels
        self._single = built.by_bus[network.buses[0].name] if len(network.buses) == 1 else None
        # frames seen on a bus's channel (or named after the bus) go to that bus's decoders
        self._channel_frames: dict[Any, dict[int, FrameDecoder]] = {}
        for b in network.buses:
            self._channel_frames[b.name] = built.by_bus[b.name]
            if b.channel:
                self._channel_frames[b.channel] = built.by_bus[b.name]
        for (bus, key), enc in self._encoder_slots():
            dec = self._by_bus.get(bus, {}).get(key)
            if dec is not None:
                dec.keep_last = True
                enc.source = dec  # requests keep the other signals at their last received values
        for frames in self._by_bus.values():
            for dec in frames.values():
                dec.run = (compile_frame(dec) if compiled else None) or dec.process
        actuators = [p for p in self.encoder.paths if broker.catalog.find(p) is not None]
        claims = list(dict.fromkeys([*built.paths, *actuators]))
        self.provider = broker.register_provider(name, claims, on_actuate=self._on_actuate)
        self.paths = built.paths

    def _encoder_slots(self) -> list[tuple[tuple[str, int], Any]]:
        out = []
        for targets in self.encoder.targets.values():
            for t in targets:
                ref = t.ref
                key = (ref.bus, frame_key(ref.message.frame_id, bool(ref.message.is_extended_frame)))
                out.append((key, self.encoder.encoder_for(ref)))
        return out

    # -- frames in ---------------------------------------------------------------------------
    def _decoder(self, msg: can.Message) -> FrameDecoder | None:
        key = msg.arbitration_id | 0x80000000 if msg.is_extended_id else msg.arbitration_id
        if self._single is not None:
            return self._single.get(key)
        frames = self._channel_frames.get(msg.channel)
        if frames is None:
            channel = msg.channel
            bus = self._channels.get(str(channel)) if channel is not None else None
            frames = self._by_bus[bus] if bus is not None else self._any_bus
        return frames.get(key)

    def decode(self, messages: Iterable[can.Message]) -> list[Update]:
        """The VSS updates a run of frames yields, without publishing them."""
        out: list[Update] = []
        bad = self.bad
        single = self._single
        by_channel = self._channel_frames
        n = 0
        for msg in messages:
            n += 1
            if msg.is_error_frame or msg.is_remote_frame:
                if msg.is_error_frame:
                    bad.error_frames += 1
                else:
                    bad.remote_frames += 1
                continue
            key = msg.arbitration_id | 0x80000000 if msg.is_extended_id else msg.arbitration_id
            frames = single if single is not None else by_channel.get(msg.channel)
            dec = frames.get(key) if frames is not None else self._decoder(msg)
            if dec is None:
                bad.unknown_id += 1
                continue
            dec.run(msg.data, msg.timestamp, out, bad)  # type: ignore[arg-type,misc]
        self.frames += n
        return out

    def feed_many(self, messages: Iterable[can.Message]) -> list[Update]:
        """Decode frames and publish what changed in one batch; returns the accepted updates."""
        updates = self.decode(messages)
        if updates:
            return self._publish(updates)
        return updates

    def feed(self, message: can.Message) -> list[Update]:
        return self.feed_many((message,))

    def _publish(self, updates: list[Update]) -> list[Update]:
        errors = self.provider.publish_many(updates)
        if errors:
            self.bad.vss_rejected += len(errors)
            accepted = [u for u in updates if u[0] not in errors]
        else:
            accepted = updates
        self.published += len(accepted)
        return accepted

    # -- requests out ------------------------------------------------------------------------
    def encode(self, values: dict[str, Any]) -> list[tuple[str, can.Message]]:
        return self.encoder.encode(values)

    def _on_actuate(self, request: ActuationRequest) -> None:
        if self.send is None:
            raise ActuationRejected("no CAN bus to send on (this adapter only reads)")
        try:
            frames = self.encoder.encode({request.path: request.value})
        except AnycarError as exc:
            raise ActuationRejected(str(exc)) from None
        for bus, frame in frames:
            try:
                self.send(bus, frame)
            except can.CanError as exc:
                raise ActuationRejected(f"sending on bus {bus!r} failed: {exc}") from None

    def stats(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "published": self.published,
            "bad_input": self.bad.as_dict(),
            "problems": len(self.problems),
        }

    def close(self) -> None:
        self.provider.close()
