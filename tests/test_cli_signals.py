"""The command line over the catalog and the broker benchmark, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from anycar.cli.main import main

ANYCAR = [sys.executable, "-m", "anycar.cli.main"]


def test_signals_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["signals", "list", "Vehicle.Cabin.Door.*.*.IsOpen", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4 and rows[0]["datatype"] == "boolean"


def test_signals_show_with_overlay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overlay = tmp_path / "o.vspec"
    overlay.write_text("Vehicle.Speed:\n  max: 45\n")
    assert main(["signals", "show", "Vehicle.Speed", "--overlay", str(overlay), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["max"] == 45


def test_unknown_path_is_a_clear_error_and_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["signals", "show", "Vehicle.Sped"]) == 2
    assert "did you mean Vehicle.Speed" in capsys.readouterr().err


def test_bad_overlay_file_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overlay = tmp_path / "bad.vspec"
    overlay.write_text("Vehicle.Speed:\n  max: 45\nVehicle.X:\n  type: sensor\n  datatype: nope\n")
    assert main(["signals", "list", "Vehicle", "--overlay", str(overlay)]) == 2
    assert f"{overlay}:3: Vehicle.X: datatype 'nope'" in capsys.readouterr().err


def test_bench_broker_prints_its_figures_as_json() -> None:
    out = subprocess.run(
        [*ANYCAR, "bench", "broker", "--json", "--seconds", "0.2"], capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout)
    assert {"updates_per_s", "p50_ms", "p99_ms"} <= set(result)
    assert [r["subscribers"] for r in result["runs"]] == [1, 10]
    assert result["runs"][0]["dropped"] == 0 and result["updates_per_s"] > 0
