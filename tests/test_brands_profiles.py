"""Brand profiles: every one loads, lints clean against its DBC and VSS, and the CLI shows them."""

from __future__ import annotations

import json

import pytest

from anycar.brands import list_profiles, load_profile
from anycar.can.lint import lint_mapping
from anycar.cli.main import main
from anycar.errors import ConfigError
from anycar.model import Catalog
from profiles_support import REAL, REFERENCE


@pytest.mark.parametrize("pid", REAL + REFERENCE)
def test_profile_lints_without_errors(pid: str) -> None:
    profile = load_profile(pid)
    findings = lint_mapping(profile.network(), profile.mapping(), Catalog.load_default())
    assert [f for f in findings if f.level == "error"] == []
    assert profile.reference is (pid in REFERENCE)
    assert profile.directory.name == pid and profile.file("profile.yaml").is_file()


def test_real_profiles_map_the_common_signals() -> None:
    rich = [p for p in REAL if len(load_profile(p).mapping().paths()) >= 16]
    assert len(rich) >= 6
    for pid in REAL:
        if (load_profile(pid).directory / "LICENSE-opendbc").is_file() is False:
            raise AssertionError(f"{pid} ships an opendbc file without its licence")


def test_reference_profiles_encode_what_a_simulator_drives() -> None:
    needed = {
        "Vehicle.Speed",
        "Vehicle.Powertrain.Transmission.SelectedGear",
        "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
        "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen",
        "Vehicle.Body.Lights.Beam.Low.IsOn",
        "Vehicle.Cabin.HVAC.AmbientAirTemperature",
        "Vehicle.CurrentLocation.Latitude",
        "Vehicle.CurrentLocation.Longitude",
        "Vehicle.CurrentLocation.Heading",
        "Vehicle.LowVoltageBattery.CurrentVoltage",
        "Vehicle.TraveledDistance",
        "Vehicle.LowVoltageSystemState",
    }
    for pid in REFERENCE:
        assert needed <= set(load_profile(pid).mapping().paths("vss2dbc")), pid


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="tesla_model3"):
        load_profile("trabant")
    assert len(list_profiles()) >= 14


def test_cli_brand_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["brand", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["id"] for r in rows} >= set(REAL + REFERENCE)
    assert main(["brand", "check", "mg", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert main(["brand", "coverage", "--json"]) == 0
    cov = json.loads(capsys.readouterr().out)
    assert "tesla_model3" in cov["signals"]["Vehicle.Speed"]


def test_cli_check_reports_file_and_line(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    from anycar.brands.profile import load_profile_dir
    from anycar.can.lint import lint_mapping as lint

    src = load_profile("mg").directory
    d = Path(str(tmp_path)) / "mg"
    d.mkdir()
    for f in src.iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    (d / "mapping.yaml").write_text(
        "Vehicle.Speed:\n  dbc2vss: {signal: NoSuchSignal}\nVehicle.Sped:\n  dbc2vss: {signal: VehSpdAvgHSC2}\n"
        "Vehicle.IsMoving:\n  dbc2vss: {signal: VehSdslStsHSC2, transform: {mapping: [{from: 0, to: 7}]}}\n"
    )
    profile = load_profile_dir(d)
    findings = lint(profile.network(), profile.mapping(), Catalog.load_default())
    text = "\n".join(str(f) for f in findings)
    assert "mapping.yaml:1" in text and "NoSuchSignal" in text
    assert "mapping.yaml:3" in text and "unknown VSS path" in text
    assert "mapping.yaml:5" in text and "expected boolean" in text


def test_cli_replay_prints_changes(capsys: pytest.CaptureFixture[str]) -> None:
    log = load_profile("kaiyun_pickman").sample_log_path()
    assert main(["can", "replay", str(log), "--brand", "kaiyun_pickman", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"path": "Vehicle.Speed"' in out
    assert main(["can", "dbc", str(load_profile("toyota_2017").directory / "toyota_2017_ref_pt.dbc")]) == 0


def test_bench_can_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "can", "--brand", "byd_seal", "--frames", "2000", "--repeat", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("frames_per_s", "baseline_frames_per_s", "ratio", "mapped_only", "vss_updates"):
        assert key in result
    assert result["frames"] == 2000 and result["vss_updates"] > 0
    assert not {"wrong_length", "unknown_id", "out_of_range"} & set(result["bad_input"])
