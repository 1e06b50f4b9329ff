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


def test_readme_custom_dbc_and_mapping_command_runs_as_written() -> None:
    """The README's `anycar ... --dbc ... --mapping ...` lines, run from the repository root."""
    import os
    import shlex
    import subprocess
    import sys

    root = README.parent
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.S)
    commands = [
        line for b in blocks for line in b.splitlines() if line.startswith("anycar ") and "--dbc" in line
    ]
    assert commands, "README shows no custom DBC + mapping command"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for command in commands:
        done = subprocess.run(
            shlex.split(command), cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, (command, done.stderr)
        assert "Vehicle.Speed = " in done.stdout and "VSS updates" in done.stdout, done.stdout[-500:]
        assert "warning" not in done.stderr, done.stderr
