"""The README's "Fleet console" command lines, run as written (a fresh SQLite database in a
temporary folder; `serve` on free ports and its own share group, stopped once ready)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from anycar.fleet.console import CSP

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_console_commands_run_as_written(tmp_path: Path) -> None:
    section = README.read_text().split("## Fleet console", 1)[1].split("\n## ", 1)[0]
    lines = [line for block in re.findall(r"```sh\n(.*?)```", section, re.S) for line in block.splitlines()]
    assert len(lines) == 2
    env = dict(
        os.environ,
        ANYCAR_FLEET_DB=str(tmp_path / "fleet.sqlite3"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    serve = [
        *shlex.split(lines[0]),
        "--vehicle",
        "CONSOLE-README",
        "--group",
        f"readme-console-{os.getpid()}",
    ]
    serve += ["--port", "0", "--osmand-port", "0"]  # the last --port wins: free ports
    proc = subprocess.Popen(
        serve, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("anycar fleet ready "), proc.stderr.read() if proc.stderr else ""
        ready = json.loads(line.removeprefix("anycar fleet ready "))
        page = httpx.get(ready["console"], timeout=10)
        assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
        config = httpx.get(ready["console"] + "config.json", timeout=10).json()
        assert config["dashboard_url"] == "http://{vehicle}.hubs.lan:8080/"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    bench = subprocess.run(
        shlex.split(lines[1]), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert bench.returncode == 0, bench.stderr[-2000:]
    figures = json.loads(bench.stdout)
    assert figures["vehicles_in_page"] == 20 and figures["vehicles_drawn"] == 20
    assert figures["requests_elsewhere"] == 0
    assert figures["longtask_observer"] is True
    assert figures["flushes_matched"] > 0 and figures["ingest_to_drawn_max_s"] is not None
