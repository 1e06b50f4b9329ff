"""The README's "Fleet commands, inventory and OTA" section, run as written: its shell block line
by line in bash (in a temporary folder, on a fresh SQLite database and signing key), its Python
block as it stands; then what the commands left in the database is checked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from anycar.fleet import commands, ota, registry
from anycar.fleet.db import make_engine

README = Path(__file__).resolve().parents[1] / "README.md"


def _section() -> str:
    return README.read_text().split("## Fleet commands, inventory and OTA", 1)[1].split("\n## ", 1)[0]


def test_readme_fleet_command_lines_run_as_written(tmp_path: Path) -> None:
    (block,) = re.findall(r"```sh\n(.*?)```", _section(), re.S)
    env = dict(
        os.environ,
        ANYCAR_FLEET_DB=str(tmp_path / "fleet.sqlite3"),
        ANYCAR_FLEET_KEY=str(tmp_path / "fleet-signing.pem"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    lines = [line for line in block.splitlines() if line.strip()]
    assert len(lines) >= 12
    for line in lines:
        done = subprocess.run(
            ["bash", "-c", line],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (line, done.stderr)
    assert (tmp_path / "fleet-signing.pem").stat().st_mode & 0o077 == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'fleet.sqlite3'}")
    try:
        tid = registry.tenant_id(engine, "acme")
        made = commands.listing(engine, tid)
        assert [c["action"] for c in made] == ["fleet_event", "actuate", "scene"]
        assert made[0]["body"] == {"type": "delivery_assigned", "data": {"order": "o-17"}}
        assert made[1]["body"] == {"Vehicle.Accessories.Cooler1.IsOn": True}
        assert {c["status"] for c in made} == {"pending"}  # no server ran to send them
        (release,) = ota.releases(engine)
        assert (release["vendor_id"], release["product_id"], release["version"]) == (65521, 32773, "1.0.0")
        (rollout,) = ota.listing(engine, tid)
        assert (rollout["percent"], rollout["targets"], rollout["state"]) == (
            10,
            0,
            "done",
        )  # nothing fitted yet
    finally:
        engine.dispose()


def test_readme_fleet_command_python_runs(tmp_path: Path) -> None:
    (block,) = re.findall(r"```python\n(.*?)```", _section(), re.S)
    exec(compile(block, "README.md", "exec"), {})
