"""The command line as a tool: plain full lines into a pipe, and a replay through the wrong
profile says so in words and names the profiles the log matches."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from anycar.brands import list_profiles, load_profile

ANYCAR = str(Path(sys.executable).parent / "anycar")
ENV = {k: v for k, v in os.environ.items() if k != "COLUMNS"}


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ANYCAR, *args], capture_output=True, text=True, timeout=timeout, env=ENV)


def test_lists_into_a_pipe_are_plain_full_lines() -> None:
    out = run("brand", "list").stdout
    assert "…" not in out and "━" not in out
    rows = [line.split("\t") for line in out.splitlines()[2:]]
    assert sorted(r[0] for r in rows) == sorted(p.id for p in list_profiles())
    signals = run("signals", "list").stdout.splitlines()
    paths = [line.split("\t")[0] for line in signals[2:]]
    assert len(paths) == 1267 and all(p.startswith("Vehicle.") for p in paths)
    assert (
        "Vehicle.Powertrain.TractionBattery.Charging.ChargingPort.FrontMiddle.IsChargingCableConnected"
        in paths
    )


def test_coverage_into_a_pipe_is_plain_rows_too() -> None:
    out = run("brand", "coverage").stdout
    assert "┃" not in out and "━" not in out
    header = out.splitlines()[1].split("\t")
    assert header[0] == "VSS signal (Vehicle.)" and len(header) == 15


def test_replay_through_the_wrong_profile_names_the_right_one() -> None:
    log = str(load_profile("xiaomi_su7").sample_log_path())
    done = run("can", "replay", log, "--brand", "tesla_model3", "--quiet")
    assert done.returncode == 1
    text = done.stdout + done.stderr
    assert "{'" not in text and "Traceback" not in text
    assert "does not match profile tesla_model3" in done.stderr
    assert "it matches best: xiaomi_su7 (100% of frames)" in done.stderr
    assert "try --brand xiaomi_su7" in done.stderr
    assert "with an id the profile's DBCs do not know" in done.stdout
    as_json = run("can", "replay", log, "--brand", "tesla_model3", "--quiet", "--json")
    summary = json.loads(as_json.stdout)
    assert summary["matches_profile"] is False
    assert summary["best_matches"][0] == {"profile": "xiaomi_su7", "share": 1.0}


def test_replay_of_a_matching_log_is_quiet_about_matches() -> None:
    log = str(load_profile("vw_mqb").sample_log_path())
    done = run("can", "replay", log, "--brand", "vw_mqb", "--quiet")
    assert done.returncode == 0 and "bad input: none" in done.stdout


def test_demo_into_a_pipe_prints_its_status_once() -> None:
    offset = str(random.randint(1000, 9000))
    done = run("demo", "--duration", "4", "--speedup", "5", "--port-offset", offset, timeout=90)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sum(1 for line in lines if line.startswith("● anycar")) == 1
    assert sum(1 for line in lines if "(Ctrl-C to stop)" in line) == 1
    assert all(line.count("dashboard http") <= 1 for line in lines)
    assert sum(1 for line in lines if "accessories fitted: " in line) == 1  # the summary, on its own line
