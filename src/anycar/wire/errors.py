"""The one error of the wire: a message that cannot be encoded, decoded or trusted, with where."""

from __future__ import annotations


class WireError(ValueError):
    """``where`` is the field (``values[3][2]``), the topic or ``payload``; ``reason`` is a stable
    word the receiver can count by (``too_large``, ``malformed``, ``schema``, ``signature`` ...)."""

    def __init__(self, message: str, *, reason: str = "malformed", where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.reason = reason
        self.where = where
