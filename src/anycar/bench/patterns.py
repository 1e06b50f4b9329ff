"""`anycar bench patterns`: wildcard matching over the whole catalog, the set-of-states matcher
(``anycar.model.paths``) against the backtracking regex it replaced (issue 9, finding 2).

The baseline is the old compiler, kept here only to be measured: each segment became a regex
piece and ``**`` became ``(?:\\.[^.]+)*``, so a pattern with k ``**`` and a tail that matches
nothing backtracks through every way of splitting a path among them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from anycar.model import Catalog, paths


def baseline_regex(pattern: str) -> re.Pattern[str]:
    """The compiler before issue 9 (matches ``'.' + path``); for comparison only."""
    parts = paths.split(pattern, max_double_stars=64)
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
    if not paths.has_wildcard(pattern):
        out.append(r"(?:\.[^.]+)*")
    return re.compile("".join(out))


def _best(repeat: int, work: Callable[[], int]) -> tuple[float, int]:
    best, found = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        found = work()
        best = min(best, time.perf_counter() - start)
    return best, found


def cases(max_double_stars: int) -> list[tuple[str, str]]:
    out = [
        ("branch", "Vehicle.Cabin"),
        ("doors", "Vehicle.Cabin.Door.*.*.IsOpen"),
        ("one **", "Vehicle.**.IsOpen"),
        ("glob", "Vehicle.**.*Temp*"),
    ]
    for k in range(2, max_double_stars + 1, 2):
        out.append((f"{k} x ** + no match", "Vehicle." + "**." * k + "NoSuchSignal"))
    return out


def run(*, repeat: int = 3, max_double_stars: int = 8) -> dict[str, Any]:
    """``Catalog.match`` and the old regex over the 1,267-leaf catalog, per pattern; times are
    the best of ``repeat`` (one run for the old regex on patterns that match nothing: seconds)."""
    catalog = Catalog.load_default()
    catalog.match("Vehicle.Speed.*")  # builds the segment table once
    dotted = ["." + sig.path for sig in catalog]
    runs: list[dict[str, Any]] = []
    for name, text in cases(max_double_stars):
        regex = baseline_regex(text)

        def match(pattern: str = text) -> int:
            catalog._match_cache.clear()  # measure the matching, not the cache
            return len(catalog.match(pattern))

        new_s, new_found = _best(repeat, match)
        old_s, old_found = _best(
            1 if "no match" in name else repeat,
            lambda r=regex: sum(1 for d in dotted if r.fullmatch(d)),  # type: ignore[misc]
        )
        if new_found != old_found:
            raise AssertionError(f"{text}: the matchers disagree ({new_found} vs {old_found} signals)")
        runs.append(
            {
                "case": name,
                "pattern": text,
                "signals": new_found,
                "matcher_ms": round(new_s * 1000, 3),
                "baseline_regex_ms": round(old_s * 1000, 3),
                "speedup": round(old_s / new_s, 1) if new_s > 0 else None,
            }
        )
    return {
        "benchmark": "patterns",
        "catalog_signals": len(catalog),
        "runs": runs,
        "worst_matcher_ms": max(float(r["matcher_ms"]) for r in runs),
        "worst_baseline_regex_ms": max(float(r["baseline_regex_ms"]) for r in runs),
    }
