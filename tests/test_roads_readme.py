"""The README's road-network examples, run as written: the Python block, the bench lines, and the
rebuild tool (in a copy of the repository layout, so the shipped files are not rewritten)."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SECTION = (ROOT / "README.md").read_text("utf-8").split("## Road network and the whole-system demo", 1)[1]
SECTION = SECTION.split("\n## ", 1)[0]


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", SECTION, re.S)


def test_readme_python_example_runs():
    (code,) = _blocks("python")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    text = out.getvalue()
    assert "True" in text and "LineString" in text


def _shell_lines() -> list[str]:
    return [line for block in _blocks("sh") for line in block.splitlines() if line.strip()]


def test_readme_bench_lines_run():
    lines = [line for line in _shell_lines() if line.startswith("anycar bench roads")]
    assert len(lines) == 2
    for line in lines:
        argv = shlex.split(line)
        argv[0] = str(Path(sys.executable).with_name("anycar"))
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert "matrix_s_median" in done.stdout


@pytest.mark.skipif(not (SHARED / "osm").is_dir(), reason="needs ../shared/osm beside the repository")
def test_readme_rebuild_line_runs(tmp_path):
    (line,) = [line for line in _shell_lines() if line.startswith("python tools/build_roads.py")]
    repo = tmp_path / "repo"
    (repo / "tools").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "build_roads.py", repo / "tools")
    (tmp_path / "shared").symlink_to(SHARED)
    argv = shlex.split(line)
    argv[0] = sys.executable
    done = subprocess.run(argv, cwd=repo, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    built = np.load(repo / "src/anycar/roads/data/helsinki_centre.npz")
    shipped = np.load(ROOT / "src/anycar/roads/data/helsinki_centre.npz")
    assert all(np.array_equal(built[k], shipped[k]) for k in shipped.files)
