"""A brand profile from files a user brings: their own DBCs, mapping and VSS overlays.

``custom_profile`` puts the DBC files on one bus (as the KUKSA CAN provider reads them) with the
given mapping files; on top of a bundled profile (``base``) it keeps that car's folder, so its
mount points and simulator parameters still apply, and replaces only its CAN description.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from anycar.brands.profile import BrandProfile, BusSpec
from anycar.errors import ConfigError

CUSTOM_ID = "custom"


def _files(option: str, paths: Sequence[str | Path]) -> list[str]:
    out = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise ConfigError(f"{option} {p}: no such file")
        out.append(str(path.resolve()))
    return out


def custom_profile(
    dbcs: Sequence[str | Path],
    mappings: Sequence[str | Path],
    overlays: Sequence[str | Path] = (),
    *,
    base: BrandProfile | None = None,
) -> BrandProfile:
    """A profile reading ``dbcs`` (one bus) through ``mappings``; raises ``ConfigError`` for a missing file."""
    if not dbcs:
        raise ConfigError("--dbc: give at least one DBC file")
    if not mappings:
        raise ConfigError("--dbc needs --mapping FILE (a KUKSA-format mapping onto VSS)")
    dbc_files = _files("--dbc", dbcs)
    mapping_files = _files("--mapping", mappings)
    overlay_files = _files("--overlay", overlays)
    names = ", ".join(Path(f).name for f in [*dbc_files, *mapping_files])
    bus = BusSpec("can", dbc_files)
    if base is not None:
        return replace(
            base,
            model=f"{base.model} ({names})",
            buses=[bus],
            mappings=mapping_files,
            reference=False,
            source=f"command line: {names}",
            sample_log=None,
            overlays=[*map(str, base.overlay_files()), *overlay_files],
            _dbcs={},
        )
    return BrandProfile(
        id=CUSTOM_ID,
        brand="Custom",
        model=names,
        directory=Path(mapping_files[0]).parent,
        buses=[bus],
        mappings=mapping_files,
        source=f"command line: {names}",
        overlays=overlay_files,
    )


def with_overlays(profile: BrandProfile, overlays: Sequence[str | Path]) -> BrandProfile:
    """The same profile with more VSS overlays applied before its mapping."""
    if not overlays:
        return profile
    return replace(
        profile, overlays=[*map(str, profile.overlay_files()), *_files("--overlay", overlays)], _dbcs={}
    )
