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
from typing import Any

from anycar.errors import InvalidPattern, TooManySignals

MAX_PATTERN_LENGTH = 1024
MAX_SEGMENTS = 64
MAX_DOUBLE_STARS = 8
MAX_STARS_PER_SEGMENT = 8
MAX_PATTERNS_PER_REQUEST = 256
MAX_SCANS_PER_REQUEST = 32  # patterns that are not one signal's path: each walks the whole catalog
MAX_SIGNALS_PER_REQUEST = 5_000  # the whole VSS 6.0 tree is 1,267 leaves
_SEGMENT = re.compile(r"[A-Za-z0-9_*]+")  # used with fullmatch: "$" would let a trailing newline in
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
        if not _SEGMENT.fullmatch(part):
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
    """``Row*`` against ``Row1``: ``*`` is any run of characters within one segment."""
    return _glob_pieces(tuple(glob.split("*")), name)


def _glob_pieces(pieces: tuple[str, ...], name: str) -> bool:
    """The pieces between the ``*`` must appear in order: the first as a prefix, the last as a
    suffix, each middle one at its leftmost place after the one before (greedy is exact for
    ``*``-only globs). ``str.find`` per piece: linear, no backtracking."""
    if len(pieces) == 1:
        return pieces[0] == name
    first, last = pieces[0], pieces[-1]
    end = len(name) - len(last)
    if end < len(first) or not name.startswith(first) or not name.endswith(last):
        return False
    pos = len(first)
    for piece in pieces[1:-1]:
        found = name.find(piece, pos, end)
        if found < 0:
            return False
        pos = found + len(piece)
    return True


_STAY, _ONE, _LITERAL, _GLOB = range(4)


class Pattern:
    """A compiled pattern: its segments, matched by a set-of-states simulation.

    A state is how many pattern segments are consumed; ``**`` may consume any number of path
    segments (it stays) or none (each state's closure skips it).
    """

    __slots__ = ("_accept", "_closures", "_start", "_tests", "parts", "text")

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
        self._tests: tuple[tuple[int, Any], ...] = tuple(
            (_STAY, None)
            if part == _ANY
            else (_ONE, None)
            if part == "*"
            else (_GLOB, tuple(part.split("*")))
            if "*" in part
            else (_LITERAL, part)
            for part in self.parts
        )
        closures: list[frozenset[int]] = []
        for state in range(self._accept + 1):
            reach = {state}
            while state < self._accept and self.parts[state] == _ANY:
                state += 1
                reach.add(state)
            closures.append(frozenset(reach))
        self._closures = tuple(closures)
        self._start = closures[0]

    def _step(self, states: frozenset[int], segment: str) -> frozenset[int]:
        nxt: set[int] = set()
        closures = self._closures
        for s in states:
            if s == self._accept:
                continue
            kind, arg = self._tests[s]
            if kind == _STAY:
                nxt |= closures[s]
            elif kind == _ONE or (arg == segment if kind == _LITERAL else _glob_pieces(arg, segment)):
                nxt |= closures[s + 1]
        return frozenset(nxt)

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
        prefix (tree order), so the states after each prefix segment are kept and reused, and
        each (states, segment) step is worked out once per call."""
        out: list[int] = []
        memo: dict[tuple[frozenset[int], str], frozenset[int]] = {}
        stack = [self._start]  # stack[i]: the states after the previous path's first i segments
        prev: Sequence[str] = ()
        accept = self._accept
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
                key = (states, segment)
                nxt = memo.get(key)
                if nxt is None:
                    nxt = memo[key] = self._step(states, segment)
                states = nxt
                stack.append(states)
            if accept in states:
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
    """What one request may ask for: at most ``patterns`` patterns, of which ``scans`` walk the
    whole catalog (wildcards, branches), and ``signals`` signals in its answer. Every API counts
    through one of these, so no request builds an unbounded reply (a gRPC v1 ``Get`` of many
    ``**`` entries once built 54 MB) or holds the event loop for long."""

    __slots__ = ("pattern_limit", "patterns_left", "scan_limit", "scans_left", "signal_limit", "signals_left")

    def __init__(
        self,
        signals: int = MAX_SIGNALS_PER_REQUEST,
        patterns: int = MAX_PATTERNS_PER_REQUEST,
        scans: int = MAX_SCANS_PER_REQUEST,
    ) -> None:
        self.signal_limit = self.signals_left = signals
        self.pattern_limit = self.patterns_left = patterns
        self.scan_limit = self.scans_left = scans

    def pattern(self, *, scan: bool = False) -> None:
        """Count one path or pattern; ``scan``: it is matched against the whole catalog."""
        self.patterns_left -= 1
        if self.patterns_left < 0:
            raise TooManySignals(
                f"the request names more than {self.pattern_limit} paths or patterns; send fewer"
            )
        if scan:
            self.scans_left -= 1
            if self.scans_left < 0:
                raise TooManySignals(
                    f"the request holds more than {self.scan_limit} wildcard or branch patterns; send fewer"
                )

    def take(self, count: int) -> None:
        self.signals_left -= count
        if self.signals_left < 0:
            raise TooManySignals(
                f"the request covers more than {self.signal_limit} signals; narrow the patterns"
            )
