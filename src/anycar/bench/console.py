"""``anycar bench console``: the fleet console with 1,000 vehicles moving at 1 Hz (issue 14).

A ``FleetServer`` (what ``anycar fleet serve`` runs) on SQLite in a temporary folder; N vehicles
registered in one tenant, driving on the base map's streets; every second each one's telemetry
(position, heading, speed, state of charge) is committed through the real store in batches of
250 and published on the live feed. Headless Chromium (Debian's, through Playwright) signs in
and shows the live map. The page measures itself (``static/perf.js``): for every map flush, the
time from the server's commit of its oldest position to the first frame drawn with it, and every
main-thread long task (PerformanceObserver 'longtask'). Goals: <= 1 s and no task over 200 ms.

"ingest to drawn" runs from the end of the commit of the oldest position of a map flush (the
moment it is stored and queryable) to the frame that shows it; "sample to drawn" also counts
the store's commit of the whole second's batch (which grows with the machine's load).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from anycar.bench.moving_fleet import MovingFleet, running_fleet
from anycar.bench.stats import percentile

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]
LATENCY_GOAL_S = 1.0
LONGTASK_GOAL_MS = 200.0


def _chromium() -> str:
    path = os.environ.get("ANYCAR_CHROMIUM", "/usr/bin/chromium")
    found = path if os.path.exists(path) else shutil.which("chromium")
    if found is None:
        raise RuntimeError(
            f"Chromium not found at {path}: apt-get install -y chromium (or set $ANYCAR_CHROMIUM)"
        )
    return found


def _loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def run(
    vehicles: int = 1000,
    seconds: float = 30.0,
    warmup: float = 8.0,
    screenshot: str | None = None,
    feed: str = "store",
) -> dict[str, Any]:
    """``feed``: ``store`` (every position committed, then published) or ``live`` (after one
    committed second, published only: the console's side at the full rate)."""
    if feed not in ("store", "live"):
        raise RuntimeError(f"--feed {feed!r}: store or live")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise RuntimeError(
            "anycar bench console needs Playwright: pip install playwright (a dev dependency)"
        ) from None
    load_before = _loadavg()
    with (
        tempfile.TemporaryDirectory(prefix="anycar-bench-console-") as tmp,
        running_fleet(f"sqlite:///{tmp}/fleet.sqlite3") as fleet,
    ):
        started = time.perf_counter()
        moving = MovingFleet(fleet, vehicles)
        register_s = time.perf_counter() - started
        moving.tick()
        moving.store = feed == "store"
        commits: list[float] = []
        stop = threading.Event()

        def feeding() -> None:
            next_at = time.monotonic()
            while not stop.is_set():
                commits.append(moving.tick()["commit_s"])
                next_at += 1.0
                stop.wait(max(0.0, next_at - time.monotonic()))

        feeder = threading.Thread(target=feeding, name="bench-feeder", daemon=True)
        feeder.start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
                try:
                    page = browser.new_context(
                        viewport={"width": 1440, "height": 900}, bypass_csp=True
                    ).new_page()
                    outside: list[str] = []
                    page.on(
                        "request",
                        lambda r: (
                            outside.append(r.url)
                            if not r.url.startswith((fleet.url, "data:", "blob:"))
                            else None
                        ),
                    )
                    page.goto(fleet.url + "/console/")
                    page.wait_for_selector("[data-testid='token']", timeout=30_000)
                    page.fill("[data-testid='token']", moving.token)
                    page.click("[data-testid='sign-in']")
                    page.wait_for_selector("body[data-ready='true']", timeout=60_000)
                    page.wait_for_selector("[data-testid='live-status'][data-status='live']", timeout=30_000)
                    time.sleep(warmup)
                    load_during = _loadavg()
                    page.evaluate("window.anycarPerf.reset()")
                    commits.clear()
                    time.sleep(seconds)
                    perf = page.evaluate(
                        "({latencies: window.anycarPerf.latencies, longtasks: window.anycarPerf.longtasks,"
                        " supported: window.anycarPerf.supported,"
                        " drawn: +window.anycarConsole.map.overlay.canvas.dataset.count,"
                        " known: window.anycarConsole.fleet.vehicles.size, own: window.anycarPerf.own})"
                    )
                    # The same while the operator zooms and pans (MapLibre draws the base map again).
                    page.evaluate("window.anycarPerf.reset()")
                    page.evaluate(
                        "(() => { const m = window.anycarConsole.map.map, c = m.getCenter();"
                        " m.easeTo({zoom: m.getZoom() + 1.5, duration: 1500});"
                        " setTimeout(() => m.easeTo({center: [c.lng + 0.004, c.lat - 0.002], duration: 1500}), 1700);"
                        " setTimeout(() => m.easeTo({zoom: m.getZoom() - 1.5, center: c, duration: 1500}), 3400); })()"
                    )
                    time.sleep(5.5)
                    moving_view = page.evaluate("window.anycarPerf.longtasks.map((t) => t.duration)")
                    stop.set()  # the feed stops before the browser leaves the live feed
                    feeder.join(10)
                    if screenshot:
                        page.screenshot(path=screenshot)
                    version = browser.version
                finally:
                    browser.close()
        finally:
            stop.set()
            feeder.join(10)
    worst = sorted(x["worst"] for x in perf["latencies"])
    after_commit = sorted(
        x["drawn"] - end for x in perf["latencies"] if (end := moving.committed_at(x["oldest"])) is not None
    )
    tasks = sorted(x["duration"] for x in perf["longtasks"])
    positions = sum(x["n"] for x in perf["latencies"])
    ordered_commits = sorted(commits)
    return {
        "benchmark": "console",
        "vehicles": vehicles,
        "rate_hz": 1.0,
        "feed": feed,
        "seconds": seconds,
        "chromium": version,
        "register_s": round(register_s, 2),
        "vehicles_in_page": perf["known"],
        "vehicles_drawn": perf["drawn"],
        "positions_drawn": positions,
        "positions_per_s": round(positions / seconds, 1),
        "flushes": len(worst),
        "ingest_to_drawn_p50_s": round(percentile(after_commit, 50), 3),
        "ingest_to_drawn_p95_s": round(percentile(after_commit, 95), 3),
        "ingest_to_drawn_max_s": round(after_commit[-1], 3) if after_commit else None,
        "flushes_matched": len(after_commit),
        "sample_to_drawn_p50_s": round(percentile(worst, 50), 3),
        "sample_to_drawn_max_s": round(worst[-1], 3) if worst else None,
        "longtask_observer": perf["supported"],
        "longtasks_over_50ms": len(tasks),
        "longtask_max_ms": round(tasks[-1], 1) if tasks else 0.0,
        "longtasks_over_200ms": sum(1 for t in tasks if t > LONGTASK_GOAL_MS),
        "view_change_longtasks_over_50ms": len(moving_view),
        "view_change_longtask_max_ms": round(max(moving_view), 1) if moving_view else 0.0,
        "feed_commit_p50_s": round(percentile(ordered_commits, 50), 3),
        "feed_commit_max_s": round(ordered_commits[-1], 3) if ordered_commits else None,
        "requests_elsewhere": len(outside),
        "own_work_ms": {
            k: {"n": v["n"], "max": round(v["max"], 1), "total": round(v["total"], 1)}
            for k, v in perf["own"].items()
        },
        "meets_latency_goal": bool(after_commit) and after_commit[-1] <= LATENCY_GOAL_S,
        "meets_longtask_goal": bool(perf["supported"]) and all(t <= LONGTASK_GOAL_MS for t in tasks),
        "loadavg_before": load_before,
        "loadavg_during": load_during,
        "loadavg_after": _loadavg(),
    }
