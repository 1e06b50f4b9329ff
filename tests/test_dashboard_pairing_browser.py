"""The dashboard's "Add an accessory" panel in headless Chromium against a real hub: trust a
vendor key, see the waiting accessory with the mount it would take, a wrong code said in plain
words, then pair with the right code and watch its controls appear."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.register_assert_rewrite("browser_support")

from anycar.accessories import signing  # noqa: E402
from anycar.accessories.sdk import Accessory, AccessoryRefused  # noqa: E402
from anycar.hub.cabin import CabinComponent  # noqa: E402
from hub_support import running_hub  # noqa: E402

pytest_plugins = ["browser_support"]
FAN = yaml.safe_load((Path(__file__).resolve().parents[1] / "examples/accessories/fan.yaml").read_text())


def _run_in_thread(acc: Accessory, url: str) -> tuple[threading.Thread, list[BaseException]]:
    failures: list[BaseException] = []

    def main() -> None:
        try:
            asyncio.run(acc.run(url, reconnect=False))
        except AccessoryRefused as exc:
            failures.append(exc)

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    return thread, failures


def test_add_an_accessory_panel_trusts_and_pairs(page: Any, tmp_path: Path) -> None:
    key = signing.generate_key()
    with running_hub(tmp_path, brand="xiaomi_su7") as hub:
        endpoints = hub.endpoints()
        page.goto(endpoints["dashboard"])
        page.wait_for_selector("body[data-ready='true']", timeout=15_000)
        panel = page.locator("[data-testid='panel-pairing']")
        assert panel.is_visible()
        panel.locator("input[name='vendor']").fill("0xFFF2")
        panel.locator("input[name='key']").fill(signing.public_b64(key))
        panel.locator("button:has-text('Trust key')").click()
        page.wait_for_selector("#pair-note.ok", timeout=10_000)
        assert f"Trusted key {signing.key_id(key)}" in page.locator("#pair-note").inner_text()

        # A wrong code: refused in plain words, and the accessory's SDK raised the hub's reason.
        wrong = Accessory(FAN, serial="D-1", pairing_code="1234-5678", signing_key=key)
        thread, failures = _run_in_thread(wrong, endpoints["accessories"])
        row = page.locator("#pair-list li[data-accessory='fff2:1001:D-1']")
        row.wait_for(timeout=15_000)
        row.locator("input[name='code']").fill("0000-0000")
        row.locator("button:has-text('Pair')").click()
        page.wait_for_selector("#pair-note.error", timeout=10_000)
        assert "not the accessory's code" in page.locator("#pair-note").inner_text()
        thread.join(10)
        assert failures and failures[0].reason == "pairing_failed"

        # The right code: the accessory is fitted at the mount the panel proposed.
        fan = Accessory(FAN, serial="D-2", pairing_code="1234-5678", signing_key=key)
        thread, failures = _run_in_thread(fan, endpoints["accessories"])
        row = page.locator("#pair-list li[data-accessory='fff2:1001:D-2']")
        row.wait_for(timeout=15_000)
        proposed = row.locator("[data-role='mount']").inner_text()
        assert proposed.startswith("would take ")
        row.locator("input[name='code']").fill("1234-5678")
        row.locator("button:has-text('Pair')").click()
        card = page.locator("#acc-grid article:has-text('Acme clip fan')")
        card.wait_for(timeout=15_000)
        assert card.locator(".control[data-kind='range']").count() == 1
        assert card.locator(".control[data-kind='switch']").count() == 1
        cabin = next(c for c in hub.components if isinstance(c, CabinComponent))
        assert cabin.manager is not None
        fitted = next(f for f in cabin.manager.fitted.values() if f.record.accessory == "fff2:1001:D-2")
        assert proposed == f"would take {fitted.mount.description} ({fitted.mount.type.replace('_', ' ')})"
        page.wait_for_selector("#pair-list li.empty", timeout=10_000)
        assert not failures
