"""Which brand profile a CAN log belongs to: the share of its frames each profile's DBCs know
(by id and length), so a log replayed through the wrong profile can name the right ones."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from anycar.brands.profile import list_profiles
from anycar.can.sources import read_log

SAMPLE_FRAMES = 20_000  # enough to know a car; bounded so a huge log is judged quickly

# How the adapter's refusal counters read to a person.
BAD_WORDS = {
    "wrong_length": "with a length the DBC does not give that id",
    "unknown_id": "with an id the profile's DBCs do not know",
    "out_of_range": "with a value outside the DBC's range",
    "corrupt_log_line": "log lines that are not frames",
    "transform_failed": "values the mapping's transform refused",
    "unmapped_value": "values the mapping's value table does not list",
    "vss_rejected": "values VSS refused",
    "error_frames": "error frames",
    "remote_frames": "remote frames",
}


@dataclass(frozen=True, slots=True)
class ProfileFit:
    profile: str
    share: float  # of the sampled frames, those whose id and length a DBC of the profile gives


def describe_bad(bad: dict[str, int]) -> str:
    """``{'unknown_id': 2700}`` -> ``2700 frames with an id the profile's DBCs do not know``."""
    parts = [f"{n} {BAD_WORDS.get(k, k.replace('_', ' '))}" for k, n in bad.items() if n]
    return "; ".join(parts) if parts else "none"


def log_fits(path: str | Path, limit: int = SAMPLE_FRAMES) -> list[ProfileFit]:
    """Every profile with the share of the log's first ``limit`` frames it knows, best first."""
    seen: Counter[tuple[int, bool, int]] = Counter()
    for n, msg in enumerate(read_log(path)):
        if n >= limit:
            break
        if not msg.is_error_frame and not msg.is_remote_frame:
            seen[(msg.arbitration_id, bool(msg.is_extended_id), len(msg.data))] += 1
    total = sum(seen.values())
    fits = []
    for profile in list_profiles():
        known: set[tuple[int, bool, int]] = set()
        for _bus, message, _dbc in profile.network().all_frames():
            known.add((int(message.frame_id), bool(message.is_extended_frame), int(message.length)))
        # DBCs that declare extended ids as standard: accept the id either way
        loose = {(i, length) for i, _e, length in known}
        hits = sum(c for (i, e, length), c in seen.items() if (i, e, length) in known or (i, length) in loose)
        fits.append(ProfileFit(profile.id, hits / total if total else 0.0))
    return sorted(fits, key=lambda f: (-f.share, f.profile))
