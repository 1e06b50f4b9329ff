"""Reading definition files: YAML with the line of every node, bounded, checked against the
published JSON Schema (``data/automation.schema.json``).

Every problem is a ``Problem`` with ``file:line``, the automation's id when known, and one
sentence; a file with problems yields no definitions, and never stops the other files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema
import yaml


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser when PyYAML has it (five times faster with 1,000 automations); dates stay
    text (a definition has no dates, and ``07:30`` must not become a number of minutes)."""


_CLOCK = re.compile(r"^[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?$")  # YAML 1.1 reads 17:30 as 1050 (base 60)
_Loader.yaml_implicit_resolvers = {
    first: ([("tag:yaml.org,2002:str", _CLOCK)] if first in "0123456789" else [])
    + [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
MAX_FILE_BYTES = 1_000_000
MAX_NODES = 200_000
Where = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a definition, said once, with where it is."""

    source: str
    line: int | None
    message: str
    automation: str | None = None
    kind: str = "invalid"  # invalid | no_provider (retried when accessories come and go)

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        who = f" [{self.automation}]" if self.automation else ""
        return f"{where}:{who} {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "line": self.line,
            "automation": self.automation,
            "message": self.message,
            "kind": self.kind,
        }


@dataclass
class Document:
    """A parsed file: its data, and the line of every node by its path of keys and indexes
    (found on demand in the YAML node tree, or given)."""

    source: str
    data: Any
    lines: dict[Where, int] = field(default_factory=dict)
    node: Any = field(default=None, repr=False)

    def line(self, where: Where) -> int | None:
        """The line of ``where``, or of its nearest ancestor that has one."""
        path = tuple(where)
        if self.node is not None:
            return _node_line(self.node, path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)


def _node_line(node: Any, path: Where) -> int:
    """Follow ``path`` down the node tree; the line of the deepest node reached (a key's own line
    for the last step into a mapping)."""
    line = int(node.start_mark.line) + 1
    for step in path:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(step):
                    line = int(key_node.start_mark.line) + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
            node = node.value[step]
            line = int(node.start_mark.line) + 1
        else:
            return line
    return line


class SourceError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@cache
def schema() -> dict[str, Any]:
    """The published JSON Schema of a definitions file."""
    text = resources.files("anycar.automations").joinpath("data/automation.schema.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


@cache
def _fast() -> Callable[[Any], Any]:
    """The same schema compiled to Python by fastjsonschema: a valid file is confirmed in a tenth
    of the time; only an invalid one goes through jsonschema, whose errors say where and why."""
    plain = {k: v for k, v in schema().items() if k != "$schema"}
    check: Callable[[Any], Any] = fastjsonschema.compile(plain)
    return check


def read_text(path: Path) -> str:
    """A file's text, refusing what is too big or not text."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SourceError(
                Problem(str(path), None, f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")
            )
        return path.read_text("utf-8")
    except UnicodeDecodeError:
        raise SourceError(Problem(str(path), None, "not UTF-8 text")) from None
    except OSError as exc:
        raise SourceError(Problem(str(path), None, f"cannot read: {exc.strerror}")) from None


def parse_yaml(text: str, source: str) -> Document:
    """YAML (or JSON) into a ``Document``; duplicate keys and alias bombs are refused."""
    if len(text) > MAX_FILE_BYTES:
        raise SourceError(Problem(source, None, f"definition is longer than {MAX_FILE_BYTES} characters"))
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise SourceError(
                    Problem(source, 1, "the file is empty; expected 'automations:' and/or 'scenes:'")
                )
            _check_nodes(node, source)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SourceError(Problem(source, line, f"not valid YAML: {reason}")) from None
    except RecursionError:
        raise SourceError(Problem(source, None, "nested too deeply")) from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits: was a 500 on POST
        raise SourceError(Problem(source, None, f"not valid YAML: {str(exc)[:120]}")) from None
    return Document(source, data, node=node)


def _check_nodes(root: yaml.Node, source: str) -> None:
    """Refuse what YAML allows but a definition must not have, before anything is built: more
    than ``MAX_NODES`` nodes (aliases count each time they are used), keys that are not plain
    words, merge keys, and duplicate keys (YAML would silently keep the last)."""
    budget = MAX_NODES
    stack = [root]
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            raise SourceError(Problem(source, node.start_mark.line + 1, f"more than {MAX_NODES} YAML nodes"))
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    raise SourceError(Problem(source, line, "keys must be plain words"))
                if key_node.value == "<<" and key_node.tag == "tag:yaml.org,2002:merge":
                    raise SourceError(Problem(source, line, "YAML merge keys are not allowed"))
                if key_node.value in seen:
                    raise SourceError(Problem(source, line, f"duplicate key {key_node.value!r}"))
                seen.add(key_node.value)
                stack.append(value_node)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def schema_problems(doc: Document) -> list[Problem]:
    """Every schema violation, one per automation or scene (the most telling one), with its line."""
    data = doc.data
    if not isinstance(data, dict):
        return [
            Problem(
                doc.source,
                doc.line(()),
                "a definitions file is a mapping with 'automations:' and/or 'scenes:'",
            )
        ]
    try:
        _fast()(data)
        return []
    except fastjsonschema.JsonSchemaException as exc:
        fast_says = str(exc)
    problems: list[Problem] = []
    seen: set[Where] = set()
    for error in sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        where = tuple(error.absolute_path)
        head = where[:2]
        if head in seen:
            continue
        seen.add(head)
        best = jsonschema.exceptions.best_match([error])
        deep = tuple(best.absolute_path)
        if best.validator == "additionalProperties" and isinstance(best.instance, dict):
            allowed = set(best.schema.get("properties", {})) if isinstance(best.schema, dict) else set()
            extra = [k for k in best.instance if k not in allowed]
            if extra:
                deep = (*deep, extra[0])
        problems.append(
            Problem(doc.source, doc.line(deep), _say(best, deep), automation=_owner_id(data, head))
        )
    if not problems:  # the two validators disagree: refuse, with the fast one's reason
        problems.append(Problem(doc.source, doc.line(()), f"does not match the schema: {fast_says}"))
    return problems


def _owner_id(data: Any, head: Where) -> str | None:
    if len(head) == 2 and head[0] in ("automations", "scenes"):
        try:
            item = data[head[0]][head[1]]
        except (KeyError, IndexError, TypeError):
            return None
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            return str(item["id"])[:64]
    return None


def _say(error: jsonschema.ValidationError, where: Where) -> str:
    field_name = ".".join(str(p) for p in where) or "(top)"
    if error.validator == "additionalProperties":
        extra = re.findall(r"'([^']+)'", error.message)
        parent = ".".join(str(p) for p in where[:-1]) or "(top)"
        return f"{parent}: unknown key {extra[0]!r}" if extra else f"{field_name}: {error.message}"
    forms: Any = error.validator_value
    if (
        error.validator == "anyOf"
        and isinstance(forms, list)
        and all(set(sub) == {"required"} for sub in forms)
    ):
        return f"{field_name}: needs one of the keys {', '.join(sub['required'][0] for sub in forms)}"
    if error.validator == "oneOf":
        keys = sorted(error.instance) if isinstance(error.instance, dict) else None
        return (
            f"{field_name}: {'keys ' + str(keys) if keys else repr(error.instance)[:60]} match no known form"
        )
    message = error.message if len(error.message) < 200 else error.message[:200] + "..."
    return f"{field_name}: {message}"


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def seconds(value: Any) -> float:
    """A duration (``30``, ``"30s"``, ``"1h30m"``, ``"-10m"``, ``"00:05:00"``) in seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration")
    text = value.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    text = text.lstrip("-")
    if ":" in text:
        parts = [int(p) for p in text.split(":")]
        h, m, s = [*parts, 0] if len(parts) == 2 else parts
        return sign * (h * 3600 + m * 60 + s)
    total = 0.0
    pos = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            raise ValueError(f"{value!r} is not a duration")
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"{value!r} is not a duration")
    return sign * total


def files_in(target: Path) -> Iterator[Path]:
    """A file, or the ``.yaml``/``.yml``/``.json`` files of a folder, in name order."""
    if target.is_dir():
        for path in sorted(target.iterdir()):
            if path.suffix in (".yaml", ".yml", ".json") and path.is_file():
                yield path
    else:
        yield target
