"""Interval and on-change gating as the KUKSA CAN provider does it, frame for frame.

The reference is ``anycar.bench.kuksa_model``, rebuilt from kuksa-can-provider's ``dbcfeederlib``
(``VSSMapping.time_condition_fulfilled`` / ``change_condition_fulfilled``, ``CanReader``): the same
frames go through it and through the adapter (compiled and generic loops), and every VSS signal
must get the same values. The three rules the adapter used to break are checked by hand too.
"""

from __future__ import annotations

import random
from typing import Any

import can
import pytest

from anycar.bench.kuksa_model import KuksaProvider
from anycar.broker import SignalBroker
from anycar.can import Bus, CanAdapter, CanNetwork, parse_dbc_text, parse_mapping_text

DBC = """VERSION ""

NS_ :

BS_:

BU_: ECU

BO_ 256 FAST: 8 ECU
 SG_ SPEED : 0|16@1+ (0.01,0) [0|300] "km/h" ECU
 SG_ GEAR : 16|3@1+ (1,0) [0|7] "" ECU
 SG_ TEMP : 24|8@1+ (1,-40) [-40|200] "degC" ECU

BO_ 257 SLOW: 8 ECU
 SG_ SPEED : 0|16@1+ (0.01,0) [0|300] "km/h" ECU

VAL_ 256 GEAR 0 "P" 1 "R" 2 "N" 3 "D" 4 "S" ;
"""

MAPPING = """
Vehicle.Speed:
  dbc2vss: {signal: SPEED, interval_ms: 100}
Vehicle.Powertrain.Transmission.CurrentGear:
  dbc2vss:
    signal: GEAR
    interval_ms: 100
    transform:
      mapping: [{from: P, to: 0}, {from: R, to: -1}, {from: N, to: 0}, {from: D, to: 1}]
Vehicle.Powertrain.Transmission.IsParkLockEngaged:
  dbc2vss:
    signal: GEAR
    on_change: true
    transform:
      mapping: [{from: P, to: true}, {from: R, to: false}, {from: N, to: false}, {from: D, to: false}]
Vehicle.Exterior.AirTemperature:
  dbc2vss: {signal: TEMP, interval_ms: 250, on_change: true, transform: {math: "100/(x-20)"}}
"""


def _setup(*, compiled: bool = True) -> tuple[CanAdapter, KuksaProvider, Any]:
    loaded = parse_dbc_text(DBC, source="gating.dbc")
    mapping = parse_mapping_text(MAPPING, source="gating.vspec")
    network = CanNetwork([Bus("can", [loaded])])
    broker = SignalBroker()
    adapter = CanAdapter(broker, network, mapping, compiled=compiled)
    assert adapter.problems == []
    return adapter, KuksaProvider(network, mapping, broker.catalog), loaded.db


def _frame(db: Any, name: str, ts: float, **values: Any) -> can.Message:
    msg = db.get_message_by_name(name)
    data = msg.encode({s.name: 0 for s in msg.signals} | values, strict=False)
    return can.Message(arbitration_id=msg.frame_id, data=data, timestamp=ts, is_extended_id=False)


def _times(adapter: CanAdapter, frames: list[can.Message], path: str) -> list[float]:
    """The times of the frames that gave ``path`` an update."""
    return [f.timestamp for f in frames for p, _ in adapter.decode([f]) if p == path]


def _by_path(updates: list[tuple[str, Any]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for path, value in updates:
        out.setdefault(path, []).append(round(value, 9) if isinstance(value, float) else value)
    return out


def test_a_value_without_mapping_entry_uses_up_the_interval() -> None:
    adapter, kuksa, db = _setup()
    frames = [
        _frame(db, "FAST", 10.00, GEAR="D"),
        _frame(db, "FAST", 10.05, GEAR="D"),  # 50 ms: too early
        _frame(db, "FAST", 10.10, GEAR="S"),  # passes the interval, but S has no entry: nothing sent
        _frame(db, "FAST", 10.15, GEAR="D"),  # 50 ms after S used the interval: too early (KUKSA)
        _frame(db, "FAST", 10.20, GEAR="D"),
    ]
    path = "Vehicle.Powertrain.Transmission.CurrentGear"
    assert _times(adapter, frames, path) == [10.00, 10.20]  # before: [10.00, 10.15]
    assert adapter.bad.unmapped_value == 2  # S has no entry for CurrentGear nor IsParkLockEngaged
    assert [v for p, v in kuksa.process(frames) if p == path] == [1, 1]


def test_no_slack_on_the_interval_but_logged_times_are_exact() -> None:
    adapter, kuksa, db = _setup()
    early = [_frame(db, "FAST", t, SPEED=50) for t in (10.0, 10.09995, 10.1999)]
    assert _times(adapter, early, "Vehicle.Speed") == [10.0, 10.1999]  # 99.95 ms is too early
    assert len([u for u in kuksa.process(early) if u[0] == "Vehicle.Speed"]) == 2
    adapter, _kuksa, db = _setup()
    # a candump log 100.000 ms apart: every frame passes, whatever the float timestamps round to
    logged = [_frame(db, "FAST", round(1_700_000_000.0 + k * 0.1, 6), SPEED=50) for k in range(11)]
    assert len(_times(adapter, logged, "Vehicle.Speed")) == 11


@pytest.mark.parametrize("compiled", [True, False])
def test_one_gate_per_vss_signal_across_the_messages_carrying_it(compiled: bool) -> None:
    adapter, _kuksa, db = _setup(compiled=compiled)
    frames = []
    for k in range(1001):  # 10 s of two 10 ms messages that both carry SPEED
        t = round(100.0 + k / 100, 6)
        frames += [_frame(db, "FAST", t, SPEED=k % 300), _frame(db, "SLOW", t, SPEED=k % 300)]
    assert len([u for u in adapter.decode(frames) if u[0] == "Vehicle.Speed"]) == 101  # not 202
    # the same with times KUKSA's float clock reads exactly (1/1024 s steps): the same count
    adapter, kuksa, db = _setup(compiled=compiled)
    for f in frames:
        f.timestamp = 100.0 + round((f.timestamp - 100.0) * 1024) / 1024
    ours = [u for u in adapter.decode(frames) if u[0] == "Vehicle.Speed"]
    theirs = [u for u in kuksa.process(frames) if u[0] == "Vehicle.Speed"]
    assert ours == theirs and 90 < len(ours) < 101


@pytest.mark.parametrize("compiled", [True, False])
def test_same_frames_same_values_as_the_kuksa_provider(compiled: bool) -> None:
    adapter, kuksa, db = _setup(compiled=compiled)
    rnd = random.Random(7)
    tick = 1 / 1024  # binary fractions: both clocks see the same differences, no ties at a boundary
    frames, speed, gear, temp = [], 5000, "P", 60
    for k in range(6000):
        t = 500.0 + (k * 10 + rnd.randint(-2, 2)) * tick
        if rnd.random() < 0.05:
            gear = rnd.choice(["P", "R", "N", "D", "S"])
        if rnd.random() < 0.1:
            temp = rnd.choice([58, 59, 60, 61, 62])  # 60 is 20 degC: the formula divides by zero
        speed = max(0, min(30000, speed + rnd.randint(-40, 40)))
        frames.append(_frame(db, "FAST", t, SPEED=speed / 100, GEAR=gear, TEMP=temp - 40))
        if k % 3 == 0:
            frames.append(_frame(db, "SLOW", t + 3 * tick, SPEED=(speed + 7) / 100))
    ours = _by_path(adapter.decode(frames))
    theirs = _by_path(kuksa.process(frames))
    assert ours.keys() == theirs.keys()
    for path in theirs:
        assert ours[path] == theirs[path], path
    assert adapter.bad.unmapped_value > 0 and adapter.bad.transform_failed > 0  # both rules were hit
