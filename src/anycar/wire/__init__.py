"""The uplink's message format: the only thing the hub and the fleet cloud share.

Topics (``topics``), JSON Schemas of every message (``data/``, checked by ``schema``), CBOR or
JSON bytes with optional deflate (``codec``), builders (``messages``), Ed25519 signatures of
campaigns and commands (``signature``) and dropping duplicates by (vehicle, boot, seq)
(``dedup``). It imports no other part of anycar, so either side can depend on it alone.
Described for people in ``docs/uplink.md`` and as AsyncAPI 3 in ``docs/asyncapi.yaml``.
"""

from anycar.wire.codec import MAX_PAYLOAD, Format, content_type, decode, encode
from anycar.wire.dedup import Deduplicator
from anycar.wire.errors import WireError
from anycar.wire.messages import VERSION, Origin, Sample, new_boot_id, samples
from anycar.wire.topics import ROOT, Channel, check_vehicle, parse_topic, subscription, topic

__all__ = [
    "MAX_PAYLOAD",
    "ROOT",
    "VERSION",
    "Channel",
    "Deduplicator",
    "Format",
    "Origin",
    "Sample",
    "WireError",
    "check_vehicle",
    "content_type",
    "decode",
    "encode",
    "new_boot_id",
    "parse_topic",
    "samples",
    "subscription",
    "topic",
]
