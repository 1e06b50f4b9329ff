"""The README's `anycar fleet` command lines, run as written (in a temporary folder, on a fresh
SQLite database); `serve` and `ingest` run forever, so they are started and stopped once ready."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_fleet_commands_run_as_written(tmp_path: Path) -> None:
    section = README.read_text().split("## Fleet cloud", 1)[1].split("\n## ", 1)[0]
    lines = [line for block in re.findall(r"```sh\n(.*?)```", section, re.S) for line in block.splitlines()]
    commands = [line for line in lines if line.startswith("anycar fleet ")]
    assert len(commands) >= 8
    env = dict(
        os.environ,
        ANYCAR_FLEET_DB=str(tmp_path / "fleet.sqlite3"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    for command in commands:
        argv = shlex.split(command)
        if argv[2] in ("serve", "ingest"):
            argv += ["--vehicle", "PM-0001", "--group", f"readme-{os.getpid()}"]
            if argv[2] == "serve":
                argv += ["--port", "0", "--osmand-port", "0"]  # the last --port wins: free ports
            proc = subprocess.Popen(
                argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            assert proc.stdout is not None
            line = proc.stdout.readline()
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            assert line.startswith("anycar fleet ready "), (
                command,
                proc.stderr.read() if proc.stderr else "",
            )
            continue
        done = subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, (command, done.stderr)
    assert "user PM-0001" in (tmp_path / "broker" / "acl").read_text()
