"""Issue 16 item 9, run for real: the fleet demo's two swap stations (station simulators speaking
OCPP 2.1 to the fleet server's CSMS), the low PICKMAN's round with a planned and reserved swap
stop, the swap at the bay, the hub reporting the pack the station handed out, the fleet
reconciling it, the station page counting it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from anycar.errors import ConfigError
from anycar.fleetdemo.stations import load_stations

ANYCAR = str(Path(sys.executable).with_name("anycar"))


@pytest.mark.timeout(400)
def test_the_demo_swaps_a_pickman_at_a_station_and_the_fleet_reconciles_it() -> None:
    proc = subprocess.run(
        [ANYCAR, "demo", "--fleet", "--vehicles", "2", "--duration", "90", "--speedup", "20",
         "--fleet-port", "0", "--json"],
        capture_output=True, text=True, timeout=380,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    summary = json.loads(text[text.index("\n{") + 1 :])
    swap = summary["swap"]
    assert {s["id"] for s in swap["stations"]} == {"hki-kamppi", "hki-kaisaniemi"}
    assert all(s["online"] and s["lat"] and s["lon"] for s in swap["stations"])  # on the map
    planned = swap["planned"]
    assert planned["reservation"]["status"] == "Accepted", planned  # swapstops reserved a pack
    done = [s for s in swap["swaps"] if s["state"] == "done"]
    assert len(done) == 1, swap
    (one,) = done
    assert one["station_id"] == planned["station"] and one["reservation_id"] == planned["reservation"]["reservation_id"]
    assert one["pack_old"] == "KYB00000101" and one["pack_new"].startswith("KYB0000")
    assert one["reconciled"] == "ok" and one["vehicle_pack"] == one["pack_new"], one
    assert swap["pack_alerts"] == []
    page = {s["id"]: s for s in swap["stations"]}[one["station_id"]]
    assert page["swaps_today"] == 1  # the station page's swaps today
    assert any(e.get("fitted") for e in swap["events"])  # the robot's pack went into the simulator
    assert f"took {one['pack_new']}" in text


def test_bad_station_files_say_so_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"stations.yaml: KeyError"):
        load_stations("stations: [{id: a}]\npacks: {}\nswapper: {}")
    with pytest.raises(ConfigError, match=r"stations.yaml: ValueError"):
        load_stations(
            "stations: [{id: a, name: A, lat: x, lon: 1, layout: pickman-8, first_serial: 1, soc: 90}]\n"
            "packs: {first_serial: 1, soh: 90, capacity_kwh: 10}\nswapper: {index: 0, soc: 10, park_s: 100}"
        )
