"""`anycar accessory keygen | sign | validate | list | trust | events`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from anycar.accessories import signing, virtual
from anycar.cli.main import main
from helpers_accessories import fit, make, running_hub


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_keygen_sign_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "vendor.pem"
    code, out, _ = run(capsys, "accessory", "keygen", "--out", str(key), "--json")
    assert code == 0
    info = json.loads(out)
    assert key.exists() and (key.stat().st_mode & 0o777) == 0o600
    code, _, err = run(capsys, "accessory", "keygen", "--out", str(key))
    assert code == 2 and "exists" in err

    src = virtual.manifest_path("clip_fan")
    signed = tmp_path / "fan.yaml"
    assert run(capsys, "accessory", "sign", str(src), "--key", str(key), "--out", str(signed))[0] == 0
    data = yaml.safe_load(signed.read_text())
    assert data["signature"]["key_id"] == info["key_id"]

    trust = f"{virtual.VIRTUAL_VENDOR_ID}:{info['public_key']}"
    code, out, _ = run(capsys, "accessory", "validate", str(signed), "--trust-key", trust, "--json")
    report = json.loads(out)
    assert code == 0 and report["valid"] and report["signature"]["status"] == "valid"

    data["power"]["peak_w"] = 1  # tampered after signing; still schema-valid? no: typical > peak
    data["power"]["typical_w"] = 1
    tampered = tmp_path / "tampered.yaml"
    tampered.write_text(yaml.safe_dump(data))
    code, out, _ = run(capsys, "accessory", "validate", str(tampered), "--trust-key", trust, "--json")
    report = json.loads(out)
    assert (
        code == 1
        and report["signature"]["status"] == "invalid"
        and "forged or altered" in report["signature"]["message"]
    )

    code, out, _ = run(capsys, "accessory", "validate", str(src))
    assert code == 0 and "valid" in out and "unsigned" in out

    # JSON in, JSON out
    json_src = tmp_path / "fan.json"
    json_src.write_text(json.dumps(virtual.manifest_data("clip_fan")))
    code, out, _ = run(capsys, "accessory", "sign", str(json_src), "--key", str(key))
    assert code == 0 and json.loads(out)["signature"]["algorithm"] == "Ed25519"


def test_validate_names_the_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = virtual.manifest_data("dash_display")
    data["vss"]["Brightness"]["unit"] = "nits"
    data["vss"]["Vehicle.ADAS.CruiseControl.SpeedSet"] = {}
    data["power"]["peak_w"] = "a lot"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    code, out, _ = run(capsys, "accessory", "validate", str(bad), "--json")
    report = json.loads(out)
    assert code == 1
    assert [p["field"] for p in report["problems"]] == ["power.peak_w"]  # schema errors come first
    data["power"]["peak_w"] = 15
    bad.write_text(yaml.safe_dump(data))
    code, out, _ = run(capsys, "accessory", "validate", str(bad))
    assert code == 1
    assert (
        "vss.Brightness.unit" in out
        and "Vehicle.ADAS.CruiseControl.SpeedSet" in out
        and "safety-critical" in out
    )
    code, _, err = run(capsys, "accessory", "validate", str(tmp_path / "missing.yaml"))
    assert code == 2 and "cannot read" in err


def test_list_views(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "accessory", "list", "--virtual", "--json")
    assert code == 0 and len(json.loads(out)) == len(virtual.VIRTUAL)
    code, out, _ = run(capsys, "accessory", "list", "--traits", "--json")
    assert "cargo_weight_sensor" in json.loads(out)
    code, out, _ = run(capsys, "accessory", "list", "--mounts", "xiaomi_su7", "--json")
    plan = json.loads(out)
    assert {m["max_w"] for m in plan["mounts"] if m["type"] == "quarter_inch_powered"} == {15.0, 27.0}
    code, out, _ = run(capsys, "accessory", "list", "--mounts", "kaiyun_pickman")
    assert code == 0 and "cargo_bed_rail" in out


def test_list_trust_and_events_on_a_hub_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "hub.sqlite3"
    code, _, err = run(capsys, "accessory", "list", "--db", str(db))
    assert code == 2 and "no hub database" in err

    async def commission() -> None:
        async with running_hub(db) as hub:
            fan = make("clip_fan", hub, "F-1")
            await fit(hub, fan, "dash_mount_left")
            await fan.stop()

    asyncio.run(commission())
    code, out, _ = run(capsys, "accessory", "list", "--db", str(db), "--json")
    listed = json.loads(out)
    assert [a["instance"] for a in listed["accessories"]] == ["Fan1"]
    assert "token" not in listed["accessories"][0]
    key_id = listed["trusted_keys"][0]["key_id"]
    code, out, _ = run(capsys, "accessory", "list", "--db", str(db))
    assert code == 0 and "Fan1" in out

    new_key = signing.generate_key()
    assert (
        run(
            capsys, "accessory", "trust", "add", "4660", signing.public_b64(new_key), "Acme", "--db", str(db)
        )[0]
        == 0
    )
    assert run(capsys, "accessory", "trust", "revoke", key_id, "leaked", "--db", str(db))[0] == 0
    code, _, err = run(capsys, "accessory", "trust", "revoke", "0000000000000000", "--db", str(db))
    assert code == 2 and "no trusted key" in err
    code, out, _ = run(capsys, "accessory", "list", "--db", str(db), "--json")
    keys = {k["key_id"]: k for k in json.loads(out)["trusted_keys"]}
    assert keys[key_id]["revoke_reason"] == "leaked" and signing.key_id(new_key) in keys

    code, out, _ = run(capsys, "accessory", "events", "--db", str(db), "--json")
    kinds = [e["kind"] for e in json.loads(out)]
    assert {"trust_added", "fitted", "commissioned", "trust_revoked"} <= set(kinds)
    code, out, _ = run(capsys, "accessory", "events", "--db", str(db), "--kind", "commissioned")
    assert code == 0 and "Fan1" in out


def test_demo_runs_a_drive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "demo.sqlite3"
    code, out, _ = run(
        capsys, "accessory", "demo", "--profile", "byd_seal", "--duration", "0.6", "--db", str(db)
    )
    assert code == 0
    assert "[shed]" in out and "[restore]" in out and "driving state parked -> moving" in out
    assert "told: moving" in out  # the display in the driver's view was told its restrictions
    code, out, _ = run(capsys, "accessory", "events", "--db", str(db), "--kind", "shed", "--json")
    assert json.loads(out)


async def test_serve_lets_an_owner_commission_from_the_keyboard(tmp_path: Path) -> None:
    import re
    import sys

    key = signing.generate_key()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "anycar.cli.main",
        "accessory",
        "serve",
        "--port",
        "0",
        "--db",
        str(tmp_path / "hub.sqlite3"),
        "--trust-key",
        f"{virtual.VIRTUAL_VENDOR_ID}:{signing.public_b64(key)}",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    lines: list[str] = []

    async def read_until(pattern: str) -> re.Match[str]:
        while True:
            raw = await asyncio.wait_for(proc.stdout.readline(), 20)  # type: ignore[union-attr]
            assert raw, "serve ended early:\n" + "".join(lines)
            lines.append(raw.decode())
            if m := re.search(pattern, lines[-1]):
                return m

    try:
        url = (await read_until(r"listening on (ws://\S+)")).group(1)
        lamp = virtual.build("cabin_light", serial="L-77", signing_key=key, pairing_code="1111-2222")
        lamp.start(url)
        await asyncio.wait_for(lamp.awaiting.wait(), 10)
        proc.stdin.write(b"commission fff1:8001:L-77 1111-3333 ceiling_mount_rear\n")
        await read_until(r"error: wrong pairing code")
        proc.stdin.write(b"commission fff1:8001:L-77 1111-2222 ceiling_mount_rear Reading\n")
        await read_until(r"Reading commissioned at ceiling_mount_rear")
        await asyncio.wait_for(lamp.running.wait(), 10)
        proc.stdin.write(b"set Vehicle.Cabin.Light.Spotlight.Row2.DriverSide.IsLightOn true\n")
        await read_until(r"IsLightOn: accepted")
        assert lamp.commands == [("IsLightOn", True)]
        proc.stdin.write(b"set Vehicle.LowVoltageBattery.CurrentVoltage 11.2\n")
        await read_until(r"\[shed\] Reading \(comfort\) shed")
        proc.stdin.write(b"quit\n")
        await lamp.stop()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
