"""The trust registry: vendor keys the owner accepts, as Matter's Distributed Compliance Ledger
lists vendors' attestation keys. Keys can be added and revoked; both persist in the hub's SQLite
file. A manifest is attested when its signature verifies with a non-revoked key of the very
vendor the manifest names.

The table is the shared store: ``anycar accessory trust add|revoke`` may change it from another
process while a hub runs, and the hub's ``watch`` sees the change within ``interval`` (a
revocation then ends the sessions under that key, through the ``on_revoke`` listeners).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anycar.accessories import signing
from anycar.accessories.errors import AttestationError
from anycar.policy.db import open_db

SCHEMA = """
CREATE TABLE IF NOT EXISTS vendor_keys (
    key_id TEXT PRIMARY KEY,
    vendor_id INTEGER NOT NULL,
    public_key TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    added_at REAL NOT NULL,
    revoked_at REAL,
    revoke_reason TEXT
);
"""


@dataclass(frozen=True, slots=True)
class VendorKey:
    key_id: str
    vendor_id: int
    public_key: str  # base64 of the raw 32 bytes
    label: str
    added_at: float
    revoked_at: float | None = None
    revoke_reason: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "vendor_id": self.vendor_id,
            "public_key": self.public_key,
            "label": self.label,
            "added_at": self.added_at,
            "revoked_at": self.revoked_at,
            "revoke_reason": self.revoke_reason,
        }


class TrustRegistry:
    """Vendor keys by key id; ``db_path=None`` keeps them in memory."""

    def __init__(self, db_path: str | Path | None = None) -> None:
        self._keys: dict[str, VendorKey] = {}
        self._db: sqlite3.Connection | None = open_db(db_path, SCHEMA) if db_path is not None else None
        self._on_revoke: list[Callable[[VendorKey], None]] = []
        for entry in self._stored():
            self._keys[entry.key_id] = entry

    def _stored(self) -> list[VendorKey]:
        if self._db is None:
            return []
        return [
            VendorKey(
                r["key_id"],
                r["vendor_id"],
                r["public_key"],
                r["label"],
                r["added_at"],
                r["revoked_at"],
                r["revoke_reason"],
            )
            for r in self._db.execute("SELECT * FROM vendor_keys")
        ]

    def refresh(self) -> list[VendorKey]:
        """Take what another process changed in the store; the keys it revoked are returned and
        told to the ``on_revoke`` listeners (a revocation is never undone here)."""
        revoked: list[VendorKey] = []
        for entry in self._stored():
            known = self._keys.get(entry.key_id)
            if known is None or (entry.revoked and not known.revoked):
                self._keys[entry.key_id] = entry
                if entry.revoked:
                    revoked.append(entry)
        for entry in revoked:
            self._tell_revoked(entry)
        return revoked

    async def watch(self, interval: float = 0.25) -> None:
        """Refresh from the store every ``interval`` seconds (run it under the hub's supervisor)."""
        while True:
            await asyncio.sleep(interval)
            self.refresh()

    def on_revoke(self, listener: Callable[[VendorKey], None]) -> None:
        self._on_revoke.append(listener)

    def add(self, vendor_id: int, public_key: str, label: str = "") -> VendorKey:
        """Trust ``public_key`` (base64 raw) for ``vendor_id``; re-adding a revoked key is refused."""
        if not isinstance(vendor_id, int) or not 1 <= vendor_id <= 0xFFFF:
            raise AttestationError(f"vendor_id {vendor_id!r} must be an integer from 1 to 65535")
        pub = signing.parse_public_key(public_key)
        kid = signing.key_id(pub)
        existing = self._keys.get(kid)
        if existing is not None:
            if existing.revoked:
                raise AttestationError(f"key {kid} was revoked ({existing.revoke_reason}); it stays revoked")
            if existing.vendor_id != vendor_id:
                raise AttestationError(f"key {kid} is already trusted for vendor {existing.vendor_id}")
            return existing
        entry = VendorKey(kid, vendor_id, signing.public_b64(pub), label, time.time())
        self._keys[kid] = entry
        if self._db is not None:
            self._db.execute(
                "INSERT INTO vendor_keys (key_id, vendor_id, public_key, label, added_at) VALUES (?,?,?,?,?)",
                (kid, vendor_id, entry.public_key, label, entry.added_at),
            )
        return entry

    def revoke(self, key_id: str, reason: str = "revoked by owner") -> VendorKey:
        entry = self._keys.get(key_id)
        if entry is None:
            raise AttestationError(f"no trusted key has id {key_id!r}")
        if entry.revoked:
            return entry
        revoked = VendorKey(
            entry.key_id, entry.vendor_id, entry.public_key, entry.label, entry.added_at, time.time(), reason
        )
        self._keys[key_id] = revoked
        if self._db is not None:
            self._db.execute(
                "UPDATE vendor_keys SET revoked_at = ?, revoke_reason = ? WHERE key_id = ?",
                (revoked.revoked_at, reason, key_id),
            )
        self._tell_revoked(revoked)
        return revoked

    def _tell_revoked(self, key: VendorKey) -> None:
        for listener in list(self._on_revoke):
            listener(key)

    def get(self, key_id: str) -> VendorKey | None:
        return self._keys.get(key_id)

    def entries(self) -> list[VendorKey]:
        return sorted(self._keys.values(), key=lambda k: (k.vendor_id, k.added_at))

    def attest(self, manifest: dict[str, Any]) -> VendorKey:
        """The key that vouches for ``manifest``; raises ``AttestationError`` saying why not."""
        sig = manifest.get("signature")
        if not isinstance(sig, dict):
            raise AttestationError("manifest is not signed (no 'signature')")
        kid = sig.get("key_id")
        entry = self._keys.get(kid) if isinstance(kid, str) else None
        if entry is None:
            raise AttestationError(f"signature.key_id: key {kid!r} is not in the trust registry")
        if entry.revoked:
            raise AttestationError(
                f"signature.key_id: key {kid} of vendor {entry.vendor_id} was revoked ({entry.revoke_reason})"
            )
        if manifest.get("vendor_id") != entry.vendor_id:
            raise AttestationError(
                f"vendor_id: key {kid} belongs to vendor {entry.vendor_id}, "
                f"the manifest claims vendor {manifest.get('vendor_id')!r}"
            )
        signing.verify_signature(manifest, signing.parse_public_key(entry.public_key))
        return entry

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
