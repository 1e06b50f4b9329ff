"""Loading definitions into the engine: files and folders (a bad file refused whole, never
stopping the others), definitions given over REST, and compiling every source again against the
live catalog (``rebuild``) when accessories come and go. Functions of the engine's state, kept
apart from its runtime in ``engine.py``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anycar.automations import model as m
from anycar.automations.compiler import Compiler, Context
from anycar.automations.source import (
    Document,
    Problem,
    SourceError,
    files_in,
    parse_yaml,
    read_text,
    schema_problems,
)
from anycar.automations.status import Status

if TYPE_CHECKING:
    from collections.abc import Iterable

    from anycar.automations.engine import Engine


def load_paths(engine: Engine, targets: Iterable[str | Any]) -> list[Problem]:
    """Read files and folders; a bad file is refused whole and never stops the others."""
    problems: list[Problem] = []
    for target in targets:
        path = Path(target)
        if not path.exists():
            problems.append(Problem(str(path), None, "no such file or folder"))
            continue
        for file in files_in(path):
            try:
                doc = parse_yaml(read_text(file), str(file))
            except SourceError as exc:
                problems.append(exc.problem)
                continue
            found = schema_problems(doc)
            if found:
                problems.extend(found)
                continue
            engine._docs.append(doc)
    engine.file_problems.extend(problems)
    rebuild(engine)
    return problems + [p for s in engine.status.values() for p in s.problems]


def load_rest_definitions(engine: Engine) -> None:
    for kind, ident, body, _owner in engine.store.definitions():
        doc = Document(f"rest:{kind}/{ident}", {f"{kind}s": [body]})
        engine._rest_docs[(kind, ident)] = doc


def compiled(engine: Engine, doc: Document) -> tuple[list[m.Scene], list[m.Automation]]:
    """The scenes and automations of a (checked) document, as they would be added now."""
    ctx = context(engine)
    scenes, _ = Compiler(ctx, doc).scenes()
    ctx.scenes = {**engine.scenes, **{s.id: s for s in scenes}}
    autos, _, _ = Compiler(ctx, doc).automations()
    return scenes, autos


def check_document(engine: Engine, doc: Document) -> list[Problem]:
    """Problems a document would have if added now (schema, then catalog), without adding it."""
    found = schema_problems(doc)
    if found:
        return found
    ctx = context(engine)
    scenes, problems = Compiler(ctx, doc).scenes()
    ctx.scenes = {**engine.scenes, **{s.id: s for s in scenes}}
    autos, more, _ = Compiler(ctx, doc).automations()
    problems += more
    taken = {a: s.source for a, s in engine.status.items()}
    for a in autos:
        if a.id in taken and not taken[a.id].startswith("rest:"):
            problems.append(Problem(doc.source, None, f"id {a.id} is already defined in {taken[a.id]}", a.id))
    return problems


def put_rest(engine: Engine, items: list[tuple[str, dict[str, Any]]]) -> None:
    """Add or replace automations and scenes given over REST (already checked), then
    re-index once: a document of N definitions costs one rebuild, not N."""
    for kind, body in items:
        ident = str(body["id"])
        engine._rest_docs[(kind, ident)] = Document(f"rest:{kind}/{ident}", {f"{kind}s": [body]})
        engine.store.put_definition(kind, ident, body, str(body.get("owner", "owner")))
    rebuild(engine)


def drop_rest(engine: Engine, kind: str, ident: str) -> bool:
    if engine._rest_docs.pop((kind, ident), None) is None:
        return False
    engine.store.drop_definition(kind, ident)
    rebuild(engine)
    return True


def context(engine: Engine) -> Context:
    broker = engine.broker

    def provided(path: str) -> bool:
        return engine.assume_provided or broker.provider_of(path) is not None

    grants = engine.policy.grants if engine.policy is not None else None
    return Context(
        catalog=broker.catalog,
        provided=provided,
        grant_for=(lambda s: grants.get(s)) if grants is not None else (lambda s: None),
        access=engine.access,
        brand=engine.brand,
        has_driving_state=engine.policy is not None or engine.assume_provided,
    )


def rebuild(engine: Engine) -> None:
    """Compile every source again against the live catalog and re-index. Persisted "since"
    times and running runs are kept, so nothing already accepted is lost."""
    engine._rebuild_pending = False
    docs = [*engine._docs, *engine._rest_docs.values()]
    ctx = context(engine)
    scenes: dict[str, m.Scene] = {}
    status: dict[str, Status] = {}
    for doc in docs:
        found, problems = Compiler(ctx, doc).scenes()
        for scene in found:
            if scene.id in scenes:
                problems.append(
                    Problem(
                        doc.source,
                        None,
                        f"scene {scene.id} is already defined in {scenes[scene.id].source}",
                        scene.id,
                    )
                )
                continue
            scenes[scene.id] = scene
        for p in problems:
            if p.kind == "no_provider" and p.automation:
                ctx.waiting_scenes.add(p.automation)
            status.setdefault(
                f"scene:{p.automation}", Status(f"scene:{p.automation}", "refused", doc.source)
            ).problems.append(p)
    ctx.scenes = scenes
    automations: dict[str, m.Automation] = {}
    for doc in docs:
        autos, problems, skipped = Compiler(ctx, doc).automations()
        for ident in skipped:
            status[ident] = Status(ident, "not_for_this_car", doc.source)
        for p in problems:
            key = p.automation or doc.source
            status.setdefault(key, Status(key, "refused", doc.source)).problems.append(p)
        for a in autos:
            if a.id in automations:
                status[a.id + "@" + doc.source] = Status(
                    a.id,
                    "refused",
                    doc.source,
                    [
                        Problem(
                            doc.source,
                            None,
                            f"id {a.id} is already defined in {automations[a.id].source}",
                            a.id,
                        )
                    ],
                )
                continue
            if doc.source.startswith("rest:"):
                a = replace(a, origin="rest")
            automations[a.id] = a
            status[a.id] = Status(a.id, "active" if engine.enabled(a) else "disabled", doc.source)
    engine.scenes = scenes
    engine.automations = automations
    engine.status = status
    if engine.started:
        engine._index()
