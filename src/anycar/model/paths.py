"""Path patterns with the wildcard rules KUKSA and VISS clients use.

- ``Vehicle.Speed``: that signal; a branch path (``Vehicle.Cabin``) means every leaf below it.
- ``*`` as a whole segment: exactly one node (``Vehicle.Cabin.Door.*.*.IsOpen``).
- ``**`` as a whole segment: any number of nodes, none included (``Vehicle.**.IsOpen``).
- ``*`` inside a segment: any characters in that segment (``Vehicle.Cabin.Door.Row*.*.IsOpen``).
- ``*`` alone, or ``**``: every signal.
"""

from __future__ import annotations

import re
from functools import lru_cache

from anycar.errors import InvalidPattern

_SEGMENT = re.compile(r"^[A-Za-z0-9_*]+$")


def has_wildcard(pattern: str) -> bool:
    return "*" in pattern


def split(pattern: str) -> list[str]:
    """Split a path or pattern into segments, refusing empty or odd ones."""
    if not isinstance(pattern, str) or not pattern:
        raise InvalidPattern("empty path")
    if len(pattern) > 1024:
        raise InvalidPattern(f"path of {len(pattern)} characters is too long")
    parts = pattern.split(".")
    for i, part in enumerate(parts):
        if not part:
            raise InvalidPattern(f"empty segment at position {i} in {pattern!r}")
        if not _SEGMENT.match(part):
            raise InvalidPattern(f"segment {part!r} in {pattern!r} has characters other than A-Z a-z 0-9 _ *")
        if "**" in part and part != "**":
            raise InvalidPattern(f"'**' must be a whole segment in {pattern!r}")
    return parts


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A regex that matches ``'.' + path`` for every leaf path the pattern covers."""
    parts = split(pattern)
    if parts in (["*"], ["**"]):
        return re.compile(r"(?:\.[^.]+)+")
    out = []
    for part in parts:
        if part == "**":
            out.append(r"(?:\.[^.]+)*")
        elif part == "*":
            out.append(r"\.[^.]+")
        else:
            out.append(r"\." + r"[^.]*".join(re.escape(p) for p in part.split("*")))
    if not has_wildcard(pattern):
        out.append(r"(?:\.[^.]+)*")  # a branch path means everything below it
    return re.compile("".join(out))


def matches(pattern: str, path: str) -> bool:
    return compile_pattern(pattern).fullmatch("." + path) is not None
