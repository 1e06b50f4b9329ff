"""Components that live in other rooms, found at run time so the hub does not depend on them.

``--brand PROFILE [--can SOURCE]`` needs the brands room (``anycar.brands``) and its
``hub_component(profile=, can=)`` factory; until that room is part of the build, asking for it
fails with a message that says so.
"""

from __future__ import annotations

import importlib
from typing import Any

from anycar.errors import ConfigError
from anycar.hub.hub import Component


def brand_component(profile: str | None, can: str | None) -> Component:
    if profile is None and can is not None:
        raise ConfigError("--can needs --brand PROFILE: the profile says how to read that CAN source")
    try:
        module: Any = importlib.import_module("anycar.brands")
    except ModuleNotFoundError as exc:
        if exc.name not in ("anycar.brands", "anycar"):
            raise
        raise ConfigError(
            "--brand/--can need the brands room (anycar.brands), which is not installed in this build"
        ) from None
    factory = getattr(module, "hub_component", None)
    if factory is None:
        raise ConfigError(
            "anycar.brands has no hub_component(profile=, can=); it cannot be plugged into the hub yet"
        )
    component: Component = factory(profile=profile, can=can)
    return component
