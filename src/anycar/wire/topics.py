"""The topic layout ``anycar/v1/{vehicle}/{channel}``: who publishes where, and what a topic says.

Uplink channels (the hub publishes): ``telemetry``, ``events``, ``state`` (retained; the last
will says ``offline``), ``campaign-acks``, ``command-results``. Downlink channels (the fleet
publishes, the hub subscribes): ``campaigns``, ``commands``. One vehicle's topics share one
prefix, so a broker ACL of ``anycar/v1/%u/#`` keeps every vehicle to its own.
"""

from __future__ import annotations

import re
from enum import StrEnum

from anycar.wire.errors import WireError

ROOT = "anycar/v1"
_VEHICLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class Channel(StrEnum):
    TELEMETRY = "telemetry"
    EVENTS = "events"
    STATE = "state"
    CAMPAIGN_ACKS = "campaign-acks"
    COMMAND_RESULTS = "command-results"
    CAMPAIGNS = "campaigns"
    COMMANDS = "commands"
    INVENTORY = "inventory"  # fleet-commands: the hub's fitted accessories
    POD = "pod"  # delivery-exec: proofs of delivery, signed by the hub

    @property
    def uplink(self) -> bool:
        """True for what the hub publishes, False for what the fleet sends down."""
        return self not in (Channel.CAMPAIGNS, Channel.COMMANDS)


def check_vehicle(vehicle: str) -> str:
    """A vehicle id usable as one topic level: 1-64 of ``A-Z a-z 0-9 _ . : -``, no wildcards."""
    if not isinstance(vehicle, str) or not _VEHICLE.match(vehicle):
        raise WireError(
            f"vehicle id {vehicle!r} must be 1-64 characters of A-Z a-z 0-9 _ . : - (starting with a "
            "letter or digit)",
            reason="bad_vehicle",
            where="vehicle",
        )
    return vehicle


def topic(vehicle: str, channel: Channel | str) -> str:
    return f"{ROOT}/{check_vehicle(vehicle)}/{Channel(channel)}"


def subscription(channel: Channel | str, vehicle: str = "+") -> str:
    """A filter for one channel of one vehicle, or of every vehicle (``+``)."""
    return f"{ROOT}/{vehicle if vehicle == '+' else check_vehicle(vehicle)}/{Channel(channel)}"


def parse_topic(name: str) -> tuple[str, Channel]:
    """``(vehicle, channel)`` of a topic, or ``WireError`` if it is not one of ours."""
    parts = name.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != ROOT:
        raise WireError(f"topic {name!r} is not {ROOT}/VEHICLE/CHANNEL", reason="bad_topic", where="topic")
    try:
        channel = Channel(parts[3])
    except ValueError:
        raise WireError(
            f"topic {name!r}: {parts[3]!r} is not one of {', '.join(c.value for c in Channel)}",
            reason="bad_topic",
            where="topic",
        ) from None
    return check_vehicle(parts[2]), channel
