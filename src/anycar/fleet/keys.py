"""The fleet's own Ed25519 signing key: it signs every command (and campaign) the fleet sends, and
hubs trust its public half (``uplink.fleet_keys``). Kept as a PEM file readable by its owner
only; made on first use, so an embedded fleet needs no setup.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from anycar.wire import signature

KEY_ENV = "ANYCAR_FLEET_KEY"


def default_key_path() -> Path:
    """``$ANYCAR_FLEET_KEY``, else ~/.local/share/anycar/fleet-signing.pem."""
    env = os.environ.get(KEY_ENV)
    return Path(env) if env else Path.home() / ".local/share/anycar/fleet-signing.pem"


def load_or_create(path: Path | None = None) -> Ed25519PrivateKey:
    """The key in ``path`` (default ``default_key_path()``), made (mode 0600) if missing."""
    path = path or default_key_path()
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return key


def public_b64(key: Ed25519PrivateKey) -> str:
    """What a hub's ``uplink.fleet_keys`` lists: base64 of the 32 raw public-key bytes."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def key_id(key: Ed25519PrivateKey) -> str:
    return signature.key_id(key)
