"""Canonical JSON (RFC 8785) for manifest signatures; it lives in ``anycar.wire`` because the
fleet cloud signs campaigns and commands with the same rules, and the wire imports no room."""

from anycar.wire.canonical import CanonicalError, canonical_json

__all__ = ["CanonicalError", "canonical_json"]
