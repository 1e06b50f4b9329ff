"""Firmware updates of fitted accessories, over the accessory protocol: ``update`` (version, size,
SHA-256, how many chunks), then the image in ``update_chunk`` messages of at most 64 KiB each,
answered by one ``update_result`` (the new version, or why the accessory refused).

The hub has checked the release (its vendor's signature, the image's size and hash, that it is
newer) before it sends a byte; the accessory checks the hash and the version again itself, so a
hub that skipped a check still cannot make it run a wrong or older image. Also what the
inventory says is fitted where (``inventory``), for the uplink.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from anycar.errors import AnycarError

if TYPE_CHECKING:
    from anycar.accessories.manager import AccessoryManager

CHUNK = 64 * 1024
UPDATE_TIMEOUT_S = 120.0


class UpdateRefused(AnycarError):
    """An update that cannot be attempted (no such accessory, not connected, wrong product)."""

    reason = "update_refused"


@dataclass(frozen=True, slots=True)
class UpdateOutcome:
    ok: bool
    version: str
    reason: str = ""


def inventory(mgr: AccessoryManager) -> list[dict[str, Any]]:
    """Every fitted accessory: instance, vendor, product, model, serial, firmware, mount, status."""
    out = []
    for instance, fitted in sorted(mgr.fitted.items()):
        data = fitted.manifest.data
        out.append(
            {
                "id": instance,
                "vendor_id": int(data["vendor_id"]),
                "vendor": str(data["vendor_name"])[:64],
                "product_id": int(data["product_id"]),
                "model": str(data["model"])[:64],
                "serial": fitted.record.accessory.rsplit(":", 1)[-1][:128],
                "firmware": fitted.firmware_version,
                "mount": fitted.mount.id[:128],
                "status": fitted.status[:32],
            }
        )
    return out


async def install(
    mgr: AccessoryManager,
    instance: str,
    *,
    vendor_id: int,
    product_id: int,
    version: str,
    image: bytes,
    timeout: float = UPDATE_TIMEOUT_S,
) -> UpdateOutcome:
    """Hand ``image`` (already checked) to the accessory fitted as ``instance``; its answer."""
    fitted = mgr.fitted.get(instance)
    if fitted is None:
        raise UpdateRefused(f"no accessory {instance} is fitted")
    data = fitted.manifest.data
    if (int(data["vendor_id"]), int(data["product_id"])) != (vendor_id, product_id):
        raise UpdateRefused(
            f"{instance} is vendor {data['vendor_id']} product {data['product_id']}, "
            f"the release is for vendor {vendor_id} product {product_id}"
        )
    session = fitted.session
    if session is None or session.closed:
        raise UpdateRefused(f"{instance} is not connected")
    if session.updates:
        raise UpdateRefused(f"{instance} is already being updated")
    update_id = session.next_id()
    answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    session.updates[update_id] = answer
    chunks = max(1, -(-len(image) // CHUNK))
    mgr.events.log("firmware_update", instance, f"{instance}: installing firmware {version}", version=version)
    try:
        sent = await session.send(
            {
                "type": "update",
                "id": update_id,
                "version": version,
                "size": len(image),
                "sha256": hashlib.sha256(image).hexdigest(),
                "chunks": chunks,
            }
        )
        for index in range(chunks):
            if answer.done() or not sent:  # refused early (a downgrade, too large) or gone
                break
            part = image[index * CHUNK : (index + 1) * CHUNK]
            sent = await session.send(
                {
                    "type": "update_chunk",
                    "id": update_id,
                    "index": index,
                    "data": base64.b64encode(part).decode("ascii"),
                }
            )
        try:
            result = await asyncio.wait_for(answer, timeout)
        except TimeoutError:
            return _done(mgr, instance, UpdateOutcome(False, fitted.firmware_version, "timed_out"))
        except ConnectionError as exc:
            return _done(mgr, instance, UpdateOutcome(False, fitted.firmware_version, f"disconnected: {exc}"))
    finally:
        session.updates.pop(update_id, None)
    if not result["ok"]:
        reason = str(result.get("reason") or "refused by the accessory")
        return _done(mgr, instance, UpdateOutcome(False, fitted.firmware_version, reason))
    new = str(result.get("version") or version)
    fitted.firmware = new
    session.firmware = new
    return _done(mgr, instance, UpdateOutcome(True, new))


def _done(mgr: AccessoryManager, instance: str, outcome: UpdateOutcome) -> UpdateOutcome:
    if outcome.ok:
        mgr.events.log("firmware_updated", instance, f"{instance} runs firmware {outcome.version}")
    else:
        mgr.events.log("firmware_failed", instance, f"{instance}: firmware update failed: {outcome.reason}")
    return outcome
