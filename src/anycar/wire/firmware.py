"""Firmware releases as the hub and the fleet both read them: the vendor-signed ledger entry
(``firmware-release.v1.schema.json``) and the order of semantic versions, so "newer" means the
same on both sides and a downgrade is refused by both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from anycar.wire import signature
from anycar.wire.errors import WireError
from anycar.wire.schema import FIRMWARE_RELEASE, check

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


def version_key(text: str) -> tuple[Any, ...]:
    """A sort key with semver 2.0 precedence: 1.2.3-rc.1 < 1.2.3 < 1.2.10; build metadata ignored."""
    found = _SEMVER.match(text or "")
    if found is None:
        raise WireError(f"{text!r} is not a semantic version (1.2.3)", reason="schema", where="version")
    major, minor, patch, pre = found.groups()
    if pre is None:
        return (int(major), int(minor), int(patch), 1, ())
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (int(major), int(minor), int(patch), 0, ids)


def newer(candidate: str, current: str) -> bool:
    return version_key(candidate) > version_key(current)


def check_release(release: Mapping[str, Any], vendor_keys: Mapping[str, Ed25519PublicKey]) -> str:
    """Schema, then the vendor's signature (``vendor_keys``: key id -> key of *this* release's
    vendor only); returns the key id. ``WireError`` says what is wrong."""
    check(FIRMWARE_RELEASE, release, what="release")
    version_key(str(release["version"]))
    return signature.verify(release, vendor_keys)
