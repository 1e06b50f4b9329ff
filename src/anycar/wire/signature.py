"""Ed25519 signatures over wire documents (campaigns, commands), as accessory manifests are signed:
the RFC 8785 canonical JSON of every field but ``signature``, so the fleet may sign in any
language and send CBOR or JSON alike. A key id is the first 16 hex digits of SHA-256 over the
32 raw public-key bytes; public keys travel as base64 of those bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from anycar.wire.canonical import CanonicalError, canonical_json
from anycar.wire.errors import WireError

ALGORITHM = "Ed25519"


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def parse_public_key(text: str, where: str = "public key") -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WireError("not valid base64", reason="bad_key", where=where) from None
    if len(raw) != 32:
        raise WireError(f"an Ed25519 public key has 32 bytes, not {len(raw)}", reason="bad_key", where=where)
    return Ed25519PublicKey.from_public_bytes(raw)


def _signed_bytes(doc: Mapping[str, Any]) -> bytes:
    try:
        return canonical_json({k: v for k, v in doc.items() if k != "signature"})
    except CanonicalError as exc:
        raise WireError(f"no canonical JSON form: {exc}", reason="malformed") from None


def sign(doc: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """A copy of ``doc`` with a ``signature`` by ``key``."""
    out = {k: v for k, v in doc.items() if k != "signature"}
    out["signature"] = {
        "algorithm": ALGORITHM,
        "key_id": key_id(key),
        "value": base64.b64encode(key.sign(_signed_bytes(out))).decode("ascii"),
    }
    return out


def verify(doc: Mapping[str, Any], trusted: Mapping[str, Ed25519PublicKey]) -> str:
    """The key id that signed ``doc``; ``WireError`` (reason ``signature``) unless one of ``trusted``
    (key id -> key) did."""
    sig = doc.get("signature")
    if not isinstance(sig, dict):
        raise WireError("not signed (no 'signature')", reason="signature", where="signature")
    if sig.get("algorithm") != ALGORITHM:
        raise WireError(
            f"algorithm {sig.get('algorithm')!r} is not {ALGORITHM}", reason="signature", where="signature"
        )
    kid = sig.get("key_id")
    public = trusted.get(kid) if isinstance(kid, str) else None
    if public is None:
        raise WireError(
            f"key {kid!r} is not a trusted fleet key", reason="signature", where="signature.key_id"
        )
    try:
        raw = base64.b64decode(str(sig.get("value", "")), validate=True)
    except (binascii.Error, ValueError):
        raise WireError("not valid base64", reason="signature", where="signature.value") from None
    try:
        public.verify(raw, _signed_bytes(doc))
    except InvalidSignature:
        raise WireError(
            f"signature by key {kid} does not match (forged or altered)",
            reason="signature",
            where="signature",
        ) from None
    return str(kid)
