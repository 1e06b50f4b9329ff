"""In Chromium: an offline alert on the console's alerts page is withdrawn, live, when the
vehicle's spooled messages arrive and show it was online (a real FleetServer on SQLite; the
alert from the offline check, the withdrawal from the server's own domain pipeline and live
feed)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.register_assert_rewrite("browser_support")

from anycar.bench.moving_fleet import running_fleet  # noqa: E402
from anycar.fleet import offline, registry, rules  # noqa: E402
from anycar.fleet.store import Accepted  # noqa: E402
from fleet_domain_support import Drive  # noqa: E402
from fleet_support import vin  # noqa: E402
from test_fleet_console_domain_browser import _sign_in  # noqa: E402

pytest_plugins = ["browser_support"]


def test_the_console_shows_an_offline_alert_withdrawn_by_late_data(page: Any, tmp_path: Path) -> None:
    with running_fleet(f"sqlite:///{tmp_path / 'fleet.sqlite3'}") as running:
        engine = running.store.engine
        creds = registry.add_vehicle(engine, vin(7), "kaiyun_pickman", tenant="acme")
        ref = running.store.vehicle(creds.vehicle)
        assert ref is not None
        rules.set_override(engine, ref.tenant_id, {"offline": {"after_minutes": 0.05}})  # 3 s
        token = registry.add_user(engine, "acme", "operator", "dispatcher")
        t0 = time.time()
        spool = Drive(creds.vehicle, t=t0 - 5, step_s=0.5).leg(60.5, 20).batches(per_batch=2)
        for doc in [d for d in spool if d["ts"] <= t0]:
            running.commit([Accepted(ref, doc)])
        time.sleep(3.5)  # after the last receive time: silent for the limit (3 s)
        (alert,) = offline.check(engine)
        _sign_in(page, running.url, token)
        page.click("#nav a[data-page='alerts']")
        page.select_option("[data-filter='alert-state']", "all")
        status = page.locator(f"[data-alert-status='{alert['id']}']")
        status.wait_for(timeout=10_000)
        assert status.inner_text() == "open"
        assert page.locator("#alert-count").inner_text() == "1"
        for doc in [d for d in spool if t0 < d["ts"] <= time.time()]:  # the spool drains: it was online
            running.commit([Accepted(ref, doc)])
        page.wait_for_function(
            f"document.querySelector(\"[data-alert-status='{alert['id']}']\").textContent.startsWith('withdrawn')",
            timeout=15_000,
        )
        text = status.inner_text()
        assert "data arrived late: the vehicle was online" in text, text
        assert page.locator(f"tr[data-alert='{alert['id']}'] button[data-ack]").count() == 0
        page.wait_for_function("document.getElementById('alert-count').textContent === ''", timeout=10_000)
        with httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {token}"}) as http:
            (listed,) = http.get("/api/alerts", params={"state": "withdrawn"}).json()
        assert listed["id"] == alert["id"] and listed["withdrawn_reason"] in text
