"""The command actions other rooms carry out, as the uplink's ``CommandHandler`` calls them:
``scene`` (the automations apply one of their scenes, with the scene's owner's grant),
``fleet_event`` (the automations' ``fleet_event`` triggers fire) and ``firmware`` (a release its
vendor signed, fetched, checked and handed to the accessory).

Each returns an ``Outcome``; what the fleet may ask is bounded by ``uplink.commands``: the
scenes it names (``scenes: [id, ...]`` or ``["*"]``), ``fleet_events`` and ``firmware`` on/off.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import httpx

from anycar.accessories.manager import AccessoryManager
from anycar.accessories.signing import parse_public_key
from anycar.accessories.updating import UpdateRefused, install
from anycar.automations.engine import Engine
from anycar.uplink.commands import ActionHandler, Outcome
from anycar.uplink.config import CommandSettings
from anycar.wire import WireError
from anycar.wire.firmware import check_release, newer

MIB = 1024 * 1024
FETCH_TIMEOUT_S = 60.0
_SCENE_STATUS = {"accepted", "rejected", "timed_out", "no_provider", "refused"}


def scene_action(engine: Callable[[], Engine | None], settings: CommandSettings) -> ActionHandler:
    async def apply(cid: str, body: dict[str, Any]) -> Outcome:
        scene_id = str(body["id"])
        if "*" not in settings.scenes and scene_id not in settings.scenes:
            return Outcome("refused", f"scene {scene_id} is not in uplink.commands.scenes")
        found = engine()
        scene = found.scenes.get(scene_id) if found is not None else None
        if found is None or scene is None:
            known = ", ".join(sorted(found.scenes)) if found is not None else ""
            return Outcome("refused", f"no scene {scene_id} on this hub (known: {known or 'none'})")
        outcomes = await found.acting.apply_scene(scene)
        results = []
        for path, out in outcomes.items():
            status = out["outcome"] if out["outcome"] in _SCENE_STATUS else "rejected"
            results.append(
                {"path": path, "status": status, **({"reason": out["reason"]} if out["reason"] else {})}
            )
        ok = sum(1 for r in results if r["status"] == "accepted")
        status = "accepted" if ok == len(results) else "partial" if ok else "rejected"
        reason = (
            ""
            if status == "accepted"
            else next(r.get("reason", r["status"]) for r in results if r["status"] != "accepted")
        )
        return Outcome(status, reason, results[:64])

    return apply


def fleet_event_action(engine: Callable[[], Engine | None]) -> ActionHandler:
    async def deliver(cid: str, body: dict[str, Any]) -> Outcome:
        found = engine()
        if found is None:
            return Outcome("refused", "this hub runs no automations")
        fired = found.fleet_event(str(body["type"]), body.get("data"))
        reason = "" if fired else f"no automation triggers on fleet event {body['type']}"
        return Outcome("accepted", reason, [{"automations": fired[:256], "status": "accepted"}])

    return deliver


async def fetch_image(url: str, size: int, timeout: float = FETCH_TIMEOUT_S) -> bytes:
    """The image at ``url``, at most ``size`` bytes (a longer body is cut off and refused)."""
    out = bytearray()
    async with (
        httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
        client.stream("GET", url) as response,
    ):
        if response.status_code != 200:
            raise UpdateRefused(f"image download: HTTP {response.status_code} from {url[:200]}")
        async for part in response.aiter_bytes():
            out += part
            if len(out) > size:
                raise UpdateRefused(f"image download: more than the release's {size} bytes")
    return bytes(out)


def firmware_action(
    manager: Callable[[], AccessoryManager | None], settings: CommandSettings
) -> ActionHandler:
    async def update(cid: str, body: dict[str, Any]) -> Outcome:
        if not settings.firmware:
            return Outcome("refused", "uplink.commands.firmware is off on this hub")
        mgr = manager()
        if mgr is None:
            return Outcome("refused", "this hub has no accessory server")
        instance, release = str(body["accessory"]), body["release"]

        def refused(reason: str) -> Outcome:
            return Outcome(
                "refused", reason, [{"accessory": instance, "status": "refused", "reason": reason}]
            )

        fitted = mgr.fitted.get(instance)
        if fitted is None:
            return refused(f"no accessory {instance} is fitted")
        vendor = int(release["vendor_id"])
        keys = {
            k.key_id: parse_public_key(k.public_key)
            for k in mgr.trust.entries()
            if k.vendor_id == vendor and not k.revoked
        }
        try:
            check_release(release, keys)
        except WireError as exc:
            return refused(f"release of vendor {vendor}: {exc}")
        current, version = fitted.firmware_version, str(release["version"])
        try:
            is_newer = newer(version, current)
        except WireError:
            is_newer = True  # the accessory's own version is not semver; it decides itself
        if not is_newer:
            return refused(f"downgrade refused: {instance} runs {current}, the release is {version}")
        size = int(release["size"])
        if size > settings.firmware_max_mb * MIB:
            return refused(f"{size} bytes is more than uplink.commands.firmware_max_mb")
        try:
            image = await fetch_image(str(body["url"]), size)
            if len(image) != size or hashlib.sha256(image).hexdigest() != release["sha256"]:
                return refused("bad hash: the image is not the one its vendor signed")
            done = await install(
                mgr,
                instance,
                vendor_id=vendor,
                product_id=int(release["product_id"]),
                version=version,
                image=image,
            )
        except UpdateRefused as exc:
            return refused(str(exc))
        except httpx.HTTPError as exc:
            return refused(f"image download: {type(exc).__name__}: {str(exc)[:200]}")
        item = {
            "accessory": instance,
            "status": "accepted" if done.ok else "rejected",
            "version": done.version,
        }
        if not done.ok:
            item["reason"] = done.reason
        return Outcome("accepted" if done.ok else "rejected", done.reason, [item])

    return update
