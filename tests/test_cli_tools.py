"""The tool pieces: `sim export` (CAN frames a replay reads back, or values), `can record`
(a python-can bus into a log), shell completion, and the example hub.yaml with every key."""

from __future__ import annotations

import csv
import dataclasses
import subprocess
import threading
import time
import uuid
from pathlib import Path

import can
import pytest
import yaml

from anycar.api.viss import VissLimits
from anycar.brands import ProfileEncoder
from anycar.cli.main import main
from anycar.hub.config import _TOP, HubConfig

ROOT = Path(__file__).resolve().parents[1]


def test_sim_export_writes_frames_a_replay_reads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "tesla.log"
    assert main(["sim", "export", "--brand", "tesla_model3", "--duration", "20", "--out", str(log)]) == 0
    assert main(["can", "replay", str(log), "--brand", "tesla_model3", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "bad input: none" in out
    assert int(out.split(" VSS updates")[0].split()[-1]) > 20


def test_sim_export_csv_has_a_column_per_signal(tmp_path: Path) -> None:
    out = tmp_path / "seal.csv"
    assert (
        main(["sim", "export", "--brand", "byd_seal", "--duration", "10", "--dt", "1", "--out", str(out)])
        == 0
    )
    rows = list(csv.reader(out.open()))
    assert rows[0][0] == "t" and "Vehicle.Speed" in rows[0]
    assert len(rows) == 11


def test_can_record_writes_what_is_on_the_bus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    channel = f"rec-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "trip.log"
    frames = ProfileEncoder("nio_et7").encode({"Vehicle.Speed": 33.0})
    codes: list[int] = []
    args = ["can", "record", "--interface", "virtual", "--channel", channel, "--out", str(out)]
    recorder = threading.Thread(
        target=lambda: codes.append(main([*args, "--frames", "5", "--seconds", "20"]))
    )
    recorder.start()
    with can.Bus(interface="virtual", channel=channel) as car:
        deadline = time.monotonic() + 20
        while recorder.is_alive() and time.monotonic() < deadline:
            for f in frames:
                car.send(f)
            time.sleep(0.05)
    recorder.join(20)
    assert codes == [0]
    with can.LogReader(str(out)) as reader:
        got = list(reader)
    assert len(got) >= 5 and got[0].arbitration_id == frames[0].arbitration_id
    assert "recorded 5 frames" in capsys.readouterr().out


def test_bash_completion_completes_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "bash"]) == 0
    script = tmp_path / "anycar.bash"
    script.write_text(capsys.readouterr().out)
    probe = f'source {script}; COMP_WORDS=(anycar bra); COMP_CWORD=1; _shtab_anycar; echo "${{COMPREPLY[@]}}"'
    assert subprocess.run(
        ["bash", "-c", probe], capture_output=True, text=True, timeout=30
    ).stdout.split() == ["brand"]
    probe = f'source {script}; COMP_WORDS=(anycar accessory pa); COMP_CWORD=2; _shtab_anycar; echo "${{COMPREPLY[@]}}"'
    assert "pair" in subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30).stdout


def test_example_hub_yaml_loads_and_names_every_key() -> None:
    path = ROOT / "examples" / "hub.yaml"
    config = HubConfig.load(path)
    assert config.ports == {"grpc": 55555, "viss": 8090, "http": 8080, "accessories": 8765}
    assert config.limits == VissLimits()  # every limit at its default, spelled out
    data = yaml.safe_load(path.read_text())
    assert set(data) == _TOP
    assert set(data["limits"]) == {f.name for f in dataclasses.fields(VissLimits)}
    assert set(data["tokens"]) == {"public_key", "audience", "issuer"} and set(data["tls"]) == {"cert", "key"}
    for line in path.read_text().splitlines():
        if (
            line.strip()
            and not line.lstrip().startswith("#")
            and ":" in line
            and not line.rstrip().endswith(":")
        ):
            assert "#" in line, f"uncommented key: {line}"


def test_demo_can_leave_every_mount_free(capsys: pytest.CaptureFixture[str]) -> None:
    import random

    offset = str(random.randint(1000, 9000))
    argv = ["demo", "--brand", "mg", "--no-virtual-accessories", "--headless", "--duration", "3"]
    assert main([*argv, "--port-offset", offset, "--no-automations"]) == 0
    assert "0 accessories fitted" in capsys.readouterr().out
