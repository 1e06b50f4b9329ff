"""The README's logistics section run as written: its orders file saved as orders.csv, its
`anycar` lines in order in a temporary folder on a fresh SQLite database (the benchmark on the
instances shipped in tests/data/vrp)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_readme_logistics_commands_run_as_written(tmp_path: Path) -> None:
    section = README.read_text().split("## Logistics", 1)[1].split("\n## ", 1)[0]
    (tmp_path / "orders.csv").write_text(re.findall(r"```csv\n(.*?)```", section, re.S)[0])
    lines = [line for block in re.findall(r"```sh\n(.*?)```", section, re.S) for line in block.splitlines()]
    commands = [line for line in lines if line.startswith("anycar ")]
    assert len(commands) >= 5
    env = dict(
        os.environ,
        ANYCAR_FLEET_DB=str(tmp_path / "fleet.sqlite3"),
        ANYCAR_VRP_DIR=str(ROOT / "tests" / "data" / "vrp"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    out = {}
    for command in commands:
        done = subprocess.run(
            shlex.split(command),
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (command, done.stderr)
        out[" ".join(shlex.split(command)[1:4])] = done.stdout
    assert "imported 4 orders from orders.csv" in out["fleet orders import"]
    assert "o-1004" in out["fleet orders list"]
    planned = out["fleet plan --tenant"]
    assert "not served o-1002: needs tail_lift: no vehicle has a tail lift fitted now" in planned
    assert "not served o-1004: too heavy for every vehicle (900 kg; the largest payload is 350 kg)" in planned
    assert "PM-0011: o-1" in planned and "(accepted)" in planned
    assert "route v1 pushed to PM-0011: 3 stops, command" in " ".join(planned.split())
    assert (
        "Solomon VRPTW" in out["bench dispatch --instances"]
        and "Li & Lim PDPTW" in out["bench dispatch --instances"]
    )
