"""Reports per vehicle and per fleet, per day and week, from trips, stops and alerts derived from
real wire messages: JSON numbers checked against the drive, CSV (also through
``anycar fleet report``), and the printable HTML page with its SVG charts, printed to PDF by
real Chromium (``page.pdf()``)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.register_assert_rewrite("browser_support")

from anycar.fleet import registry, reports  # noqa: E402
from anycar.fleet.api import fleet_api  # noqa: E402
from anycar.fleet.domain import DomainPipeline  # noqa: E402
from anycar.fleet.store import Accepted, Store  # noqa: E402
from browser_support import serve  # noqa: E402
from fleet_domain_support import T0, Drive  # noqa: E402
from fleet_support import fleet_engine, vin  # noqa: E402

pytest_plugins = ["browser_support"]


def _seed(engine) -> dict:
    store = Store(engine)
    domain = DomainPipeline(store)
    a = registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme", wire_id="PM-A")
    b = registry.add_vehicle(engine, vin(2), "kaiyun_pickman", tenant="acme", wire_id="PM-B")
    registry.add_vehicle(engine, vin(3), "kaiyun_pickman", tenant="rival", wire_id="RIVAL-1")
    for creds, legs, start in (
        (a, [(300, 0), (600, 36), (300, 0), (300, 54), (300, 0)], T0 + 8 * 3600),  # 6 + 4.5 km on Dec 1
        (b, [(300, 0), (1200, 30), (300, 0)], T0 + 9 * 3600),  # 10 km on Dec 1
        (b, [(300, 0), (600, 30), (300, 0)], T0 + 86_400 + 9 * 3600),  # 5 km on Dec 2
    ):
        ref = store.vehicle(creds.vehicle)
        drive = Drive(creds.vehicle, t=start, boot=f"{int(start):016x}", soc=14.0 if creds is b else 80.0)
        for seconds, kmh in legs:
            drive.leg(seconds, kmh)
        for doc in drive.batches(per_batch=30):
            store.commit([Accepted(ref, doc)])
            domain.run_pending()
    return {"tenant": registry.tenant_id(engine, "acme"), "a": a.vehicle, "b": b.vehicle}


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_day_and_week_reports(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        seed = _seed(engine)
        day = reports.fleet_report(engine, seed["tenant"], reports.period(day="2026-12-01"))
        rows = {r["vehicle"]: r for r in day["vehicles"]}
        assert set(rows) == {"PM-A", "PM-B"}  # never the rival's vehicle
        a, b = rows["PM-A"], rows["PM-B"]
        assert (a["distance_km"], a["trips"], a["driving_s"], a["max_speed_kmh"]) == (
            10.5,
            2,
            600 + 300,
            54.0,
        )
        assert (b["distance_km"], b["trips"], b["driving_s"]) == (10.0, 1, 1200)
        # two stops closed (300 s each), the last one open: parked until now (or the day's end);
        # none yet when the test runs on T0's day before the stop opened (T0 is 2026-12-01)
        open_since = T0 + 8 * 3600 + 1500
        parked = max(0.0, min(time.time(), T0 + 86_400) - open_since)
        assert a["stops"] == 3 and a["stop_s"] == pytest.approx(600 + parked, abs=5)
        # energy: 100 Wh/km in the drive -> 10 kWh/100 km
        assert a["energy_kwh"] == pytest.approx(1.05, abs=0.02) and a["kwh_per_100km"] == pytest.approx(
            10.0, abs=0.2
        )
        assert a["utilisation"] == round(900 / 86_400, 4)
        assert b["alerts"] == 1 and b["alerts_by_type"] == {"low_soc": 1} and a["alerts"] == 0
        assert (
            day["totals"]["distance_km"] == 20.5
            and day["totals"]["vehicles"] == 2
            and day["totals"]["trips"] == 3
        )
        week = reports.vehicle_report(
            engine, seed["tenant"], _pk(engine, seed["b"]), reports.period(week="2026-W49")
        )
        assert [d["day"] for d in week["days"]][:3] == ["2026-11-30", "2026-12-01", "2026-12-02"]
        assert [d["distance_km"] for d in week["days"]][:3] == [0.0, 10.0, 5.0]
        assert week["totals"]["distance_km"] == 15.0 and week["totals"]["trips"] == 2
        table = list(csv.reader(io.StringIO(reports.to_csv(day))))
        assert table[0][:3] == ["vehicle", "distance_km", "driving_s"]
        assert [r[0] for r in table[1:]] == ["PM-A", "PM-B", "total"] and table[-1][1] == "20.5"
        page = reports.to_html(day, "<script>x</script>")
        assert "&lt;script&gt;" in page and "<script>" not in page and page.count("<svg") == 2


def _without_stop_s(text: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text)))
    col = rows[0].index("stop_s")
    return [r[:col] + r[col + 1 :] for r in rows]


def _pk(engine, wire: str) -> int:
    from anycar.fleet.domain_queries import vehicle_id

    found = vehicle_id(engine, registry.tenant_id(engine, "acme"), wire)
    assert found is not None
    return found


def test_the_cli_report_and_the_printable_page(
    tmp_path: Path, page, capsys: pytest.CaptureFixture[str]
) -> None:
    with fleet_engine("sqlite", tmp_path) as engine:
        seed = _seed(engine)
        env = dict(os.environ, ANYCAR_FLEET_DB=str(tmp_path / "fleet.sqlite3"))
        anycar = str(Path(sys.executable).parent / "anycar")
        done = subprocess.run(
            [anycar, "fleet", "report", "--tenant", "acme", "--day", "2026-12-01", "--format", "csv"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        expected = reports.to_csv(
            reports.fleet_report(engine, seed["tenant"], reports.period(day="2026-12-01"))
        )
        assert _without_stop_s(done.stdout) == _without_stop_s(expected)  # an open stop runs until now
        from anycar.cli.main import main  # a refusal, in-process: one line, no traceback

        db_url = f"sqlite:///{env['ANYCAR_FLEET_DB']}"
        assert main(["fleet", "report", "--tenant", "acme", "--week", "2026-W60", "--db", db_url]) != 0
        err = capsys.readouterr().err
        assert "week: '2026-W60' is not an ISO week" in err and "Traceback" not in err
        token = registry.add_user(engine, "acme", "viewer-1", "viewer")
        with serve(fleet_api(Store(engine))) as base:
            page.set_extra_http_headers({"Authorization": f"Bearer {token}"})
            response = page.goto(f"{base}/api/reports/fleet?week=2026-W49&format=html")
            assert response is not None and response.status == 200
            assert response.headers["content-security-policy"].startswith("default-src 'none'")
            assert page.locator("h1").inner_text() == "Fleet report 2026-W49"
            assert page.locator("svg").count() == 2 and page.locator("svg rect").count() == 14  # 7 days x 2
            assert page.locator("tr.total td").first.inner_text() == "25.5"
            pdf = page.pdf(format="A4", landscape=True, print_background=True)
            assert pdf[:5] == b"%PDF-" and len(pdf) > 5000
            (tmp_path / "report.pdf").write_bytes(pdf)
            vehicle = page.goto(f"{base}/api/reports/vehicles/PM-A?day=2026-12-01&format=html")
            assert (
                vehicle is not None
                and vehicle.status == 200
                and "Vehicle PM-A" in page.locator("h1").inner_text()
            )
