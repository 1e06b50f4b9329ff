"""Your own DBC and mapping from the command line: --dbc/--mapping/--overlay and --profile DIR."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from anycar.cli.main import build_parser, main
from anycar.cli.profile_args import profile_from_args
from anycar.hub import HubConfig
from anycar.hub.assemble import HubParts, build_hub
from anycar.hub.cabin import CabinComponent
from anycar.hub.vehicle import VehicleComponent
from hub_support import FREE_PORTS

KUKSA = Path(__file__).resolve().parent / "data" / "kuksa"
DBC = str(KUKSA / "Model3CAN.dbc")
MAPPING = str(KUKSA / "vss_4.2" / "vss_dbc.json")
LOG = str(KUKSA / "model3_synthetic.log")


def _updates(out: str) -> list[tuple[str, object]]:
    rows = [json.loads(line) for line in out.splitlines() if line.startswith('{"t"')]
    return [(r["path"], r["value"]) for r in rows]


def test_replay_with_your_own_dbc_and_mapping(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["can", "replay", LOG, "--dbc", DBC, "--mapping", MAPPING, "--json"]) == 0
    out, err = capsys.readouterr()
    updates = _updates(out)
    paths = {p for p, _ in updates}
    assert {
        "Vehicle.Speed",
        "Vehicle.Powertrain.Transmission.CurrentGear",
        "Vehicle.OBD.AmbientAirTemperature",
    } <= paths
    assert err == ""  # KUKSA's files load without a warning


def test_a_profile_folder_reads_the_same_as_the_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "my_model3"
    folder.mkdir()
    shutil.copy(DBC, folder / "Model3CAN.dbc")
    shutil.copy(MAPPING, folder / "vss_dbc.json")
    (folder / "profile.yaml").write_text(
        "brand: Tesla\nmodel: Model 3 (KUKSA)\nbuses:\n  - {name: can, dbc: Model3CAN.dbc}\nmappings: [vss_dbc.json]\n"
    )
    assert main(["can", "replay", LOG, "--profile", str(folder), "--json"]) == 0
    from_folder = _updates(capsys.readouterr().out)
    assert main(["can", "replay", LOG, "--dbc", DBC, "--mapping", MAPPING, "--json"]) == 0
    assert from_folder == _updates(capsys.readouterr().out) and from_folder


def test_an_overlay_gives_the_mapping_its_signals_and_a_bad_rule_is_only_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "Vehicle.Speed:\n  dbc2vss: {signal: DI_uiSpeed, interval_ms: 100}\n"
        "Vehicle.Garage.OutsideTemperature:\n  dbc2vss: {signal: VCFRONT_tempAmbientFiltered}\n"
        "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen:\n  dbc2vss: {signal: NoSuchSignal}\n"
    )
    overlay = tmp_path / "garage.vspec"
    overlay.write_text(
        "Vehicle.Garage:\n  type: branch\n  description: My additions.\n"
        "Vehicle.Garage.OutsideTemperature:\n  type: sensor\n  datatype: float\n  unit: celsius\n"
        "  description: Outside air, as the body controller filters it.\n"
    )
    args = ["can", "replay", LOG, "--dbc", DBC, "--mapping", str(mapping), "--json"]
    assert main([*args, "--overlay", str(overlay)]) == 0
    out, err = capsys.readouterr()
    assert {"Vehicle.Speed", "Vehicle.Garage.OutsideTemperature"} <= {p for p, _ in _updates(out)}
    warnings = err.strip().splitlines()
    assert len(warnings) == 1 and f"{mapping}:5: Vehicle.Cabin.Door.Row1.DriverSide.IsOpen" in warnings[0]
    assert "'NoSuchSignal'" in warnings[0]
    assert main(args) == 0  # without the overlay the new signal is unknown: one more warning, the rest runs
    out, err = capsys.readouterr()
    assert "Vehicle.Speed" in {p for p, _ in _updates(out)}
    assert f"{mapping}:3: Vehicle.Garage.OutsideTemperature: unknown VSS path" in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--mapping", MAPPING], "--mapping goes with --dbc"),
        (["--dbc", DBC], "--dbc needs --mapping"),
        (["--dbc", "nope.dbc", "--mapping", MAPPING], "--dbc nope.dbc: no such file"),
        (["--profile", "/nonexistent/car"], "not a brand profile folder"),
        (["--profile", str(KUKSA), "--brand", "tesla_model3"], "choose one"),
        ([], "give the car"),
        (["--overlay", MAPPING], "--overlay needs a car"),
    ],
)
def test_wrong_options_are_one_line_errors(argv: list[str], words: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "anycar.cli.main", "can", "replay", LOG, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert words in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ")


def test_on_top_of_a_brand_the_car_keeps_its_mounts_and_simulator() -> None:
    args = build_parser().parse_args(["hub", "--brand", "tesla_model3", "--dbc", DBC, "--mapping", MAPPING])
    profile = profile_from_args(args)
    assert profile is not None and profile.id == "tesla_model3"
    assert profile.file("mounts.yaml").is_file()
    assert [b.dbc for b in profile.buses] == [[DBC]] and profile.mappings == [MAPPING]
    assert profile.title == "Tesla Model 3 (Model3CAN.dbc, vss_dbc.json)"


def test_hub_reads_your_own_dbc_and_mapping_from_a_log(tmp_path: Path) -> None:
    args = build_parser().parse_args(["hub", "--dbc", DBC, "--mapping", MAPPING, "--can", LOG])
    profile = profile_from_args(args)
    config = HubConfig()
    config.ports = dict.fromkeys(config.ports, 0)

    async def run() -> object:
        async with build_hub(config, HubParts(profile=profile, can=LOG, dashboard=False)) as hub:
            assert not any(isinstance(c, CabinComponent) for c in hub.components)  # no mounts known
            assert any(isinstance(c, VehicleComponent) for c in hub.components)
            for _ in range(400):
                got = hub.broker.get("Vehicle.Powertrain.Transmission.CurrentGear")
                if got is not None:
                    return got
                await asyncio.sleep(0.05)
        raise AssertionError("no value from the replayed log")

    assert asyncio.run(run()) is not None


def test_demo_drives_the_default_car_through_your_own_dbc() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "anycar.cli.main",
            "demo",
            "--dbc",
            DBC,
            "--mapping",
            MAPPING,
            "--headless",
            "--duration",
            "2",
            "--port-offset",
            "523",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Xiaomi SU7 (Model3CAN.dbc, vss_dbc.json), driven by the simulator" in done.stdout
    assert "accessories fitted" in done.stdout


def test_can_live_reads_your_own_dbc_and_mapping(capsys: pytest.CaptureFixture[str]) -> None:
    import threading
    import time

    import can

    from anycar.can.sources import read_log

    frames = [f for f in read_log(LOG) if f.arbitration_id == 0x257]  # ID257DIspeed: Vehicle.Speed
    stop = threading.Event()

    def send() -> None:
        with can.Bus(interface="virtual", channel="interop-can-live") as bus:
            while not stop.is_set():
                for f in frames[:5]:
                    bus.send(can.Message(arbitration_id=f.arbitration_id, data=f.data, is_extended_id=False))
                time.sleep(0.05)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        argv = ["can", "live", "--dbc", DBC, "--mapping", MAPPING, "--interface", "virtual"]
        assert main([*argv, "--channel", "interop-can-live", "--seconds", "1.5", "--json"]) == 0
    finally:
        stop.set()
        sender.join(5)
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any(r["path"] == "Vehicle.Speed" for r in rows)


@pytest.mark.parametrize(
    ("extra", "words"),
    [(["--virtual-accessories"], "has no mount points"), (["--simulate"], "no simulator parameters")],
)
def test_hub_says_what_a_car_of_your_own_lacks(extra: list[str], words: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "anycar.cli.main",
            "hub",
            "--dbc",
            DBC,
            "--mapping",
            MAPPING,
            *FREE_PORTS,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr
