"""Drive cycles: a speed trace at 1 Hz and the phases that say what the vehicle is doing.

The WLTC class 3b trace is shipped as data (``data/cycles/wltc_class3b.csv``, the official
1800 s cycle of UN GTR No. 15); the urban delivery cycle is generated from the parameters in
``data/cycles/delivery.yaml`` and a seed, so one seed always gives the same cycle.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from anycar.errors import ConfigError

# Phase kinds. A "delivery" phase is parked at a customer's door; "reverse" is a manoeuvre
# into the bay just before it; "stop" is a traffic stop with the gear in D; "start" is the
# idle at the beginning of a cycle, parked and then selecting D.
DRIVE = "drive"
STOP = "stop"
START = "start"
REVERSE = "reverse"
DELIVERY = "delivery"
PHASE_KINDS = frozenset({DRIVE, STOP, START, REVERSE, DELIVERY})

CYCLE_NAMES = ("wltc3", "delivery")


@dataclass(frozen=True, slots=True)
class Phase:
    kind: str
    start: int  # first second of the phase
    end: int  # one past its last second
    leg: int = -1  # delivery cycle: index of the leg the phase belongs to

    @property
    def duration(self) -> int:
        return self.end - self.start


@dataclass(slots=True)
class DriveCycle:
    """A speed trace (km/h, one sample per second, t = 0 .. len-1) and its phases."""

    name: str
    speeds_kmh: list[float]
    phases: list[Phase]
    description: str = ""
    seed: int | None = None
    _starts: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if len(self.speeds_kmh) < 2:
            raise ConfigError(f"cycle {self.name!r}: needs at least two samples")
        if any(v < 0 for v in self.speeds_kmh):
            raise ConfigError(f"cycle {self.name!r}: speeds are magnitudes and cannot be negative")
        self._starts = [p.start for p in self.phases]

    @property
    def duration_s(self) -> float:
        """Seconds from the first to the last sample."""
        return float(len(self.speeds_kmh) - 1)

    def speed_at(self, t: float) -> float:
        """Speed in km/h at time ``t``, linear between samples, 0 outside the trace."""
        if t <= 0 or t >= self.duration_s:
            return self.speeds_kmh[0] if t <= 0 else self.speeds_kmh[-1]
        i = int(t)
        frac = t - i
        v0 = self.speeds_kmh[i]
        return v0 + (self.speeds_kmh[i + 1] - v0) * frac

    def phase_at(self, t: float) -> Phase:
        i = bisect.bisect_right(self._starts, int(t)) - 1
        return self.phases[max(0, min(i, len(self.phases) - 1))]

    def distance_m(self) -> float:
        """Distance of the trace (trapezoidal), in metres."""
        v = self.speeds_kmh
        return sum((v[i] + v[i + 1]) / 2 for i in range(len(v) - 1)) / 3.6

    def to_csv(self) -> str:
        """The trace and the phase of each second, as CSV text."""
        rows = ["time_s,speed_kmh,phase"]
        rows += [f"{t},{v:.2f},{self.phase_at(t).kind}" for t, v in enumerate(self.speeds_kmh)]
        return "\n".join(rows) + "\n"


def phases_from_stops(speeds: list[float]) -> list[Phase]:
    """Phases of a trace that only has driving and stops: each run of zero speed is a stop."""
    phases: list[Phase] = []
    start = 0
    moving = speeds[0] > 0
    for t in range(1, len(speeds) + 1):
        now = t < len(speeds) and speeds[t] > 0
        if t == len(speeds) or now != moving:
            kind = DRIVE if moving else (START if start == 0 else STOP)
            phases.append(Phase(kind, start, t))
            start = t
            moving = now
    return phases


@cache
def _wltc_speeds() -> tuple[float, ...]:
    text = resources.files("anycar.sim").joinpath("data/cycles/wltc_class3b.csv").read_text("utf-8")
    speeds: list[float] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#") or line.startswith("time_s"):
            continue
        t_text, _, v_text = line.partition(",")
        try:
            t, v = int(t_text), float(v_text)
        except ValueError:
            raise ConfigError(
                f"wltc_class3b.csv:{lineno}: expected 'time_s,speed_kmh', got {line!r}"
            ) from None
        if t != len(speeds):
            raise ConfigError(f"wltc_class3b.csv:{lineno}: time {t} out of sequence")
        speeds.append(v)
    return tuple(speeds)


def wltc_class3b() -> DriveCycle:
    """The official WLTC class 3b cycle: 1800 s, 23.27 km, up to 131.3 km/h."""
    speeds = list(_wltc_speeds())
    return DriveCycle(
        "wltc3",
        speeds,
        phases_from_stops(speeds),
        description="WLTC class 3b (UN GTR No. 15), 1800 s",
    )


# -- the delivery cycle -------------------------------------------------------------------------
@cache
def delivery_parameters() -> dict[str, Any]:
    text = resources.files("anycar.sim").joinpath("data/cycles/delivery.yaml").read_text("utf-8")
    params: dict[str, Any] = yaml.safe_load(text)
    return params


def _span(params: dict[str, Any], key: str) -> tuple[float, float]:
    value = params.get(key)
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(x, (int, float)) for x in value)
        or value[0] > value[1]
    ):
        raise ConfigError(f"delivery cycle parameter {key!r}: expected [low, high], got {value!r}")
    return float(value[0]), float(value[1])


class _Trace:
    """Builds a 1 Hz trace by simple kinematics, remembering where each phase starts."""

    def __init__(self) -> None:
        self.speeds: list[float] = [0.0]
        self.phases: list[Phase] = []
        self._kind = START
        self._start = 0
        self._leg = -1

    def mark(self, kind: str, leg: int) -> None:
        t = len(self.speeds) - 1
        if t > self._start:
            self.phases.append(Phase(self._kind, self._start, t, self._leg))
        self._kind, self._start, self._leg = kind, t, leg

    def finish(self) -> None:
        t = len(self.speeds)
        self.phases.append(Phase(self._kind, self._start, t, self._leg))
        # Merge away empty or repeated phases.
        merged: list[Phase] = []
        for p in self.phases:
            if p.end <= p.start:
                continue
            if merged and merged[-1].kind == p.kind and merged[-1].leg == p.leg:
                merged[-1] = Phase(p.kind, merged[-1].start, p.end, p.leg)
            else:
                merged.append(p)
        self.phases = merged

    def hold(self, v: float, seconds: int) -> None:
        self.speeds.extend([v] * seconds)

    def stretch(
        self,
        rng: random.Random,
        distance: float,
        cap: float,
        end_kmh: float,
        accel: float,
        decel: float,
        jitter: float,
    ) -> float:
        """Drive ``distance`` metres from the current speed, never above ``cap`` km/h,
        ending at ``end_kmh``; returns the metres the trace actually covers (whole seconds and
        rounded speeds make it miss by a few)."""
        first = len(self.speeds) - 1
        v = self.speeds[-1] / 3.6
        v_end = end_kmh / 3.6
        v_cap = cap / 3.6
        target = v_cap
        travelled = 0.0
        braking = False
        for _ in range(3600):
            remaining = distance - travelled
            brake = (v * v - v_end * v_end) / (2 * decel) if v > v_end else 0.0
            if not braking and remaining - v <= brake:
                braking = True
            if braking:
                if v <= v_end + 1e-9:
                    if v_end == 0 or remaining <= 0:
                        break
                    v_new = v_end
                else:
                    v_new = max(v_end, v - decel)
            elif v < target - 0.05:
                v_new = min(target, v + accel)
            else:
                # Cruise: wander a little under the cap, as a driver does.
                target = v_cap - rng.uniform(0.0, jitter) / 3.6
                v_new = max(v - decel / 3, min(v + accel / 3, target))
            travelled += (v + v_new) / 2
            v = v_new
            self.speeds.append(round(v * 3.6, 2))
        kept = self.speeds[first:]
        return sum(a + b for a, b in itertools.pairwise(kept)) / 2 / 3.6


def delivery_cycle(seed: int = 0, params: dict[str, Any] | None = None) -> DriveCycle:
    """A stop-and-go delivery round, the same for the same seed and parameters."""
    p = dict(delivery_parameters() if params is None else params)
    rng = random.Random(seed)  # nosec B311 # a seeded drive cycle, reproducible on purpose, not security
    legs = p.get("leg_lengths_m")  # a planned round: the metres of each leg, the last one home
    if legs is not None:
        if (
            not isinstance(legs, list)
            or len(legs) < 2
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in legs)
        ):
            raise ConfigError(
                f"delivery cycle parameter 'leg_lengths_m': expected two or more positive metres, got {legs!r}"
            )
        p["deliveries"] = len(legs) - 1
    deliveries = p.get("deliveries")
    if not isinstance(deliveries, int) or deliveries < 1:
        raise ConfigError(
            f"delivery cycle parameter 'deliveries': expected a positive integer, got {deliveries!r}"
        )
    leg_len = _span(p, "leg_length_m")
    caps = _span(p, "cruise_cap_kmh")
    stretches = _span(p, "stretches_per_leg")
    stop_s = _span(p, "traffic_stop_s")
    slow = _span(p, "slowdown_kmh")
    acc = _span(p, "acceleration_ms2")
    dec = _span(p, "deceleration_ms2")
    park_s = _span(p, "delivery_stop_s")
    rev_s = _span(p, "reverse_s")
    jitter = float(p.get("cruise_jitter_kmh", 0.0))
    p_stop = float(p.get("traffic_stop_probability", 0.5))
    p_rev = float(p.get("reverse_probability", 0.0))
    rev_kmh = float(p.get("reverse_kmh", 4.0))
    # a planned round may park longer at some stops (the fleet demo's swap stop: the robot's time)
    long_park = p.get("stop_park_s") or {}
    if not isinstance(long_park, dict) or not all(
        isinstance(k, int) and isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 7200
        for k, v in long_park.items()
    ):
        raise ConfigError("delivery cycle parameter 'stop_park_s': {leg index: seconds parked, 1..7200}")
    if caps[1] - jitter < slow[1]:
        raise ConfigError("delivery cycle: cruise_cap_kmh must stay above slowdown_kmh plus the jitter")

    trace = _Trace()
    trace.hold(0.0, int(p.get("start_idle_s", 5)))
    planned = driven = 0.0  # with leg_lengths_m: each stretch makes up what the last one missed
    # The last leg drives back to the depot and ends the round; it has no delivery.
    for leg in range(deliveries + 1):
        trace.mark(DRIVE, leg)
        length = rng.uniform(*leg_len)
        if legs is not None:
            length = float(legs[leg])
        n = max(1, min(int(rng.uniform(stretches[0], stretches[1] + 1)), int(length // 150)))
        for i in range(n):
            last = i == n - 1
            traffic_stop = not last and rng.random() < p_stop
            end = 0.0 if last or traffic_stop else rng.uniform(*slow)
            planned += length / n
            driven += trace.stretch(
                rng,
                max(1.0, planned - driven) if legs is not None else length / n,
                rng.uniform(*caps),
                end,
                rng.uniform(*acc),
                rng.uniform(*dec),
                jitter,
            )
            if traffic_stop:
                trace.mark(STOP, leg)
                trace.hold(0.0, int(rng.uniform(*stop_s)))
                trace.mark(DRIVE, leg)
        if leg == deliveries:
            trace.mark(STOP, leg)
            trace.hold(0.0, 5)
            break
        if rng.random() < p_rev:
            trace.hold(0.0, 1)
            trace.mark(REVERSE, leg)
            seconds = max(3, int(rng.uniform(*rev_s)))
            ramp = [rev_kmh / 2] + [rev_kmh] * (seconds - 2) + [rev_kmh / 2]
            trace.speeds.extend(ramp)
            trace.speeds.append(0.0)
        trace.mark(DELIVERY, leg)
        drawn = int(rng.uniform(*park_s))  # drawn always: the other stops stay as the seed made them
        trace.hold(0.0, int(long_park.get(leg, drawn)))
    trace.finish()
    return DriveCycle(
        str(p.get("name", "urban-delivery")),
        trace.speeds,
        trace.phases,
        description=str(p.get("description", "")).strip(),
        seed=seed,
    )


def load_cycle(name: str, seed: int = 0) -> DriveCycle:
    """A cycle by its command-line name (``wltc3``, ``delivery``) or a YAML file of delivery
    parameters over the shipped ones (the fleet demo's rounds give ``leg_lengths_m``)."""
    if name.endswith((".yaml", ".yml")):
        from pathlib import Path

        path = Path(name)
        try:
            own = yaml.safe_load(path.read_text("utf-8"))
        except OSError as exc:
            raise ConfigError(f"{name}: cannot read the drive cycle ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{name}: not valid YAML ({exc})") from None
        if not isinstance(own, dict):
            raise ConfigError(f"{name}: expected a mapping of delivery cycle parameters")
        try:
            return delivery_cycle(seed, {**delivery_parameters(), **own})
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    if name == "wltc3":
        return wltc_class3b()
    if name == "delivery":
        return delivery_cycle(seed)
    raise ConfigError(f"unknown drive cycle {name!r}; expected one of {', '.join(CYCLE_NAMES)}")
