"""Log replay in the four formats, corrupt lines, recorded pace, and a live python-can virtual bus."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import can
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anycar.brands import ProfileEncoder, adapter_for, load_profile
from anycar.broker import SignalBroker
from anycar.broker.actuation import ActuationStatus
from anycar.can.decoder import BadInput
from anycar.can.sources import BusSource, read_log, replay, write_log


def _trip_frames(pid: str = "xpeng_p7") -> list[can.Message]:
    enc = ProfileEncoder(pid)
    frames = []
    for i in range(50):
        frames += enc.encode(
            {
                "Vehicle.Speed": float(i),
                "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen": i < 10,
                "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": 80.0 - i * 0.1,
            },
            timestamp=100.0 + i * 0.2,
        )
    return frames


@pytest.mark.parametrize("suffix", [".log", ".asc", ".blf", ".trc"])
def test_replay_in_every_format(tmp_path: Path, suffix: str) -> None:
    frames = _trip_frames()
    path = tmp_path / f"trip{suffix}"
    write_log(path, frames)
    back = list(read_log(path))
    assert len(back) == len(frames)
    assert [bytes(m.data) for m in back] == [bytes(m.data) for m in frames]
    broker = SignalBroker()
    adapter = adapter_for("xpeng_p7", broker)
    summary = replay(adapter, path)
    assert summary["frames"] == len(frames)
    assert broker.get("Vehicle.Speed").value == 49.0  # type: ignore[union-attr]
    assert broker.get("Vehicle.Cabin.Door.Row1.DriverSide.IsOpen").value is False  # type: ignore[union-attr]
    assert adapter.bad.total() == 0


def test_corrupt_log_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    frames = _trip_frames()
    good = tmp_path / "good.log"
    write_log(good, frames)
    lines = good.read_text().splitlines()
    lines[5] = "this is not a candump line"
    lines[9] = "(12.5) can0 1G3#0011"
    lines[12] = "(abc) can0 123#00"
    lines[15] = "(12.5) can0 123#ABC"  # odd number of hex digits
    lines[16] = "(12.5) can0 123#000102030405060708"  # 9 bytes in a classic frame
    lines[17] = "(12.5) can0 1234#00"  # neither an 11-bit nor a 29-bit id spelling
    bad_path = tmp_path / "bad.log"
    bad_path.write_text("\n".join(lines) + "\n")
    counters = BadInput()
    back = list(read_log(bad_path, counters))
    assert counters.corrupt_log_line == 6
    assert len(back) == len(frames) - 6
    good_back = list(read_log(good))
    assert [bytes(m.data) for m in good_back] == [bytes(m.data) for m in frames]


def test_damaged_binary_log_keeps_what_was_read(tmp_path: Path) -> None:
    path = tmp_path / "t.blf"
    write_log(path, _trip_frames())
    data = bytearray(path.read_bytes())
    data[len(data) // 2 :] = b"\xff" * (len(data) - len(data) // 2)
    path.write_bytes(bytes(data))
    counters = BadInput()
    list(read_log(path, counters))
    assert counters.corrupt_log_line <= 1


def test_recorded_pace(tmp_path: Path) -> None:
    path = tmp_path / "t.log"
    write_log(path, _trip_frames())
    adapter = adapter_for("xpeng_p7", SignalBroker())
    start = time.perf_counter()
    replay(adapter, path, realtime=True, speed=100.0)
    elapsed = time.perf_counter() - start
    assert 49 * 0.2 / 100.0 * 0.9 <= elapsed < 2.0

    def never(seconds: float) -> None:
        raise AssertionError(f"as-fast-as-possible replay slept {seconds} s")

    replay(adapter_for("xpeng_p7", SignalBroker()), path, sleep=never)


def test_shipped_sample_logs_replay_cleanly() -> None:
    for pid in ["xiaomi_su7", "nio_et7", "byd_seal", "xpeng_p7", "li_auto_l9", "kaiyun_pickman"]:
        profile = load_profile(pid)
        log = profile.sample_log_path()
        assert log is not None and log.is_file()
        broker = SignalBroker()
        adapter = adapter_for(profile, broker)
        replay(adapter, log)
        assert adapter.bad.total() == 0, (pid, adapter.bad)
        assert broker.get("Vehicle.CurrentLocation.Latitude") is not None


async def test_live_virtual_bus_both_ways() -> None:
    channel = f"anycar-{uuid.uuid4().hex[:8]}"
    car = can.Bus(interface="virtual", channel=channel, receive_own_messages=False)
    hub = can.Bus(interface="virtual", channel=channel, receive_own_messages=False)
    try:
        broker = SignalBroker()
        adapter = adapter_for("nio_et7", broker, send=lambda _bus, msg: hub.send(msg))
        source = BusSource(adapter, hub)
        await source.start()
        sub = broker.subscribe(["Vehicle.Speed"])
        for frame in ProfileEncoder("nio_et7").encode({"Vehicle.Speed": 33.3}):
            car.send(frame)
        got = await asyncio.wait_for(sub.get(), 2.0)
        assert got[-1].value == pytest.approx(33.3)
        result = await broker.actuate("Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature", 23.5)
        assert result.status is ActuationStatus.ACCEPTED
        sent = car.recv(2.0)
        assert sent is not None
        msg = load_profile("nio_et7").dbc("nio_et7.dbc").db.get_message_by_frame_id(sent.arbitration_id)
        assert msg.decode(sent.data)["SetTempDrv"] == pytest.approx(23.5)
        await source.stop()
    finally:
        car.shutdown()
        hub.shutdown()


async def test_actuation_without_a_bus_is_refused_with_a_reason() -> None:
    broker = SignalBroker()
    adapter_for("nio_et7", broker)
    result = await broker.actuate("Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature", 23.5)
    assert result.status is ActuationStatus.REJECTED and "no CAN bus" in (result.reason or "")


def test_actuation_keeps_the_other_signals_of_the_last_received_frame() -> None:
    profile = load_profile("nio_et7")
    sent: list[can.Message] = []
    broker = SignalBroker()
    adapter = adapter_for(profile, broker, send=lambda _bus, msg: sent.append(msg))
    car = ProfileEncoder(profile)
    adapter.feed_many(
        car.encode(
            {
                "Vehicle.Cabin.HVAC.AmbientAirTemperature": 24.5,
                "Vehicle.Cabin.HVAC.Station.Row1.Driver.FanSpeed": 60,
                "Vehicle.Cabin.HVAC.IsAirConditioningActive": True,
            }
        )
    )
    result = asyncio.run(broker.actuate("Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature", 21.0))
    assert result.status is ActuationStatus.ACCEPTED
    msg = profile.dbc("nio_et7.dbc").db.get_message_by_frame_id(sent[-1].arbitration_id)
    decoded = msg.decode(sent[-1].data)
    assert decoded["SetTempDrv"] == pytest.approx(21.0)
    assert decoded["CabinTemp"] == pytest.approx(24.5)
    assert decoded["FanSpeed"] == 60 and decoded["ACOn"] == 1


@pytest.mark.parametrize("suffix", [".log", ".asc", ".blf", ".trc"])
def test_real_dbc_traffic_survives_every_format(tmp_path: Path, suffix: str) -> None:
    from anycar.can.synth import traffic

    profile = load_profile("vw_mqb")
    frames = traffic(profile.network(), 1500, seed=9, start=1000.0)
    path = tmp_path / f"mqb{suffix}"
    write_log(path, frames)
    back = list(read_log(path))
    assert [(m.arbitration_id, bytes(m.data)) for m in back] == [
        (m.arbitration_id, bytes(m.data)) for m in frames
    ]
    t0, s0 = back[0].timestamp, frames[0].timestamp  # .asc/.blf keep times relative to a start
    assert all(abs((a.timestamp - t0) - (b.timestamp - s0)) < 1e-3 for a, b in zip(back, frames, strict=True))
    broker = SignalBroker()
    adapter = adapter_for(profile, broker)
    replay(adapter, path)
    assert adapter.bad.wrong_length == 0 and adapter.bad.unknown_id == 0
    assert adapter.published > 0 and broker.get("Vehicle.Speed") is not None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    suffix=st.sampled_from([".log", ".asc", ".trc", ".blf"]),
    garbage=st.binary(max_size=400),
    cut=st.integers(0, 4000),
)
def test_random_bytes_in_any_log_never_crash(tmp_path: Path, suffix: str, garbage: bytes, cut: int) -> None:
    path = tmp_path / f"fuzz{suffix}"
    write_log(path, _trip_frames()[:40])
    data = path.read_bytes()
    path.write_bytes(data[:cut] + garbage + data[cut:])
    counters = BadInput()
    broker = SignalBroker()
    adapter = adapter_for("xpeng_p7", broker)
    frames = list(read_log(path, counters))
    adapter.feed_many(frames)  # whatever was read goes through the adapter without an exception
    for path_, dp in broker.get_many(["Vehicle.Speed"]).items():
        if dp is not None:
            broker.catalog.get(path_).validate(dp.value)


def test_cli_live_reads_a_virtual_bus(capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import threading

    from anycar.cli.main import main

    channel = f"anycar-live-{uuid.uuid4().hex[:8]}"
    car = can.Bus(interface="virtual", channel=channel)
    frames = ProfileEncoder("xiaomi_su7").encode(
        {"Vehicle.Speed": 12.5, "Vehicle.Body.Lights.Beam.Low.IsOn": True}
    )
    stop = threading.Event()

    def drive() -> None:
        while not stop.is_set():
            for f in frames:
                car.send(f)
            stop.wait(0.05)

    t = threading.Thread(target=drive, daemon=True)
    t.start()
    try:
        code = main(
            [
                "can",
                "live",
                "--brand",
                "xiaomi_su7",
                "--interface",
                "virtual",
                "--channel",
                channel,
                "--seconds",
                "0.6",
                "--json",
            ]
        )
    finally:
        stop.set()
        t.join()
        car.shutdown()
    assert code == 0
    values = {d["path"]: d["value"] for d in map(json.loads, capsys.readouterr().out.splitlines())}
    assert values["Vehicle.Speed"] == 12.5 and values["Vehicle.Body.Lights.Beam.Low.IsOn"] is True


def test_bus_sender_routes_by_bus_name() -> None:
    from anycar.can.sources import bus_sender

    channel = f"anycar-{uuid.uuid4().hex[:8]}"
    a = can.Bus(interface="virtual", channel=channel + "a")
    a_rx = can.Bus(interface="virtual", channel=channel + "a")
    try:
        send = bus_sender({"powertrain": a})
        send("powertrain", can.Message(arbitration_id=1, data=b"\x01", is_extended_id=False))
        assert a_rx.recv(1.0) is not None
        with pytest.raises(can.CanOperationError, match="body"):
            send("body", can.Message(arbitration_id=1, data=b"\x01", is_extended_id=False))
    finally:
        a.shutdown()
        a_rx.shutdown()
