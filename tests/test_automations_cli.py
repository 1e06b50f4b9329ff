"""`anycar automation` and `anycar scene`: offline validation with exit codes and file:line, and
the remote commands against a real hub's REST API."""

from __future__ import annotations

from pathlib import Path

import pytest

from anycar.automations.component import examples_dir
from anycar.cli.automation import parse_at
from anycar.cli.main import main
from automations_support import hub_in_thread


def test_validate_offline_reports_file_line_and_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "automations:\n  - id: slow\n    triggers: [{signal: Vehicle.Sped, above: 3}]\n    actions: [{notify: x}]\n"
    )
    assert main(["automation", "validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3: [slow]" in err and "did you mean Vehicle.Speed" in err
    assert main(["automation", "validate", str(examples_dir())]) == 0  # accessories' paths are notes offline
    assert main(["automation", "validate", str(tmp_path / "missing.yaml")]) == 2


def test_validate_against_a_brand_profile_with_its_accessories(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["automation", "validate", str(examples_dir()), "--brand", "xiaomi_su7", "--json"]) == 1
    import json

    out = json.loads(capsys.readouterr().out)
    refused = {p["automation"] for p in out["problems"]}
    assert refused == {"cooler_shed_on_low_12v"}  # no cup cooler fits an SU7; PICKMAN's is skipped


def test_parse_at() -> None:
    assert parse_at(
        "Vehicle.Speed=0, Vehicle.Cabin.Door.Row1.DriverSide.IsOpen=true,driving_state=parked"
    ) == {
        "Vehicle.Speed": 0,
        "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen": True,
        "driving_state": "parked",
    }
    with pytest.raises(Exception, match="PATH=VALUE"):
        parse_at("Vehicle.Speed")


def test_remote_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with hub_in_thread(tmp_path) as hub:
        url = ["--hub", hub.endpoints()["http"]]
        assert main(["automation", "list", *url]) == 0
        out = capsys.readouterr().out
        assert "welcome_on_unlock" in out and "cargo_camera_tailgate" in out
        assert "cooler_shed_on_low_12v refused" in out
        assert (
            main(
                [
                    "automation",
                    "test",
                    "welcome_on_unlock",
                    "--at",
                    "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked=false",
                    *url,
                ]
            )
            == 0
        )
        out = capsys.readouterr().out
        assert "(dry run)" in out and "apply scene welcome: would apply" in out
        assert main(["automation", "trigger", "welcome_on_unlock", *url]) == 0
        capsys.readouterr()
        import time

        deadline = time.monotonic() + 20
        while True:
            assert main(["automation", "trace", "welcome_on_unlock", "--json", *url]) == 0
            import json

            traces = json.loads(capsys.readouterr().out)["traces"]
            if traces and traces[0]["result"] != "running":
                break
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert traces[0]["actions"][0]["action"] == "apply scene welcome"
        assert main(["automation", "trace", "welcome_on_unlock", *url]) == 0
        assert "apply scene welcome" in capsys.readouterr().out
        assert main(["scene", "list", *url]) == 0
        assert "welcome" in capsys.readouterr().out
        assert main(["scene", "apply", "welcome", *url]) == 0
        assert "Vehicle.Accessories.Display1.Text" in capsys.readouterr().out
        assert main(["automation", "disable", "nope", *url]) == 2
        assert "no automation 'nope'" in capsys.readouterr().err
        assert main(["automation", "list", "--hub", "http://127.0.0.1:9"]) == 2
