"""Path patterns with the wildcard rules KUKSA and VISS clients use, and the one matcher for them.

- ``Vehicle.Speed``: that signal; a branch path (``Vehicle.Cabin``) means every leaf below it.
- ``*`` as a whole segment: exactly one node (``Vehicle.Cabin.Door.*.*.IsOpen``).
- ``**`` as a whole segment: any number of nodes, none included (``Vehicle.**.IsOpen``).
- ``*`` inside a segment: any characters in that segment (``Vehicle.Cabin.Door.Row*.*.IsOpen``).
- ``*`` alone, or ``**``: every signal.

Every API (VISS, REST, gRPC, accessories, grants, token scopes, broker subscriptions) comes
here, so the limits below hold everywhere. Matching is a set-of-states simulation over path
segments (an NFA): each path segment costs one step over at most ``MAX_SEGMENTS`` states, so a
match is linear in the path's length whatever the pattern; no backtracking regular expression
is involved (``Vehicle.**.**.**...X`` used to take seconds per signal). ``Pattern.select``
matches a whole catalog at once, sharing the steps of common prefixes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from anycar.errors import InvalidPattern, TooManySignals

MAX_PATTERN_LENGTH = 1024
MAX_SEGMENTS = 64
MAX_DOUBLE_STARS = 8
MAX_STARS_PER_SEGMENT = 8
MAX_PATTERNS_PER_REQUEST = 256
MAX_SIGNALS_PER_REQUEST = 5_000  # the whole VSS 6.0 tree is 1,267 leaves
_SEGMENT = re.compile(r"^[A-Za-z0-9_*]+$")
_ANY = "**"


def has_wildcard(pattern: str) -> bool:
    return "*" in pattern


def split(pattern: str, *, max_double_stars: int = MAX_DOUBLE_STARS) -> list[str]:
    """Split a path or pattern into segments, refusing empty, odd or oversized ones."""
    if not isinstance(pattern, str) or not pattern:
        raise InvalidPattern("empty path")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidPattern(f"path of {len(pattern)} characters is too long (at most {MAX_PATTERN_LENGTH})")
    parts = pattern.split(".")
    if len(parts) > MAX_SEGMENTS:
        raise InvalidPattern(f"path of {len(parts)} segments is too deep (at most {MAX_SEGMENTS})")
    doubles = 0
    for i, part in enumerate(parts):
        if not part:
            raise InvalidPattern(f"empty segment at position {i} in {pattern[:80]!r}")
        if not _SEGMENT.match(part):
            raise InvalidPattern(
                f"segment {part[:40]!r} in {pattern[:80]!r} has characters other than A-Z a-z 0-9 _ *"
            )
        if "**" in part and part != "**":
            raise InvalidPattern(f"'**' must be a whole segment in {pattern[:80]!r}")
        if part == "**":
            doubles += 1
        elif part.count("*") > MAX_STARS_PER_SEGMENT:
            raise InvalidPattern(f"segment {part[:40]!r} has more than {MAX_STARS_PER_SEGMENT} '*'")
    if doubles > max_double_stars:
        raise InvalidPattern(f"pattern has {doubles} '**' segments (at most {max_double_stars})")
    return parts


def glob_segment(glob: str, name: str) -> bool:
    """``Row*`` against ``Row1``: ``*`` is any run of characters. Greedy with one resume
    point, so the time is at most len(glob) * len(name), never exponential."""
    g = n = 0
    star_g, star_n = -1, 0
    while n < len(name):
        if g < len(glob) and glob[g] == "*":
            star_g, star_n = g, n
            g += 1
        elif g < len(glob) and glob[g] == name[n]:
            g += 1
            n += 1
        elif star_g >= 0:
            star_n += 1
            g, n = star_g + 1, star_n
        else:
            return False
    while g < len(glob) and glob[g] == "*":
        g += 1
    return g == len(glob)


class Pattern:
    """A compiled pattern: its segments, matched by a set-of-states simulation.

    A state is how many pattern segments are consumed; ``**`` may consume any number of path
    segments (it stays) or none (the closure skips it).
    """

    __slots__ = ("_accept", "_start", "parts", "text")

    def __init__(self, text: str, *, max_double_stars: int = MAX_DOUBLE_STARS) -> None:
        parts = split(text, max_double_stars=max_double_stars)
        if parts == ["*"]:
            parts = [_ANY]
        elif not has_wildcard(text):
            parts = [*parts, _ANY]  # a branch path means everything below it
        # ``**.**`` matches what ``**`` matches: collapse runs, fewer states
        collapsed: list[str] = []
        for part in parts:
            if not (part == _ANY and collapsed and collapsed[-1] == _ANY):
                collapsed.append(part)
        self.text = text
        self.parts = tuple(collapsed)
        self._accept = len(self.parts)
        self._start = self._closure((0,))

    def _closure(self, states: Sequence[int]) -> frozenset[int]:
        out = set(states)
        for s in sorted(out):
            while s < self._accept and self.parts[s] == _ANY:
                s += 1
                out.add(s)
        return frozenset(out)

    def _step(self, states: frozenset[int], segment: str) -> frozenset[int]:
        nxt: list[int] = []
        for s in states:
            if s == self._accept:
                continue
            part = self.parts[s]
            if part == _ANY:
                nxt.append(s)
            elif part == "*" or part == segment or ("*" in part and glob_segment(part, segment)):
                nxt.append(s + 1)
        return self._closure(nxt)

    def matches_parts(self, segments: Sequence[str]) -> bool:
        states = self._start
        for segment in segments:
            states = self._step(states, segment)
            if not states:
                return False
        return self._accept in states

    def matches(self, path: str) -> bool:
        return self.matches_parts(path.split("."))

    def select(self, all_segments: Sequence[Sequence[str]]) -> list[int]:
        """Indexes of the segment lists the pattern matches. Consecutive lists usually share a
        prefix (tree order), so the states after each prefix segment are kept and reused."""
        out: list[int] = []
        stack = [self._start]  # stack[i]: the states after the previous path's first i segments
        prev: Sequence[str] = ()
        for index, segments in enumerate(all_segments):
            limit = min(len(prev), len(segments), len(stack) - 1)
            k = 0
            while k < limit and prev[k] == segments[k]:
                k += 1
            del stack[k + 1 :]
            states = stack[k]
            for segment in segments[k:]:
                if not states:
                    break
                states = self._step(states, segment)
                stack.append(states)
            if self._accept in states:
                out.append(index)
            prev = segments
        return out

    def __repr__(self) -> str:
        return f"Pattern({self.text!r})"


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> Pattern:
    """The compiled matcher for ``pattern`` (cached), or ``InvalidPattern``."""
    return Pattern(pattern)


def matches(pattern: str, path: str) -> bool:
    return compile_pattern(pattern).matches(path)


class Budget:
    """What one request may ask for: at most ``patterns`` patterns and ``signals`` signals in
    its answer. Every API counts through one of these, so no request builds an unbounded reply
    (a gRPC v1 ``Get`` of many ``**`` entries once built 54 MB)."""

    __slots__ = ("pattern_limit", "patterns_left", "signal_limit", "signals_left")

    def __init__(
        self, signals: int = MAX_SIGNALS_PER_REQUEST, patterns: int = MAX_PATTERNS_PER_REQUEST
    ) -> None:
        self.signal_limit = self.signals_left = signals
        self.pattern_limit = self.patterns_left = patterns

    def pattern(self) -> None:
        self.patterns_left -= 1
        if self.patterns_left < 0:
            raise TooManySignals(
                f"the request names more than {self.pattern_limit} paths or patterns; send fewer"
            )

    def take(self, count: int) -> None:
        self.signals_left -= count
        if self.signals_left < 0:
            raise TooManySignals(
                f"the request covers more than {self.signal_limit} signals; narrow the patterns"
            )
