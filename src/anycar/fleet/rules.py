"""The cloud's alert rules: the packaged defaults (``data/rules.yaml``) and a tenant's override.

An override has the defaults' shape, any subset of it; each value must have the type of the
default it replaces (a number where a number was, a list of strings where one was, ``null``
where the default may be null). ``hub_events`` maps a hub event type to the severity of the
alert it raises (``null`` turns one off). The effective rules are the defaults with the
override merged in, key by key. Errors name the field, for a 400 that says what to fix.
"""

from __future__ import annotations

import copy
import fnmatch
import re
import time
from functools import cache
from importlib import resources
from typing import Any

import yaml
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine

from anycar.fleet.domain_tables import tenant_rules

SEVERITIES = ("info", "warning", "critical")
_EVENT = re.compile(r"^[a-z][a-z_]{0,31}$")
MAX_PATTERNS = 64


class RulesError(ValueError):
    """A rules override that cannot be used; the message names the field."""


@cache
def _defaults() -> dict[str, Any]:
    doc = yaml.safe_load(
        resources.files("anycar.fleet").joinpath("data/rules.yaml").read_text(encoding="utf-8")
    )
    if not isinstance(doc, dict):
        raise RulesError("anycar/fleet/data/rules.yaml: must be a mapping")
    return doc


def defaults() -> dict[str, Any]:
    """The rules every tenant starts with (a fresh copy; the file is parsed once)."""
    return copy.deepcopy(_defaults())


def _check_value(where: str, default: Any, value: Any, key: str) -> Any:
    if key == "severity":
        if value not in SEVERITIES:
            raise RulesError(f"{where}: one of {', '.join(SEVERITIES)}")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise RulesError(f"{where}: true or false")
        return value
    if isinstance(default, int | float) or (default is None and key.endswith(("_kmh", "_c", "_s"))):
        if value is None and default is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not -1e6 < value < 1e6:
            raise RulesError(f"{where}: a number")
        return value
    if isinstance(default, list):
        if (
            not isinstance(value, list)
            or len(value) > MAX_PATTERNS
            or not all(isinstance(v, str) and 0 < len(v) <= 256 for v in value)
        ):
            raise RulesError(f"{where}: a list of at most {MAX_PATTERNS} strings (VSS paths, * allowed)")
        return value
    raise RulesError(f"{where}: cannot be set")


def check_override(override: Any) -> dict[str, Any]:
    """The override if it is valid, else ``RulesError`` naming the field."""
    if not isinstance(override, dict):
        raise RulesError("rules: a JSON object like rules.yaml (any subset)")
    base = defaults()
    out: dict[str, Any] = {}
    for section, body in override.items():
        if section not in base:
            raise RulesError(f"rules.{str(section)[:40]}: unknown rule (one of {', '.join(base)})")
        if not isinstance(body, dict):
            raise RulesError(f"rules.{section}: an object")
        out[section] = {}
        for key, value in body.items():
            where = f"rules.{section}.{str(key)[:40]}"
            if section == "hub_events":
                if not isinstance(key, str) or not _EVENT.match(key):
                    raise RulesError(f"{where}: an event type (a-z and _)")
                if value is not None and value not in SEVERITIES:
                    raise RulesError(f"{where}: one of {', '.join(SEVERITIES)} or null")
                out[section][key] = value
                continue
            if key not in base[section]:
                raise RulesError(f"{where}: unknown field (one of {', '.join(base[section])})")
            out[section][key] = _check_value(where, base[section][key], value, key)
    return out


def merge(override: dict[str, Any]) -> dict[str, Any]:
    rules = defaults()
    for section, body in override.items():
        rules[section].update(copy.deepcopy(body))
    rules["hub_events"] = {k: v for k, v in rules["hub_events"].items() if v is not None}
    return rules


def override_of(conn: Connection, tenant_id: int) -> dict[str, Any]:
    found = conn.execute(
        select(tenant_rules.c.override).where(tenant_rules.c.tenant_id == tenant_id)
    ).scalar()
    return dict(found) if isinstance(found, dict) else {}


def effective(conn: Connection, tenant_id: int) -> dict[str, Any]:
    """The tenant's rules: defaults with its override merged in."""
    return merge(override_of(conn, tenant_id))


def set_override(engine: Engine, tenant_id: int, override: Any) -> dict[str, Any]:
    """Check and store a tenant's override; returns the effective rules."""
    checked = check_override(override)
    with engine.begin() as conn:
        done = conn.execute(
            update(tenant_rules)
            .where(tenant_rules.c.tenant_id == tenant_id)
            .values(override=checked, updated=time.time())
        ).rowcount
        if not done:
            conn.execute(
                insert(tenant_rules).values(tenant_id=tenant_id, override=checked, updated=time.time())
            )
    return merge(checked)


def clear_override(engine: Engine, tenant_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(delete(tenant_rules).where(tenant_rules.c.tenant_id == tenant_id))


def matches(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)
