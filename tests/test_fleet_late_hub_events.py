"""The hub's own events arriving late, on real SQLite and PostgreSQL (fleet-domain, session 6).

A hub event is the hub's judgment on its own full-rate, in-order data (harsh braking, its own
low SoC, an accessory removed): the cloud maps one event to one alert and keeps no state across
them, so the order they arrive in cannot change which alerts there are. What late arrival must
do, and is tested here: the alert is raised with the event's time and marked ``late`` when the
vehicle's stream had already been derived past it; the event sent again (a hub that missed its
acknowledgements resends its spool under new sequence numbers) raises nothing twice; and the
cloud rules' replay of late telemetry never withdraws a hub's alert (a hub ``low_soc`` is not the
cloud rule's episode, even though the two share the type)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fleet_domain_support import T0, Drive
from fleet_support import fleet_engine
from test_fleet_late_alerts import GAP, _alerts, _deliver, _setup, _standing, the_drive


def _hub_events(wire_id: str, seq: int) -> dict[str, Any]:
    """What the hub raised during the tunnel (T0+300: at 50 km/h in the school zone)."""
    drive = Drive(wire_id, seq=seq, t=T0 + 310)
    return drive.events(
        [
            {"type": "harsh_braking", "ts": T0 + 300, "position": {"lat": 30.02, "lon": 120.0}},
            {"type": "low_soc", "ts": T0 + 301, "message": "hub: SoC 14 %", "position": None},
            {"type": "accessory_removed", "ts": T0 + 302, "subject": "cooler1", "position": None},
        ]
    )


def _hub(alerts: list[dict[str, Any]]) -> list[tuple[str, float, bool, bool]]:
    return sorted(
        (a["type"], a["ts"] - T0, a["late"], a["withdrawn_ts"] is None)
        for a in alerts
        if (a["data"] or {}).get("source") == "hub"
    )


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_late_hub_events_raise_late_once_and_the_rules_replay_keeps_them(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        store, domain, (in_order, late), tid = _setup(engine, 2)
        # the reference: the events arrive when they happened, between the telemetry batches
        docs = the_drive(in_order.wire_id).batches(per_batch=3)
        cut = next(i for i, d in enumerate(docs) if d["ts"] > T0 + 302)
        _deliver(store, domain, in_order, [*docs[:cut], _hub_events(in_order.wire_id, 900), *docs[cut:]])
        expected = _standing(_alerts(engine, tid, in_order.wire_id))
        assert _hub(_alerts(engine, tid, in_order.wire_id)) == [
            ("accessory_removed", 302.0, False, True),
            ("harsh_braking", 300.0, False, True),
            ("low_soc", 301.0, False, True),
        ]
        # the late vehicle: live before and after the tunnel, then the hub's events, then its spool
        docs = the_drive(late.wire_id).batches(per_batch=3)
        gap = [d for d in docs if GAP[0] <= d["ts"] <= GAP[1]]
        _deliver(store, domain, late, [d for d in docs if d not in gap])
        _deliver(store, domain, late, [_hub_events(late.wire_id, 900)])
        marked = [("accessory_removed", 302.0, True, True), ("harsh_braking", 300.0, True, True)]
        marked.append(("low_soc", 301.0, True, True))
        assert _hub(_alerts(engine, tid, late.wire_id)) == marked
        _deliver(store, domain, late, gap)  # the rules replay the tunnel: the hub's alerts stay
        got = _alerts(engine, tid, late.wire_id)
        assert _hub(got) == marked
        assert _standing(got) == expected  # the cloud rules' alerts as in order, the hub's too
        _deliver(store, domain, late, [_hub_events(late.wire_id, 901)])  # resent: new seq
        assert _alerts(engine, tid, late.wire_id) == got
        assert domain.stats.errors == 0
