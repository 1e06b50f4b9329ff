"""Issue 16 item 9, run for real: the fleet demo's two swap stations (station simulators speaking
OCPP 2.1 to the fleet server's CSMS), the low PICKMAN's round with a planned and reserved swap
stop, the swap at the bay, the hub reporting the pack the station handed out, the fleet
reconciling it, the station page counting it."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from anycar.errors import ConfigError
from anycar.fleetdemo.stations import load_stations

ANYCAR = str(Path(sys.executable).with_name("anycar"))
README = Path(__file__).resolve().parents[1] / "README.md"


def readme_section() -> str:
    text = README.read_text("utf-8")
    return text.split("## Battery swap: the vehicle side and the demo's stations", 1)[1].split("\n## ", 1)[0]


def test_the_readme_python_example_runs_as_written() -> None:
    (code,) = re.findall(r"```python\n(.*?)```", readme_section(), re.S)
    exec(compile(code, "README.md", "exec"), {})  # nosec B102 # the README's own example, run as a reader would


@pytest.mark.timeout(400)
def test_the_demo_swaps_a_pickman_at_a_station_and_the_fleet_reconciles_it() -> None:
    (line,) = re.findall(r"^anycar demo --fleet .*$", readme_section(), re.M)  # the README's, as written
    proc = subprocess.run([ANYCAR, *shlex.split(line)[1:]], capture_output=True, text=True, timeout=380)
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
    assert (
        one["station_id"] == planned["station"]
        and one["reservation_id"] == planned["reservation"]["reservation_id"]
    )
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


def test_a_swap_stop_parks_as_long_as_asked_and_a_bad_park_is_refused() -> None:
    from anycar.sim.cycles import DELIVERY, delivery_cycle, delivery_parameters

    legs = {**delivery_parameters(), "leg_lengths_m": [500.0, 800.0, 900.0]}
    plain = delivery_cycle(3, legs)
    longer = delivery_cycle(3, {**legs, "stop_park_s": {0: 240}})
    parks = [p.duration for p in longer.phases if p.kind == DELIVERY]
    assert parks[0] == 240
    assert parks[1:] == [p.duration for p in plain.phases if p.kind == DELIVERY][1:]  # the others as drawn
    for bad in ({0: -5}, {0: "long"}, {"0": 10}, [240]):
        with pytest.raises(ConfigError, match="stop_park_s"):
            delivery_cycle(3, {**legs, "stop_park_s": bad})
