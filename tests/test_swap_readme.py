"""The README's battery-swap section run as written: its commands in a temporary folder on a
fresh SQLite database (``serve`` and ``station`` run until stopped: the station must boot at the
CSMS of ``serve`` over TLS before both are stopped; the fixed ports are swapped for free ones),
and its Python block."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anycar.cli.main import main
from swap_support import Pki

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = README.read_text().split("## Battery-swap stations (OCPP 2.1)", 1)[1].split("\n## ", 1)[0]


def _line(proc: subprocess.Popen[str], prefix: str, timeout: float = 60.0) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(prefix):
            return line
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no {prefix!r} line: {proc.stderr.read() if proc.stderr else ''}")


def test_readme_swap_commands_run_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = [
        line
        for block in re.findall(r"```sh\n(.*?)```", SECTION, re.S)
        for line in block.splitlines()
        if line.strip()
    ]
    assert len(commands) == 8
    Pki(tmp_path, "ca").issue("csms", server=True)  # ca.pem, csms.pem, csms.key as the commands name them
    env = dict(
        os.environ,
        ANYCAR_FLEET_DB=str(tmp_path / "fleet.sqlite3"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    serve: subprocess.Popen[str] | None = None
    port = ""
    try:
        for command in commands:
            argv, out = shlex.split(command), None
            if ">" in argv:
                argv, out = argv[: argv.index(">")], argv[argv.index(">") + 1]
            if argv[:3] == ["anycar", "fleet", "serve"]:
                argv[argv.index("--ocpp-port") + 1] = "0"
                argv += [
                    "--port",
                    "0",
                    "--osmand-port",
                    "0",
                    "--vehicle",
                    "PM-0003",
                    "--group",
                    f"readme-swap-{os.getpid()}",
                ]
                serve = subprocess.Popen(
                    argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
                ready = _line(serve, "anycar fleet ready ")
                port = re.search(r'"ocpp": "wss://127.0.0.1:(\d+)/ocpp"', ready).group(1)  # type: ignore[union-attr]
                continue
            if argv[:3] == ["anycar", "swap", "station"]:
                argv = [a.replace(":9000/", f":{port}/") for a in argv]
                station = subprocess.Popen(
                    argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
                try:
                    assert _line(station, "anycar swap station town-1 ready")
                finally:
                    station.send_signal(signal.SIGTERM)
                    station.wait(30)
                continue
            # the short commands run in this process (the same parser and code as the shell's), to save start-ups
            monkeypatch.chdir(tmp_path)
            monkeypatch.setenv("ANYCAR_FLEET_DB", env["ANYCAR_FLEET_DB"])
            capsys.readouterr()
            assert main(argv[1:]) == 0, (command, capsys.readouterr().err)
            printed = capsys.readouterr().out
            if out:
                (tmp_path / out).write_text(printed)
            if argv[:3] == ["anycar", "swap", "passport"]:
                assert "PM-0003-PACK" in printed and "in_vehicle" in printed
    finally:
        if serve is not None:
            serve.send_signal(signal.SIGTERM)
            serve.wait(30)
    assert len((tmp_path / "town-1.password").read_text().strip()) >= 32
    assert (tmp_path / "queue.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_readme_swap_python_runs_as_written(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", SECTION, re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md (swap)", "exec"), {})
