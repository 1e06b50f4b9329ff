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

import yaml
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


def demo_fit(profile: str) -> list[str] | None:
    """The virtual accessories a demo fits on ``profile``, in order; ``None``: every one that fits.

    Kept in ``data/demo-fit.yaml`` so the shipped example automations find what they act on."""
    path = Path(str(resources.files("anycar.accessories.virtual"))) / "data" / "demo-fit.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    names = (data.get("profiles") or {}).get(profile)
    if names is None:
        return None
    unknown = [n for n in names if n not in VIRTUAL]
    if unknown:
        raise KeyError(f"{path}: profiles.{profile}: no virtual accessory {', '.join(map(repr, unknown))}")
    return list(names)


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
