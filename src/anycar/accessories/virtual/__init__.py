"""Virtual accessories, one per trait family, built on the SDK; used by the demo and the tests.

``build(name, serial=..., signing_key=...)`` returns a ready ``Accessory``; each module holds
the behaviour, ``data/<name>.yaml`` the manifest.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from anycar.accessories.manifest import read_manifest_data
from anycar.accessories.sdk import Accessory

VIRTUAL_VENDOR_ID = 0xFFF1  # Matter's first test vendor id

# name -> trait family
VIRTUAL = {
    "cabin_light": "light",
    "clip_fan": "fan",
    "dash_display": "display",
    "qi_charger": "charger",
    "cup_cooler": "cooler",
    "fragrance": "fragrance",
    "cabin_camera": "camera",
    "headrest_speaker": "speaker",
    "button_panel": "controls",
    "dial_gauge": "gauge",
    "cabin_air": "environment",
    "cargo_sensor": "cargo",
}


def manifest_path(name: str) -> Path:
    if name not in VIRTUAL:
        raise KeyError(f"no virtual accessory {name!r} ({', '.join(VIRTUAL)})")
    return Path(str(resources.files("anycar.accessories.virtual"))) / "data" / f"{name}.yaml"


def manifest_data(name: str) -> dict[str, Any]:
    path = manifest_path(name)
    return read_manifest_data(path.read_text(encoding="utf-8"), str(path))


def build(
    name: str,
    *,
    serial: str,
    signing_key: Ed25519PrivateKey | None = None,
    pairing_code: str | None = None,
    credentials: str | Path | None = None,
) -> Accessory:
    """A virtual accessory ``name`` with its manifest signed by ``signing_key``."""
    module = importlib.import_module(f"anycar.accessories.virtual.{name}")
    make: Callable[[Accessory], Any] = module.behave
    acc = Accessory(
        manifest_data(name),
        serial=serial,
        signing_key=signing_key,
        pairing_code=pairing_code,
        credentials=credentials,
    )
    make(acc)

    @acc.on_running
    async def report_state() -> None:
        # A device says what state it is in when it (re)connects, so nobody shows a made-up value.
        known = {k: v for k, v in acc.values.items() if k in acc.paths}
        if known:
            await acc.publish(known)

    return acc
