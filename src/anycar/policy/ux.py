"""What a UX restriction forbids a display-like accessory to do, signal by signal.

The trait catalog names the signals (ContentType, Text, KeyboardInput); this module says which
value breaks which restriction, so the hub can refuse it and say why.
"""

from __future__ import annotations

from typing import Any

VIDEO_CONTENT = frozenset({"VIDEO", "MOVIE", "STREAM"})


def violation(
    restrictions: frozenset[str], signal_name: str, value: Any, max_string_length: int
) -> str | None:
    """The restriction ``value`` on ``signal_name`` breaks, as a sentence; ``None`` if allowed."""
    if not restrictions:
        return None
    if (
        signal_name == "ContentType"
        and isinstance(value, str)
        and value.upper() in VIDEO_CONTENT
        and "NO_VIDEO" in restrictions
    ):
        return "NO_VIDEO: no video in the driver's view in this driving state"
    if signal_name == "KeyboardInput" and value not in (None, "") and "NO_KEYBOARD" in restrictions:
        return "NO_KEYBOARD: no keyboard input in the driver's view in this driving state"
    if (
        signal_name == "Text"
        and isinstance(value, str)
        and "LIMIT_STRING_LENGTH" in restrictions
        and len(value) > max_string_length
    ):
        return (
            f"LIMIT_STRING_LENGTH: text of {len(value)} characters exceeds {max_string_length} "
            "in this driving state"
        )
    if "UX_RESTRICTIONS_FULLY_RESTRICTED" in restrictions and signal_name in ("ContentType", "Text"):
        return "UX_RESTRICTIONS_FULLY_RESTRICTED: driving state unknown"
    return None
