"""Ed25519 signatures over manifests (canonical JSON of every field but ``signature``).

A key id is the first 16 hex digits of SHA-256 over the 32-byte raw public key. Keys are
exchanged as base64 of the raw 32 bytes (public) or PEM PKCS#8 (private).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from anycar.accessories.canonical import CanonicalError, canonical_json
from anycar.accessories.errors import AttestationError, ManifestError

ALGORITHM = "Ed25519"
# What a manifest may be before its signature is checked: enough for any real one, small enough
# that canonicalising an attacker's value costs nothing (it is walked without recursion first).
MAX_MANIFEST_DEPTH = 16
MAX_MANIFEST_NODES = 20_000
MAX_MANIFEST_BYTES = 64 * 1024


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_bytes(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_b64(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    return base64.b64encode(public_bytes(key)).decode("ascii")


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey | bytes) -> str:
    raw = key if isinstance(key, bytes) else public_bytes(key)
    return hashlib.sha256(raw).hexdigest()[:16]


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A public key from base64 of its 32 raw bytes."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise AttestationError("public key is not valid base64") from None
    if len(raw) != 32:
        raise AttestationError(f"an Ed25519 public key has 32 bytes, this one has {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AttestationError(f"{path}: cannot read key: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise AttestationError(f"{path}: not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AttestationError(f"{path}: not an Ed25519 key")
    return key


def signed_bytes(manifest: dict[str, Any]) -> bytes:
    """What the signature covers: canonical JSON of the manifest without ``signature``."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    try:
        return canonical_json(body)
    except CanonicalError as exc:
        raise ManifestError(f"manifest has no canonical JSON form: {exc}") from None


def sign_manifest(manifest: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """A copy of ``manifest`` with a ``signature`` by ``key``."""
    out = copy.deepcopy({k: v for k, v in manifest.items() if k != "signature"})
    sig = key.sign(signed_bytes(out))
    out["signature"] = {
        "algorithm": ALGORITHM,
        "key_id": key_id(key),
        "value": base64.b64encode(sig).decode("ascii"),
    }
    return out


def check_bounds(manifest: Any) -> None:
    """Refuse a manifest too deep, too big or too large before anything else looks at it."""
    stack: list[tuple[Any, int]] = [(manifest, 1)]
    nodes = size = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if depth > MAX_MANIFEST_DEPTH:
            raise ManifestError(f"manifest is nested deeper than {MAX_MANIFEST_DEPTH} levels")
        if nodes > MAX_MANIFEST_NODES:
            raise ManifestError(f"manifest has more than {MAX_MANIFEST_NODES} values")
        if isinstance(value, dict):
            size += sum(len(k) for k in value if isinstance(k, str))
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str):
            size += len(value)
        if size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"manifest text exceeds {MAX_MANIFEST_BYTES} characters")


def verify_signature(manifest: dict[str, Any], public: Ed25519PublicKey) -> None:
    """Raise ``AttestationError`` unless ``manifest['signature']`` is ``public``'s over it."""
    check_bounds(manifest)
    sig = manifest.get("signature")
    if not isinstance(sig, dict):
        raise AttestationError("manifest is not signed (no 'signature')")
    if sig.get("algorithm") != ALGORITHM:
        raise AttestationError(f"signature.algorithm: {sig.get('algorithm')!r} is not {ALGORITHM}")
    try:
        raw = base64.b64decode(str(sig.get("value", "")), validate=True)
    except (binascii.Error, ValueError):
        raise AttestationError("signature.value: not valid base64") from None
    if len(raw) != 64:
        raise AttestationError(f"signature.value: an Ed25519 signature has 64 bytes, not {len(raw)}")
    try:
        public.verify(raw, signed_bytes(manifest))
    except InvalidSignature:
        raise AttestationError(
            f"signature by key {sig.get('key_id')} does not match the manifest (forged or altered)"
        ) from None
