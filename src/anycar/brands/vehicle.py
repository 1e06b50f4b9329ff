"""A profile put to work: the CAN adapter for a broker, and the frame encoder a simulator uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import can

from anycar.brands.profile import BrandProfile, load_profile
from anycar.broker import SignalBroker
from anycar.can.adapter import CanAdapter, Sender
from anycar.can.encoder import VssEncoder
from anycar.can.mapping import unit_renames
from anycar.model import load_overlay


def _profile(profile: BrandProfile | str) -> BrandProfile:
    return load_profile(profile) if isinstance(profile, str) else profile


def adapter_for(
    profile: BrandProfile | str, broker: SignalBroker, *, send: Sender | None = None, name: str | None = None
) -> CanAdapter:
    """A CAN adapter publishing this profile's signals into ``broker`` (provider ``can:<id>``).

    The profile's VSS overlays are applied to the broker's catalog first (a bad one is refused
    whole, naming file, line, node and field; older VSS unit names are read as VSS 6.0's, and
    KUKSA's ``dbc2vss``/``vss2dbc`` attributes are ignored there: the mapping carries the rules).
    """
    p = _profile(profile)
    for path in p.overlay_files():
        overlay = load_overlay(path, extended_attributes=True)
        renames = unit_renames()
        for node in overlay.nodes:
            unit = node.attrs.get("unit")
            if isinstance(unit, str) and unit in renames:
                node.attrs["unit"] = renames[unit]
        broker.catalog.apply_overlay(overlay)
    return CanAdapter(broker, p.network(), p.mapping(), name=name or f"can:{p.id}", send=send)


class ProfileEncoder:
    """Encodes VSS values into this profile's CAN frames with its ``vss2dbc`` rules.

    It keeps state: the signals a call does not name keep the value of earlier calls (else the
    DBC default), as they would on a real bus. Each frame's ``channel`` is its bus's channel
    (or the bus name), so frames of a multi-bus car can be written to one log and read back.
    """

    def __init__(self, profile: BrandProfile | str) -> None:
        self.profile = _profile(profile)
        self.encoder = VssEncoder(self.profile.network(), self.profile.mapping())
        self._channels = {b.name: b.channel or b.name for b in self.profile.buses}

    @property
    def paths(self) -> list[str]:
        """The VSS paths this profile can encode."""
        return self.encoder.paths

    def encode(self, values: Mapping[str, Any], timestamp: float | None = None) -> list[can.Message]:
        """Frames carrying ``values`` (VSS path -> value); raises ``UnknownPath`` / ``InvalidValue``."""
        frames = []
        for bus, msg in self.encoder.encode(values):
            msg.channel = self._channels[bus]
            if timestamp is not None:
                msg.timestamp = timestamp
            frames.append(msg)
        return frames


def frame_encoder(profile: BrandProfile | str) -> ProfileEncoder:
    return ProfileEncoder(profile)


def encode_vss(profile: BrandProfile | str, values: Mapping[str, Any]) -> list[can.Message]:
    """One-shot: the frames that carry ``values`` for this profile (other signals at defaults)."""
    return ProfileEncoder(profile).encode(values)
