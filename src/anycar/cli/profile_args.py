"""The options that choose a car's CAN description: ``--brand``, ``--profile DIR``, ``--dbc/--mapping``.

Shared by ``can replay``, ``can live``, ``hub`` and ``demo``: a bundled profile (``--brand``), a
profile folder anywhere (``--profile DIR``, laid out like ``brands/data/<id>/``), or your own DBC
files with a KUKSA-format mapping (``--dbc FILE... --mapping FILE``), on top of ``--brand`` when
given (that car's mounts and simulator parameters are kept). ``--overlay FILE`` adds VSS
overlays to any of them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from anycar.brands import BrandProfile, load_profile
from anycar.brands.custom import custom_profile, with_overlays
from anycar.brands.profile import load_profile_dir
from anycar.errors import ConfigError


def add_profile_arguments(parser: Any) -> None:
    """Add ``--profile``, ``--dbc``, ``--mapping`` and ``--overlay`` (``--brand`` is the command's own)."""
    parser.add_argument(
        "--profile", metavar="DIR", help="a brand profile folder (profile.yaml, DBCs, mapping), not --brand"
    )
    parser.add_argument(
        "--dbc", metavar="FILE", nargs="+", help="your own DBC file(s), read as one bus; needs --mapping"
    )
    parser.add_argument(
        "--mapping",
        metavar="FILE",
        action="append",
        help="DBC-to-VSS mapping for --dbc in KUKSA's format (vss_dbc.json, dbc_overlay.vspec, .yaml)",
    )
    parser.add_argument(
        "--overlay", metavar="FILE", action="append", help="a VSS overlay the mapping needs (repeatable)"
    )


def profile_from_args(args: argparse.Namespace) -> BrandProfile | None:
    """The profile these options describe, or ``None`` when none was given."""
    brand = getattr(args, "brand", None)
    folder, dbcs, mappings, overlays = args.profile, args.dbc, args.mapping or [], args.overlay or []
    if folder and (brand or dbcs):
        raise ConfigError("choose one: --profile DIR, or --brand PROFILE and/or --dbc FILE... --mapping FILE")
    if mappings and not dbcs:
        raise ConfigError("--mapping goes with --dbc FILE... (a profile folder names its own mappings)")
    if folder:
        return with_overlays(load_profile_dir(Path(folder)), overlays)
    base = load_profile(brand) if brand else None
    if dbcs:
        return custom_profile(dbcs, mappings, overlays, base=base)
    if base is not None:
        return with_overlays(base, overlays)
    if overlays:
        raise ConfigError(
            "--overlay needs a car: --brand PROFILE, --profile DIR or --dbc FILE... --mapping FILE"
        )
    return None


def require_profile(args: argparse.Namespace) -> BrandProfile:
    profile = profile_from_args(args)
    if profile is None:
        raise ConfigError("give the car: --brand PROFILE, --profile DIR, or --dbc FILE... --mapping FILE")
    return profile


def is_custom(args: argparse.Namespace) -> bool:
    """Files the user brought (their warnings are worth printing; bundled profiles' are known)."""
    return bool(args.profile or args.dbc or args.overlay)
