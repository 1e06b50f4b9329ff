"""`anycar sim plot|run|cycle` and `anycar bench sim` from the command line's entry point."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from anycar.cli.main import main

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("cycle", ["wltc3", "delivery"])
def test_plot_writes_an_svg_with_speed_soc_and_12v(tmp_path: Path, cycle: str) -> None:
    out = tmp_path / f"{cycle}.svg"
    assert main(["sim", "plot", "--cycle", cycle, "--out", str(out), "--dt", "1"]) == 0
    root = ET.parse(out).getroot()
    assert root.tag == SVG + "svg"
    lines = root.findall(f"{SVG}polyline")
    assert len(lines) == 3 and all(len(p.get("points", "").split()) > 100 for p in lines)
    labels = " ".join(t.text or "" for t in root.iter(SVG + "text"))
    assert "Speed (km/h)" in labels and "state of charge" in labels and "12 V rail" in labels
    if cycle == "delivery":
        assert "parked at a delivery stop" in labels


def test_run_prints_a_json_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "run", "--brand", "byd_seal", "--duration", "600", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["vehicle"] == "byd_seal" and result["simulated_s"] == 600.0
    assert result["soc_end"] < result["soc_start"] and result["distance_km"] > 3


def test_cycle_export_is_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    main(["sim", "cycle", "--cycle", "delivery", "--seed", "4"])
    first = capsys.readouterr().out
    main(["sim", "cycle", "--cycle", "delivery", "--seed", "4"])
    assert capsys.readouterr().out == first
    assert first.startswith("time_s,speed_kmh,phase\n0,0.00,start\n")


def test_unknown_brand_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "run", "--brand", "trabant", "--json"]) == 2
    assert "no simulator parameters for profile 'trabant'" in capsys.readouterr().err


def test_bench_sim_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "sim", "--seconds", "120", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["benchmark"] == "sim" and result["steps"] == 240 and result["steps_per_s"] > 0
