"""The README's examples run as written: Python blocks in order, YAML blocks named by their first line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    ran = 0
    for lang, body in re.findall(r"```(python|yaml)\n(.*?)```", README.read_text(), re.S):
        first = body.splitlines()[0]
        if lang == "yaml":
            if first.startswith("# ") and "." in first:
                (tmp_path / first[2:].strip()).write_text(body)
            continue
        exec(compile(body, f"README.md:{first}", "exec"), namespace)
        ran += 1
    assert ran >= 3
