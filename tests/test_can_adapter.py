"""Frames to VSS through a real broker: KUKSA semantics, CAN FD, extended ids, buses, mux, bad input."""

from __future__ import annotations

import can
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anycar.brands import ProfileEncoder, adapter_for, encode_vss, load_profile, profile_ids
from anycar.broker import SignalBroker
from anycar.can.adapter import CanAdapter
from anycar.can.decoder import choice_key, coercer
from anycar.can.mapping import parse_mapping_text
from anycar.can.transform import TransformFailed, compile_transform
from profiles_support import REAL, REFERENCE

VALUES = {
    "Vehicle.Speed": 42.5,
    "Vehicle.Powertrain.Transmission.SelectedGear": 127,
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": 63.4,
    "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen": True,
    "Vehicle.Body.Lights.Beam.Low.IsOn": True,
    "Vehicle.Cabin.HVAC.AmbientAirTemperature": 21.5,
    "Vehicle.CurrentLocation.Latitude": 31.2304123,
    "Vehicle.CurrentLocation.Longitude": 121.4737456,
    "Vehicle.CurrentLocation.Heading": 270.25,
    "Vehicle.LowVoltageBattery.CurrentVoltage": 13.8,
    "Vehicle.TraveledDistance": 12_345_600,
    "Vehicle.LowVoltageSystemState": "ON",
    "Vehicle.Powertrain.TractionBattery.Temperature.Max": 35,
}


def test_all_profile_ids_are_there() -> None:
    assert set(REFERENCE + REAL) <= set(profile_ids())


@pytest.mark.parametrize("pid", REFERENCE)
def test_reference_profile_roundtrip(pid: str) -> None:
    broker = SignalBroker()
    adapter = adapter_for(pid, broker)
    assert adapter.problems == []
    frames = ProfileEncoder(pid).encode(VALUES, timestamp=10.0)
    adapter.feed_many(frames)
    for path, value in VALUES.items():
        dp = broker.get(path)
        assert dp is not None, path
        assert dp.value == pytest.approx(value, abs=1e-6) if isinstance(value, float) else dp.value == value
    assert adapter.bad.total() == 0


def test_frame_kinds_of_the_reference_profiles() -> None:
    xiaomi = encode_vss("xiaomi_su7", {"Vehicle.Cabin.Door.Row1.DriverSide.IsOpen": True})
    assert xiaomi[0].is_fd and len(xiaomi[0].data) == 16
    nio = encode_vss("nio_et7", {"Vehicle.Speed": 10.0})
    assert nio[0].is_extended_id and nio[0].arbitration_id > 0x7FF
    byd = encode_vss("byd_seal", {"Vehicle.Speed": 10.0, "Vehicle.Body.Lights.Beam.Low.IsOn": True})
    assert {m.channel for m in byd} == {"can0", "can1"}


def test_other_signals_of_a_frame_keep_their_values() -> None:
    enc = ProfileEncoder("xpeng_p7")
    enc.encode({"Vehicle.Speed": 30.0, "Vehicle.TraveledDistance": 5_000_000})
    frame = enc.encode({"Vehicle.Speed": 31.0})[0]
    broker = SignalBroker()
    adapter = adapter_for("xpeng_p7", broker)
    adapter.feed(frame)
    assert broker.get("Vehicle.TraveledDistance").value == 5_000_000  # type: ignore[union-attr]


def test_one_dbc_signal_feeds_several_vss_signals() -> None:
    broker = SignalBroker()
    adapter = adapter_for("tesla_model3", broker)
    db = load_profile("tesla_model3").dbc("tesla_model3_party.dbc").db
    msg = db.get_message_by_name("DI_systemStatus")
    data = msg.encode({s.name: 0 for s in msg.signals} | {"DI_gear": "DI_GEAR_P"}, strict=False)
    adapter.feed(can.Message(arbitration_id=msg.frame_id, data=data, channel="can0", is_extended_id=False))
    assert broker.get("Vehicle.Powertrain.Transmission.CurrentGear").value == 0  # type: ignore[union-attr]
    assert broker.get("Vehicle.Powertrain.Transmission.SelectedGear").value == 126  # type: ignore[union-attr]
    assert broker.get("Vehicle.Powertrain.Transmission.IsParkLockEngaged").value is True  # type: ignore[union-attr]


def test_multiplexed_signals_follow_their_selector() -> None:
    broker = SignalBroker()
    adapter = adapter_for("xpeng_p7", broker)
    enc = ProfileEncoder("xpeng_p7")
    adapter.feed_many(enc.encode({"Vehicle.Powertrain.TractionBattery.Temperature.Max": 40}))
    adapter.feed_many(enc.encode({"Vehicle.Powertrain.TractionBattery.Temperature.Average": 31}))
    assert broker.get("Vehicle.Powertrain.TractionBattery.Temperature.Max").value == 40  # type: ignore[union-attr]
    assert broker.get("Vehicle.Powertrain.TractionBattery.Temperature.Average").value == 31  # type: ignore[union-attr]


def _speed_adapter(rule: str) -> tuple[SignalBroker, CanAdapter, object]:
    profile = load_profile("nio_et7")
    mapping = parse_mapping_text(f"Vehicle.Speed:\n  dbc2vss: {rule}\n", source="t.yaml")
    broker = SignalBroker()
    return broker, CanAdapter(broker, profile.network(), mapping), profile.dbc("nio_et7.dbc").db


def _speed_frame(db: object, speed: float, ts: float) -> can.Message:
    msg = db.get_message_by_name("NIO_VehSpeed")  # type: ignore[attr-defined]
    data = msg.encode({"VehSpd": speed, "Odometer": 0, "VehMoving": 0})
    return can.Message(arbitration_id=msg.frame_id, data=data, timestamp=ts, is_extended_id=True)


def test_interval_and_on_change_follow_kuksa() -> None:
    broker, adapter, db = _speed_adapter("{signal: VehSpd, interval_ms: 100, on_change: true}")
    sub = broker.subscribe(["Vehicle.Speed"])
    for i, (speed, ts) in enumerate([(10, 0.0), (11, 0.05), (11, 0.1), (11, 0.2), (12, 0.3)]):
        adapter.feed(_speed_frame(db, speed, ts))
        del i
    assert [dp.value for dp in sub.drain()] == [10, 11, 12]
    broker, adapter, db = _speed_adapter("{signal: VehSpd, interval_ms: 100}")
    sub = broker.subscribe(["Vehicle.Speed"])
    for speed, ts in [(10, 0.0), (10, 0.05), (10, 0.1), (10, 0.2)]:
        adapter.feed(_speed_frame(db, speed, ts))
    assert [dp.value for dp in sub.drain()] == [10, 10, 10]


def test_bad_input_is_counted_by_cause_and_never_published() -> None:
    broker, adapter, db = _speed_adapter("{signal: VehSpd, on_change: true, transform: {math: '100/(x-5)'}}")
    good = _speed_frame(db, 10, 0.0)
    adapter.feed(good)
    assert broker.get("Vehicle.Speed").value == 20  # type: ignore[union-attr]
    adapter.feed(can.Message(arbitration_id=good.arbitration_id, data=b"\x01\x02", is_extended_id=True))
    adapter.feed(can.Message(arbitration_id=0x123, data=bytes(8), is_extended_id=False))
    adapter.feed(_speed_frame(db, 5, 1.0))  # 100/0
    raw = bytearray(good.data)
    msg = db.get_message_by_name("NIO_VehSpeed")  # type: ignore[attr-defined]
    bad = msg.encode({"VehSpd": 0, "Odometer": 0, "VehMoving": 0}, scaling=False)
    bad = bytearray(bad)
    bad[0] = bad[1] = 0xFF  # raw 65535 * 0.01 = 655.35 km/h, above the DBC's 260
    adapter.feed(
        can.Message(arbitration_id=good.arbitration_id, data=bytes(bad), timestamp=2.0, is_extended_id=True)
    )
    adapter.feed(can.Message(is_error_frame=True))
    del raw
    counts = adapter.bad.as_dict()
    assert counts["wrong_length"] == 1
    assert counts["unknown_id"] == 1
    assert counts["transform_failed"] == 1
    assert counts["out_of_range"] == 1
    assert counts["error_frames"] == 1
    assert broker.get("Vehicle.Speed").value == 20  # type: ignore[union-attr]


def test_vss_refuses_a_value_outside_its_range() -> None:
    broker, adapter, db = _speed_adapter("{signal: VehSpd, on_change: true, transform: {math: 'x - 100'}}")
    text = (
        "Vehicle.Cabin.Door.Row1.DriverSide.Window.Position:\n  dbc2vss: {signal: VehSpd, on_change: true}\n"
    )
    profile = load_profile("nio_et7")
    broker = SignalBroker()
    adapter = CanAdapter(broker, profile.network(), parse_mapping_text(text, source="w.yaml"))
    adapter.feed(_speed_frame(db, 150, 0.0))  # 150 % is no window position
    assert adapter.bad.vss_rejected == 1
    assert broker.get("Vehicle.Cabin.Door.Row1.DriverSide.Window.Position") is None


def _oracle(profile_id: str, adapter: CanAdapter, frame: can.Message) -> dict[str, list[object]]:
    """Every value a frame may legitimately yield per path, computed with cantools' own decoder."""
    out: dict[str, list[object]] = {}
    net = adapter.network
    catalog = adapter.broker.catalog
    for rule in adapter.mapping.dbc2vss:
        for ref in net.find(rule.signal, bus=rule.bus, message=rule.message):
            m = ref.message
            if m.frame_id != frame.arbitration_id or bool(m.is_extended_frame) != frame.is_extended_id:
                continue
            try:
                decoded = m.decode(bytes(frame.data), decode_choices=False)
            except Exception:
                continue
            if ref.signal.name not in decoded:
                continue
            x = decoded[ref.signal.name]
            if rule.sign is not None and decoded.get(rule.sign) == 1:
                x = -x
            transform = compile_transform(rule.transform, choice_key(ref, ""), "")
            sig = catalog.get(rule.path)
            try:
                v = coercer(sig.datatype, ref.signal.choices, transform is not None)(
                    transform(x) if transform else x
                )
            except TransformFailed:
                continue
            out.setdefault(rule.path, []).append(v)
    return out


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is not bool and a == pytest.approx(b, rel=1e-9, abs=1e-9)
    return a == b and type(a) is type(b)


_NETWORKS: dict[str, tuple[object, object]] = {}


def _fresh_adapter(pid: str) -> CanAdapter:
    if pid not in _NETWORKS:
        profile = load_profile(pid)
        _NETWORKS[pid] = (profile.network(), profile.mapping())
    network, mapping = _NETWORKS[pid]
    return CanAdapter(SignalBroker(), network, mapping)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "pid", ["tesla_model3", "xiaomi_su7", "byd_seal", "vw_mqb", "nio_et7", "xpeng_p7", "hongqi_hs5"]
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_frames_never_crash_nor_publish_a_wrong_value(pid: str, data: st.DataObject) -> None:
    adapter = _fresh_adapter(pid)
    broker = adapter.broker
    ids = sorted(
        {m.frame_id for b in adapter.network.buses for _, (m, _) in adapter.network.frames(b.name).items()}
    )
    for _ in range(10):
        frame_id = data.draw(st.one_of(st.sampled_from(ids), st.integers(0, 0x1FFFFFFF)))
        payload = data.draw(st.binary(min_size=0, max_size=64))
        ext = data.draw(st.booleans()) if frame_id <= 0x7FF else True
        frame = can.Message(
            arbitration_id=frame_id,
            data=payload,
            is_extended_id=ext,
            is_fd=len(payload) > 8,
            timestamp=data.draw(st.floats(0, 1e6)),
            check=False,
        )
        accepted = adapter.feed(frame)
        allowed = _oracle(pid, adapter, frame)
        for path, value in accepted:
            assert path in allowed, (path, value)
            assert any(_same(value, v) for v in allowed[path]), (path, value, allowed[path])
            broker.catalog.get(path).validate(value)


@pytest.mark.parametrize("pid", ["tesla_model3", "byd_seal"])
def test_long_random_stream_with_repeats_publishes_only_right_values(pid: str) -> None:
    import random

    adapter = _fresh_adapter(pid)
    ids = sorted(
        {m.frame_id for b in adapter.network.buses for _, (m, _) in adapter.network.frames(b.name).items()}
    )
    rnd = random.Random(7)
    last = b""
    for i in range(3000):
        fid = rnd.choice(ids)
        n = rnd.choice([8, 8, 8, 8, 3, 16, 12, 2, 5])
        payload = last if (rnd.random() < 0.3 and last) else bytes(rnd.getrandbits(8) for _ in range(n))
        last = payload
        frame = can.Message(
            arbitration_id=fid,
            data=payload,
            is_extended_id=fid > 0x7FF,
            is_fd=len(payload) > 8,
            timestamp=i * 0.01,
            check=False,
        )
        allowed = _oracle(pid, adapter, frame)
        for path, value in adapter.feed(frame):
            assert any(_same(value, v) for v in allowed.get(path, [])), (path, value, allowed.get(path))
    assert adapter.bad.wrong_length > 0 and adapter.published > 0


@pytest.mark.parametrize("pid", ["xiaomi_su7", "byd_seal", "tesla_model3", "hyundai_2015", "kaiyun_pickman"])
def test_compiled_decoders_match_the_generic_loop(pid: str) -> None:
    """Same frames, same order: the compiled decoders publish exactly what the generic loop does."""
    import random

    from anycar.can.synth import traffic

    profile = load_profile(pid)
    network, mapping = profile.network(), profile.mapping()
    frames = traffic(network, 4000, seed=3)
    rnd = random.Random(4)
    for i in range(0, len(frames), 7):  # some damaged frames and repeated payloads among the good ones
        f = frames[i]
        if rnd.random() < 0.3:
            frames[i] = can.Message(
                arbitration_id=f.arbitration_id,
                is_extended_id=f.is_extended_id,
                is_fd=f.is_fd,
                data=bytes(rnd.getrandbits(8) for _ in range(len(f.data) if rnd.random() < 0.7 else 3)),
                timestamp=f.timestamp,
                channel=f.channel,
            )
        elif i > 0:
            frames[i] = can.Message(
                arbitration_id=f.arbitration_id,
                is_extended_id=f.is_extended_id,
                is_fd=f.is_fd,
                data=bytes(frames[i - 1].data)
                if frames[i - 1].arbitration_id == f.arbitration_id
                else f.data,
                timestamp=f.timestamp,
                channel=f.channel,
            )
    fast = CanAdapter(SignalBroker(), network, mapping, compiled=True)
    slow = CanAdapter(SignalBroker(), network, mapping, compiled=False)
    compiled = [d for fr in fast._by_bus.values() for d in fr.values() if d.run is not d.process]
    assert compiled, "no frame decoder was compiled"
    assert all(d.run == d.process for fr in slow._by_bus.values() for d in fr.values())
    for i in range(0, len(frames), 50):
        assert fast.feed_many(frames[i : i + 50]) == slow.feed_many(frames[i : i + 50])
    assert fast.bad.as_dict() == slow.bad.as_dict()


def test_kuksa_multiplexer_filter_restricts_a_rule() -> None:
    profile = load_profile("xpeng_p7")
    text = (
        "Vehicle.Powertrain.TractionBattery.Temperature.Max:\n"
        "  dbc2vss:\n    signal: CellTempMax\n    on_change: true\n"
        "    multiplexer: [{signal: TempMux, value: 0}]\n"
        "Vehicle.Powertrain.TractionBattery.Temperature.Min:\n"
        "  dbc2vss:\n    signal: CellTempMin\n    on_change: true\n"
        "    multiplexer: [{signal: TempMux, value: 1}]\n"
    )
    broker = SignalBroker()
    adapter = CanAdapter(broker, profile.network(), parse_mapping_text(text, source="mux.yaml"))
    assert adapter.problems == []
    enc = ProfileEncoder(profile)
    adapter.feed_many(
        enc.encode(
            {
                "Vehicle.Powertrain.TractionBattery.Temperature.Max": 41,
                "Vehicle.Powertrain.TractionBattery.Temperature.Min": 20,
            }
        )
    )
    assert broker.get("Vehicle.Powertrain.TractionBattery.Temperature.Max").value == 41  # type: ignore[union-attr]
    # Min sits in variant 0 too, and the rule asks for TempMux == 1: never published
    assert broker.get("Vehicle.Powertrain.TractionBattery.Temperature.Min") is None


def test_frames_are_routed_by_the_bus_they_arrive_on() -> None:
    profile = load_profile("tesla_model3")
    broker = SignalBroker()
    adapter = adapter_for(profile, broker)
    msg = profile.dbc("tesla_model3_party.dbc").db.get_message_by_name("SCCM_steeringAngleSensor")
    data = msg.encode({s.name: 0 for s in msg.signals} | {"SCCM_steeringAngle": 12.0}, strict=False)
    frame = can.Message(arbitration_id=msg.frame_id, data=data, is_extended_id=False, channel="can1")
    adapter.feed(frame)  # the vehicle bus carries the same id, but the rule reads the party bus
    assert broker.get("Vehicle.Chassis.SteeringWheel.Angle") is None
    frame.channel = "can0"
    adapter.feed(frame)
    assert broker.get("Vehicle.Chassis.SteeringWheel.Angle").value == 12  # type: ignore[union-attr]


def test_renamed_dbc_signals_are_still_found_by_their_original_name() -> None:
    from anycar.can.dbc import parse_dbc_text
    from anycar.can.network import Bus, CanNetwork

    text = 'VERSION ""\n\nNS_ :\n\nBS_:\n\nBU_: ECU\n\nBO_ 256 M: 8 ECU\n SG_ 0_SPEED : 0|16@1+ (0.1,0) [0|300] "km/h" ECU\n'
    network = CanNetwork([Bus("main", [parse_dbc_text(text, source="r.dbc")])])
    mapping = parse_mapping_text(
        "Vehicle.Speed:\n  dbc2vss: {signal: 0_SPEED, on_change: true}\n", source="r.yaml"
    )
    broker = SignalBroker()
    adapter = CanAdapter(broker, network, mapping)
    adapter.feed(
        can.Message(arbitration_id=256, data=(555).to_bytes(2, "little") + bytes(6), is_extended_id=False)
    )
    assert broker.get("Vehicle.Speed").value == 55.5  # type: ignore[union-attr]


def test_a_sign_bit_gives_the_steering_angle_its_direction() -> None:
    profile = load_profile("vw_mqb")
    broker = SignalBroker()
    adapter = adapter_for(profile, broker)
    msg = profile.dbc("vw_mqb.dbc").db.get_message_by_name("LWI_01")
    base = {s.name: 0 for s in msg.signals}
    for ts, (angle, sign, expected) in enumerate([(90.0, 1, -90), (90.0, 0, 90), (15.2, 1, -15)]):
        data = msg.encode(base | {"LWI_Lenkradwinkel": angle, "LWI_VZ_Lenkradwinkel": sign}, strict=False)
        adapter.feed(can.Message(arbitration_id=msg.frame_id, data=data, is_extended_id=False, timestamp=ts))
        assert broker.get("Vehicle.Chassis.SteeringWheel.Angle").value == expected  # type: ignore[union-attr]


def test_encoding_refuses_what_the_dbc_cannot_carry() -> None:
    from anycar.errors import InvalidValue, UnknownPath

    enc = ProfileEncoder("kaiyun_pickman")  # a 60 km/h DBC range: the PICKMAN is a low-speed pickup
    frames = enc.encode({"Vehicle.Speed": 45.0})
    with pytest.raises(InvalidValue, match="KY_VehSpeed"):
        enc.encode({"Vehicle.Speed": 80.0})
    with pytest.raises(UnknownPath):
        enc.encode({"Vehicle.Cabin.Infotainment.Media.Volume": 3})
    with pytest.raises(InvalidValue):
        enc.encode({"Vehicle.LowVoltageSystemState": "LOCK"})  # no such power mode on this bus
    # a refused call changes nothing: the next frame still carries the last good speed
    again = enc.encode({"Vehicle.TraveledDistance": 1000})
    assert again[0].data[:2] == frames[0].data[:2]


async def test_actuation_outside_the_dbc_range_is_rejected_with_a_reason() -> None:
    sent: list[can.Message] = []
    broker = SignalBroker()
    adapter_for("xiaomi_su7", broker, send=lambda _bus, msg: sent.append(msg))
    result = await broker.actuate("Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature", 40.0)
    assert result.status.name == "REJECTED" and "TMS_Hvac" in (result.reason or "")
    assert sent == []
