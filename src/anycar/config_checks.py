"""Checks shared by the YAML config sections (the hub's and the uplink's), one message each."""

from __future__ import annotations

from typing import Any

from anycar.errors import ConfigError


def only_keys(section: dict[str, Any], allowed: set[str], where: str) -> None:
    """A misspelt key is an error naming it, never silently ignored."""
    unknown = set(section) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; expected {sorted(allowed)}")


def optional_str(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where} must be a string")
    return value
