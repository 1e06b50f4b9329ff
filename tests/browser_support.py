"""Browser tests with Debian's Chromium driven by Playwright for Python.

CI installs the browser with ``apt-get install -y chromium`` (never ``playwright install``).
Use it from a test module with ``pytest_plugins = ["browser_support"]``; then a test takes the
``page`` fixture, and ``serve(app)`` runs any ASGI app on 127.0.0.1 on a free port. Every page
is screenshotted into ``test-results/<test name>.png`` when the test ends, pass or fail.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

CHROMIUM = os.environ.get("ANYCAR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RESULTS = Path(os.environ.get("ANYCAR_TEST_RESULTS", "test-results"))
VIEWPORT = {"width": 1440, "height": 1000}


def _chromium_or_fail() -> str:
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if path is None:
        # A skip would hide the browser tests: fail loudly and say how to get the browser.
        pytest.fail(f"Chromium not found at {CHROMIUM}: run apt-get install -y chromium (.ci/run does)")
    return path


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium per test module.

    Not per session: while Playwright's sync API runs it holds an event loop on this thread,
    and the asyncio tests of later modules could not start theirs.
    """
    executable = _chromium_or_fail()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page; its console errors are collected in ``page.console_errors``."""
    # The pages' own CSP (script-src 'self') also blocks the eval Playwright polls
    # ``wait_for_function`` with once its first check is false; the page's scripts still run
    # under the header (tests/test_dashboard_app.py checks it is sent).
    context = chromium.new_context(viewport=VIEWPORT, device_scale_factor=1, bypass_csp=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.console_errors = errors
    try:
        yield pg
    finally:
        try:
            screenshot(pg, request.node.name)
        finally:
            context.close()


def screenshot(page: Any, name: str) -> Path:
    """Save the whole page as ``test-results/<name>.png``.

    Playwright's full_page capture hangs with Debian's Chromium, so the viewport is grown to the
    page's height instead.
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".png")
    height = page.evaluate(
        "Math.max(document.documentElement.scrollHeight, document.body?.scrollHeight || 0)"
    )
    width = page.viewport_size["width"] if page.viewport_size else VIEWPORT["width"]
    page.set_viewport_size({"width": width, "height": max(200, min(int(height), 8000))})
    page.screenshot(path=str(target))
    return target


@contextmanager
def serve(app: Any, *, timeout: float = 10.0) -> Iterator[str]:
    """Run an ASGI app with uvicorn on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="auto", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)


def own_errors(page: Any) -> list[str]:
    """A page's errors other than the failed requests to an absent hub."""
    return [e for e in page.console_errors if "Failed to load resource" not in e and "WebSocket" not in e]
