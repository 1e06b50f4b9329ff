"""Proofs of delivery as a hub sends them: a record signed with the hub's own Ed25519 key
(``anycar.wire.signature``, as ``anycar.uplink.delivery`` signs it), in a ``pod`` message,
encoded and judged by the fleet's ingest (``ingest.judge``) and stored by ``Store.commit``, the
path an ingest worker takes for a message from MQTT. A photo thumbnail is a real PNG."""

from __future__ import annotations

import base64
import hashlib
import struct
import time
import zlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from anycar.fleet.ingest import judge
from anycar.fleet.store import Accepted, Store
from anycar.uplink.delivery import pin_digest, public_b64
from anycar.wire import signature
from anycar.wire.codec import encode
from anycar.wire.messages import Origin, new_boot_id, pod
from anycar.wire.topics import Channel, topic


def png(width: int = 32, height: int = 24, seed: int = 7) -> bytes:
    """A small RGB PNG: a gradient, as the virtual cargo camera's still is."""
    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in ((x * 8 + seed) % 256, (y * 10) % 256, 128))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    head = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", head)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class PodHub:
    """One vehicle's hub key and message sequence."""

    def __init__(self, store: Store, wire_id: str, key: Ed25519PrivateKey | None = None) -> None:
        self.store, self.key = store, key or Ed25519PrivateKey.generate()
        self.origin, self.seq = Origin(wire_id, new_boot_id()), 0

    def record(
        self,
        order: str,
        plan: int,
        *,
        lat: float,
        lon: float,
        drop_kg: float,
        pin: str | None,
        outcome: str = "delivered",
        opened: bool = True,
        photo: bool = True,
        version: int = 1,
    ) -> dict[str, Any]:
        now = time.time()
        image = png(seed=len(order))
        return signature.sign(
            {
                "order": order,
                "plan": plan,
                "version": version,
                "outcome": outcome,
                "ts": now,
                "position": {"lat": lat, "lon": lon},
                "door": {
                    "path": "Vehicle.Accessories.CargoSensor1.IsOpen",
                    "opened": now - 50 if opened else None,
                    "closed": now - 10 if opened else None,
                },
                "weight": {
                    "path": "Vehicle.Accessories.CargoSensor1.Weight",
                    "before_kg": 20.0,
                    "after_kg": 20.0 - drop_kg,
                    "drop_kg": drop_kg,
                },
                "pin": {
                    "source": "Vehicle.Accessories.ButtonPanel1.LastPressed" if pin else None,
                    "digest": pin_digest(order, pin) if pin else None,
                },
                "photo": {
                    "sha256": hashlib.sha256(image).hexdigest(),
                    "thumbnail": "data:image/png;base64," + base64.b64encode(image).decode(),
                }
                if photo
                else None,
            },
            self.key,
        )

    def accepted(self, record: dict[str, Any]) -> Accepted:
        """The ``pod`` message as the ingest accepts it (encoded, decoded, checked)."""
        self.seq += 1
        doc = pod(self.origin, self.seq, record, public_b64(self.key), ts=time.time())
        verdict = judge(self.store, topic(self.origin.vehicle, Channel.POD), encode(doc), time.time())
        if not isinstance(verdict, Accepted):
            raise AssertionError(f"the ingest refused the POD: {verdict}")
        return verdict

    def send(self, record: dict[str, Any]) -> None:
        if self.store.commit([self.accepted(record)]).messages != 1:
            raise AssertionError("the POD was not stored")
