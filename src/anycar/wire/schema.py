"""The wire's JSON Schemas (``data/*.schema.json``), loaded once, and validation with the field
that is wrong in the error, so a bad message is refused with one line that says where.

Validation runs on jsonschema-rs (Rust): a batch of 2,000 values takes about 0.6 ms there and
about 700 ms in the pure-Python ``jsonschema``, which would make validating every message on
ingest impossible. ``jsonschema`` still checks the schemas themselves against the meta-schema.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator

from anycar.wire.errors import WireError

BASE = "https://anycar.dev/wire/"
# kind of message -> schema file
KINDS = {
    "telemetry": "telemetry.v1.schema.json",
    "events": "events.v1.schema.json",
    "state": "state.v1.schema.json",
    "campaign-ack": "campaign-ack.v1.schema.json",
    "command-result": "command-result.v1.schema.json",
    "campaign": "campaign.v1.schema.json",
    "command": "command.v1.schema.json",
    # fleet-commands: what is fitted where (on birth and on every change)
    "inventory": "inventory.v1.schema.json",
    # delivery-exec: a proof of delivery, signed by the hub
    "pod": "pod.v1.schema.json",
}
CAMPAIGN_DOCUMENT = "campaign-document.v1.schema.json"
FIRMWARE_RELEASE = "firmware-release.v1.schema.json"
# The actions a command may carry, exactly one each (command.v1.schema.json has a property and a
# $defs entry for every one). Add an action here and there; nothing else changes.
COMMAND_ACTIONS = ("actuate", "scene", "firmware", "fleet_event", "route")  # route: delivery-exec


def schema_files() -> dict[str, dict[str, Any]]:
    """Every schema by file name (what ``docs/asyncapi.yaml`` points at)."""
    folder = resources.files("anycar.wire") / "data"
    return {
        entry.name: json.loads(entry.read_text("utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".schema.json")
    }


@cache
def _registry() -> Any:
    files = schema_files()
    for schema in files.values():
        Draft202012Validator.check_schema(schema)
    return jsonschema_rs.Registry([(BASE + name, schema) for name, schema in files.items()])


@cache
def validator(name: str) -> Any:
    return jsonschema_rs.validator_for(schema_files()[name], registry=_registry())


def field_path(parts: Any) -> str:
    """``['values', 3, 2]`` -> ``values[3][2]``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "$"


def check(name: str, doc: Any, *, what: str = "") -> None:
    """Raise ``WireError`` (reason ``schema``) naming the first wrong field, if ``doc`` breaks schema ``name``."""
    check_with = validator(name)
    if check_with.is_valid(doc):
        return
    error = next(iter(check_with.iter_errors(doc)))
    where = field_path(error.instance_path)
    raise WireError(f"{what + ': ' if what else ''}{where}: {error.message[:300]}", reason="schema")


def check_message(doc: Any) -> str:
    """Validate a decoded message by its ``kind``; returns the kind."""
    if not isinstance(doc, dict):
        raise WireError(f"a message is a map, got {type(doc).__name__}", reason="schema")
    kind = doc.get("kind")
    if kind not in KINDS:
        raise WireError(f"kind: {kind!r} is not one of {', '.join(KINDS)}", reason="schema")
    check(KINDS[kind], doc, what=kind)
    if kind == "command":
        _one_action(doc)
    if kind == "telemetry":
        n = len(doc["paths"])
        for i, row in enumerate(doc["values"]):
            if row[0] >= n:
                raise WireError(
                    f"telemetry: values[{i}][0]: index {row[0]} is past the {n} paths", reason="schema"
                )
    return kind


def command_action(doc: dict[str, Any]) -> str:
    """The one action a (checked) command carries: ``actuate``, ``scene``, ``firmware`` ..."""
    return next(a for a in COMMAND_ACTIONS if a in doc)


def _one_action(doc: dict[str, Any]) -> None:
    found = [a for a in COMMAND_ACTIONS if a in doc]
    if len(found) != 1:
        raise WireError(
            f"command: carries exactly one action of {', '.join(COMMAND_ACTIONS)}; "
            f"got {', '.join(found) or 'none'}",
            reason="schema",
        )
