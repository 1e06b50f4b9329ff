"""A walk through the command line with wrong arguments: every user error is one clear line and
a non-zero exit, never a traceback; typos get the nearest command, signal or log level."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from anycar.cli.main import main

ANYCAR = str(Path(sys.executable).parent / "anycar")


def run(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capfd.readouterr()
    return code, out, err


WRONG = [
    (["brnd", "list"], "did you mean 'brand'?"),
    (["brand", "lst"], "did you mean 'list'?"),
    (["sim", "exprt", "--out", "x.csv"], "did you mean 'export'?"),
    (["accessory", "pari", "1234-5678"], "did you mean 'pair'?"),
    (["signals", "show", "Speed"], "did you mean Vehicle.Speed"),
    (["hub", "--log-level", "verbose"], "'verbose' is not a log level"),
    (["sim", "plot", "--out", "/nonexistent/x.svg"], "/nonexistent/x.svg: No such file or directory"),
    (["sim", "export", "--out", "x.txt"], "choose a suffix"),
    (["sim", "cycle", "--out", "/nonexistent/x.csv"], "No such file or directory"),
    (["brand", "check", "nosuch"], "unknown brand profile 'nosuch'"),
    (["demo", "--brand", "nosuch", "--duration", "1"], "unknown brand profile 'nosuch'"),
    (["demo", "--port-offset", "20000", "--duration", "1"], "ports go from 1 to 65535"),
    (["can", "replay", "nosuch.log", "--brand", "xiaomi_su7"], "no such log file"),
    (["can", "record", "--out", "x.txt"], "a CAN log ends in"),
    (["can", "record", "--out", "/nonexistent/x.log"], "does not exist"),
    (["accessory", "sign", "nosuch.yaml", "--key", "k.pem"], "nosuch.yaml: No such file or directory"),
    (["accessory", "validate", "nosuch.yaml"], "cannot read"),
    (["accessory", "list", "--mounts", "nosuch"], "cannot read"),
    (["accessory", "pair", "1234-5678", "--hub", "http://127.0.0.1:9", "--wait", "0"], "no hub answers"),
    (["accessory", "trust", "add", "65522", "AAAA", "--hub", "http://127.0.0.1:9"], "no hub answers"),
    (["sim", "run", "--brand", "nosuch"], "no simulator parameters"),
    (["hub", "--config", "nosuch.yaml"], "cannot read hub config"),
    (["token", "mint", "--scope", "bogus"], "is not one of read, actuate, provide"),
    (["completion", "fish"], "invalid choice: 'fish'"),
    (
        ["fleet", "vehicle", "list", "--tenant", "x", "--db", "/nonexistent/f.db"],
        "unable to open database file",
    ),
    (["fleet", "vehicle", "list", "--tenant", "x", "--db", "bogus://u:secret@h/x"], "bogus://***@h/x"),
    (["fleet", "vehicle", "list", "--tenant", "x", "--db", "postgresql://127.0.0.1:9/x"], "connection"),
]


@pytest.mark.parametrize(("argv", "says"), WRONG, ids=[" ".join(a) for a, _ in WRONG])
def test_a_wrong_argument_is_one_clear_line(
    argv: list[str],
    says: str,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(argv, capfd)
    assert code != 0, (argv, out, err)
    assert "Traceback" not in out + err
    assert says in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(("error:", "anycar")), last


def test_a_read_only_data_folder_is_a_sentence(capfd: pytest.CaptureFixture[str]) -> None:
    argv = ["hub", "--brand", "xiaomi_su7", "--db", "/proc/anycar/hub.sqlite3"]
    argv += ["--grpc-port", "0", "--viss-port", "0", "--http-port", "0", "--accessory-port", "0"]
    code, out, err = run(argv, capfd)
    assert code == 2 and "Traceback" not in out + err
    assert "cannot open the hub database /proc/anycar/hub.sqlite3" in err and "--db FILE" in err


def test_a_taken_port_names_the_option_that_moves_it(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        argv = ["hub", "--brand", "xiaomi_su7", "--db", str(tmp_path / "h.sqlite3")]
        argv += ["--grpc-port", "0", "--viss-port", "0", "--http-port", "0", "--accessory-port", str(port)]
        code, out, err = run(argv, capfd)
    assert code == 2 and "Traceback" not in out + err
    assert f"port {port} (accessories)" in err and "--accessory-port PORT" in err


def test_a_bad_socketcan_bus_points_to_the_guide(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(
        ["can", "record", "--channel", "vcan-nosuch", "--out", str(tmp_path / "x.log")], capfd
    )
    assert code == 2 and "Traceback" not in out + err
    assert "cannot open CAN bus socketcan:vcan-nosuch" in err and "docs/socketcan.md" in err


def test_a_typo_in_a_real_process_gets_no_traceback_either() -> None:
    done = subprocess.run(
        [ANYCAR, "signals", "shw", "Vehicle.Speed"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2 and "did you mean 'show'?" in done.stderr and "Traceback" not in done.stderr
