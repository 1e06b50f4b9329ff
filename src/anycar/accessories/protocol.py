"""The accessory protocol's messages (version 1): parsing with exact-field errors, encoding,
and the pairing and reconnection proofs. The wire format is in docs/accessory-protocol.md and
``data/protocol.schema.json``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from anycar import decoding
from anycar.accessories.errors import ProtocolError
from anycar.accessories.manifest import field_path
from anycar.errors import AnycarError

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 256 * 1024
TO_HUB = "to_hub"
TO_ACCESSORY = "to_accessory"
_CODE = re.compile(r"^[0-9]{8}$")


@cache
def _schema() -> dict[str, Any]:
    text = resources.files("anycar.accessories").joinpath("data/protocol.schema.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def _validators(direction: str) -> dict[str, Draft202012Validator]:
    root = _schema()
    out = {}
    for name, sub in root["$defs"][direction].items():
        out[name] = Draft202012Validator({**sub, "$defs": root["$defs"]})
    return out


def message_types(direction: str = TO_HUB) -> list[str]:
    return list(_validators(direction))


def parse_message(raw: str | bytes, direction: str = TO_HUB) -> dict[str, Any]:
    """One message as a dict, or ``ProtocolError`` naming the offending field."""
    try:
        msg = decoding.loads(raw, max_bytes=MAX_MESSAGE_BYTES, what="message")
    except decoding.DecodingError as exc:
        raise ProtocolError(str(exc)) from None
    if not isinstance(msg, dict):
        raise ProtocolError(f"a message is a JSON object, got {type(msg).__name__}")
    kind = msg.get("type")
    validators = _validators(direction)
    if not isinstance(kind, str) or kind not in validators:
        raise ProtocolError(f"{kind!r} is not one of {', '.join(validators)}", field="type")
    try:
        error = next(
            iter(sorted(validators[kind].iter_errors(msg), key=lambda e: list(map(str, e.path)))), None
        )
    except RecursionError:
        raise ProtocolError("message is nested too deeply") from None
    if error is not None:
        where = field_path(error.absolute_path) or "(message)"
        raise ProtocolError(error.message, field=where)
    return msg


def encode(msg: dict[str, Any]) -> str:
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def error_message(exc: AnycarError, msg_id: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "error", "code": exc.code, "reason": exc.reason, "message": str(exc)}
    if msg_id is not None:
        out["id"] = msg_id
    field = getattr(exc, "field", "") or getattr(exc, "path", None)
    if field:
        out["field"] = field
    return out


def normalize_code(code: str) -> str:
    """``'1234-5678'`` and ``'1234 5678'`` -> ``'12345678'``; anything else is refused."""
    digits = re.sub(r"[\s-]", "", str(code))
    if not _CODE.match(digits):
        raise ProtocolError("a pairing code is 8 digits (dashes and spaces allowed)", field="code")
    return digits


def pairing_proof(code: str, nonce: str, serial: str) -> str:
    """What an accessory sends to show it knows the code it displays, without sending the code."""
    key = normalize_code(code).encode()
    return hmac.new(key, f"anycar-pairing:{nonce}:{serial}".encode(), hashlib.sha256).hexdigest()


def auth_proof(token: str, nonce: str) -> str:
    """What a commissioned accessory sends on reconnection, keyed by the token it was given."""
    return hmac.new(bytes.fromhex(token), f"anycar-auth:{nonce}".encode(), hashlib.sha256).hexdigest()


def proofs_match(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
