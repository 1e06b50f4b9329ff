"""Every brand can be seen working: simulator parameters and a sample log for all 14 profiles,
frames from the simulated ECUs that the profile's own mapping decodes back, and counters and
checksums computed as the cars' ECUs do (checked against the algorithms as opendbc states them)."""

from __future__ import annotations

import itertools
from pathlib import Path

import can
import pytest
import yaml

from anycar.brands import adapter_for, list_profiles, load_profile
from anycar.brands.checksums import hyundai_whl_spd11, volkswagen_mqb
from anycar.brands.ecus import EcuEncoder
from anycar.broker import SignalBroker
from anycar.can.sources import replay
from anycar.sim.simulator import Simulator
from anycar.sim.vehicle import load_vehicle

PROFILES = [p.id for p in list_profiles()]
CHECKSUMS = yaml.safe_load((Path(load_profile("vw_mqb").directory).parent / "checksums.yaml").read_text())


def test_fourteen_profiles() -> None:
    assert len(PROFILES) == 14


@pytest.mark.parametrize("pid", PROFILES)
def test_every_profile_has_simulator_parameters_marked_as_estimates(pid: str) -> None:
    params = load_vehicle(pid)
    assert params.mass_kg > 500 and params.battery.capacity_kwh > 0
    text = (
        Path(load_profile("xiaomi_su7").directory).parents[2] / "sim/data/vehicles" / f"{pid}.yaml"
    ).read_text()
    if not load_profile(pid).reference:
        assert "ESTIMATES" in text and "Source:" in text
    sim = Simulator.for_profile(pid, seed=1)
    steps = [sim.step() for _ in range(300)]
    assert max(s.values["Vehicle.Speed"] for s in steps) > 5


@pytest.mark.parametrize("pid", PROFILES)
def test_every_profile_ships_a_sample_log_that_replays_cleanly(pid: str) -> None:
    profile = load_profile(pid)
    log = profile.sample_log_path()
    assert log is not None and log.is_file(), pid
    broker = SignalBroker()
    adapter = adapter_for(profile, broker)
    replay(adapter, log)
    assert adapter.bad.total() == 0, (pid, adapter.bad)
    assert adapter.published > 100
    assert broker.get("Vehicle.Speed") is not None


@pytest.mark.parametrize("pid", PROFILES)
def test_simulated_ecus_frames_decode_back_to_the_values(pid: str) -> None:
    enc = EcuEncoder(pid)
    adapter = adapter_for(pid, SignalBroker())
    values = {"Vehicle.Speed": 42.0, "Vehicle.Powertrain.Transmission.SelectedGear": 127}
    sent = {k: v for k, v in values.items() if k in enc.paths}
    assert "Vehicle.Speed" in sent, pid
    got = dict(adapter.decode(enc.encode(sent, timestamp=1.0)))
    assert abs(got["Vehicle.Speed"] - 42.0) <= 1.0, (pid, got)
    if "Vehicle.Powertrain.Transmission.SelectedGear" in sent:
        assert got["Vehicle.Powertrain.Transmission.SelectedGear"] == 127


def _frames(pid: str) -> list[can.Message]:
    log = load_profile(pid).sample_log_path()
    assert log is not None
    with can.LogReader(str(log)) as reader:
        return list(reader)


def test_crc8h2f_is_autosar_check_value() -> None:
    # AUTOSAR's check value of CRC-8H2F over "123456789" is 0xDF; byte 0 (the CRC's place) is skipped
    assert volkswagen_mqb(b"\x00" + b"12345678", ord("9")) == 0xDF


def test_volkswagen_frames_carry_the_e2e_crc_and_a_counting_counter() -> None:
    ids = {int(k): v for k, v in CHECKSUMS["vw_mqb"]["data_ids"].items()}
    seen: dict[int, list[int]] = {}
    for f in _frames("vw_mqb"):
        if f.arbitration_id in ids:
            data = bytes(f.data)
            counter = data[1] & 0x0F
            crc = 0xFF  # CRC-8H2F, bit by bit (not the module's table)
            for b in (*data[1:], ids[f.arbitration_id][counter]):
                crc ^= b
                for _ in range(8):
                    crc = ((crc << 1) ^ 0x2F) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
            assert data[0] == crc ^ 0xFF, hex(f.arbitration_id)
            seen.setdefault(f.arbitration_id, []).append(counter)
    assert {0xFD, 0x86, 0x3C0} <= set(seen)  # ESP_21, LWI_01, Klemmen_Status_01
    for aid, counters in seen.items():
        if len(counters) > 16 and aid != 0xAD:  # Getriebe_11's counter is COUNTER_DISABLED in the DBC
            assert len(set(counters)) == 16
            assert all((b - a) % 16 == 1 for a, b in itertools.pairwise(counters))


def test_tesla_frames_carry_the_byte_sum_checksum() -> None:
    db = load_profile("tesla_model3").network()
    checked = 0
    for f in _frames("tesla_model3"):
        if f.arbitration_id not in (0x257, 0x118, 0x145):  # DI_speed, DI_systemStatus, ESP_status
            continue
        msg = next(m for _bus, m, _d in db.all_frames() if m.frame_id == f.arbitration_id)
        sig = next(s for s in msg.signals if s.name.endswith("Checksum"))
        pos = sig.start // 8
        data = bytes(f.data)
        expected = ((f.arbitration_id & 0xFF) + (f.arbitration_id >> 8) + sum(data) - data[pos]) & 0xFF
        assert data[pos] == expected, hex(f.arbitration_id)
        checked += 1
    assert checked > 100


def test_hyundai_wheel_speed_checksum_counts_bits_as_the_panda_does() -> None:
    checked = 0
    for f in _frames("hyundai_2015"):
        if f.arbitration_id != 0x386:
            continue
        d = bytes(f.data)
        stored = ((d[7] >> 6) << 2) | (d[5] >> 6)
        bits = 0
        for i in range(8):
            for j in range(8):
                if (i not in (1, 3, 5, 7)) or j < 6:
                    bits += (d[i] >> j) & 1
        assert stored == (bits ^ 9) & 15 == hyundai_whl_spd11(d)
        checked += 1
    assert checked > 100


def test_hyundai_tcs13_checksum_is_the_nibble_sum() -> None:
    frames = [f for f in _frames("hyundai_2015") if f.arbitration_id == 0x394]
    assert frames
    for f in frames:
        d = bytes(f.data)
        total = sum((b & 0xF) + (b >> 4) for b in (*d[:6], d[6] & 0xF0))
        assert d[6] & 0x0F == (16 - total % 16) % 16
