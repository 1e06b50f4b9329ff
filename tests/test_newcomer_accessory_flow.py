"""The README's accessory workflow, run as written against a real `anycar demo`: keygen, validate,
sign, trust on the running hub, start the SDK example, pair it with its code, see its controls,
set its speed and watch the stand-in motor print it. Only the ports are the ones the demo got."""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent


def readme_blocks() -> tuple[list[str], str]:
    """The shell lines of the accessory walkthrough and the SDK example (``fan.py``)."""
    text = README.read_text(encoding="utf-8")
    sh = next(b for b in re.findall(r"```sh\n(.*?)```", text, re.S) if "accessory keygen" in b)
    py = next(b for b in re.findall(r"```py\n(.*?)```", text, re.S) if b.startswith("# fan.py"))
    return [line for line in sh.splitlines() if line.strip()], py


def _start_demo(tmp: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    offset = random.randint(1000, 9000)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "200"}
    demo = subprocess.Popen(
        [str(BIN / "anycar"), "demo", "--headless", "--port-offset", str(offset)],
        cwd=tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    urls: dict[str, str] = {}
    deadline = time.monotonic() + 90
    assert demo.stdout is not None
    while "dashboard" not in urls and time.monotonic() < deadline:
        line = demo.stdout.readline()
        if not line:
            break
        m = re.match(r"\s+(\w+)\s+(\w+://\S+)", line)
        if m:
            urls[m.group(1)] = m.group(2)
    if "dashboard" not in urls:
        demo.kill()
        pytest.fail(f"the demo did not print its addresses: {urls}")
    return demo, urls


def test_readme_accessory_workflow_runs_as_written(tmp_path: Path) -> None:
    lines, fan_py = readme_blocks()
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    demo, urls = _start_demo(tmp_path)
    http = urls["http"].rstrip("/")
    accessories = urls["accessories"]
    (tmp_path / "fan.py").write_text(fan_py.replace("ws://127.0.0.1:8765", accessories))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "200"}
    background: list[subprocess.Popen[str]] = []
    outputs: dict[str, str] = {}
    try:
        for line in lines:
            command = line.replace("http://127.0.0.1:8080", http)
            if command.split("#")[0].rstrip().endswith("&"):
                words = shlex.split(command.split("&")[0])
                background.append(
                    subprocess.Popen(
                        words,
                        cwd=tmp_path,
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                )
                continue
            done = subprocess.run(
                ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
            )
            out = done.stdout + done.stderr
            assert "Traceback" not in out, f"{line}\n{out}"
            assert done.returncode == 0, f"{line} exited {done.returncode}:\n{out}"
            outputs[line.split("#")[0].strip()] = done.stdout
        # The accessory's controls appeared, under the name the owner gave it.
        listing = next(v for k, v in outputs.items() if k.endswith("/api/v1/accessories"))
        fans = [a for a in json.loads(listing)["accessories"] if a["id"] == "AcmeFan"]
        assert fans and fans[0]["name"] == "Acme clip fan" and fans[0]["state"] == "running"
        labels = {c["label"]: c["kind"] for c in fans[0]["controls"]}
        assert labels == {"Fan speed": "range", "Oscillating": "switch"}
        # ... and the speed set through VISS over HTTP reached the stand-in motor.
        fan = background[0]
        assert fan.stdout is not None
        seen = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = fan.stdout.readline()
            seen.append(text)
            if "motor: 40 %" in text:
                break
        assert any("pairing code 1234-5678" in s for s in seen), seen
        assert any("motor: 40 %" in s for s in seen), seen
    finally:
        for proc in background:
            proc.terminate()
            proc.wait(10)
        demo.terminate()
        demo.wait(30)
