"""A cabin or cargo camera: records on command, reports motion, and takes a still on ``Capture``
(a generated 32x24 PNG: a gradient with noise and the still's number, so each differs)."""

from __future__ import annotations

import base64
import random
import struct
import zlib

from anycar.accessories.sdk import Accessory


def behave(acc: Accessory) -> None:
    acc.values.update(IsRecording=False)

    acc.values["stills"] = 0

    @acc.on("Capture")
    async def capture(on: bool) -> None:
        if on:
            acc.values["stills"] += 1
            png = still(acc.values["stills"])
            await acc.publish(Snapshot="data:image/png;base64," + base64.b64encode(png).decode())

    @acc.on("IsRecording")
    async def record(on: bool) -> None:
        acc.values["IsRecording"] = on

    @acc.every(1.0)
    async def report() -> None:
        recording = acc.values["IsRecording"]
        await acc.publish(FrameRate=30.0 if recording else 0.0, IsMotionDetected=random.random() < 0.1)  # nosec B311 # a simulated motion sensor, not security


def still(number: int, width: int = 32, height: int = 24) -> bytes:
    """A small RGB PNG, made here (no imaging library): the simulated camera's picture."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            noise = random.randrange(32)  # nosec B311 # a simulated image, not security
            rows += bytes(((x * 8 + noise) % 256, (y * 10 + number * 40) % 256, (noise * 4) % 256))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows)))
        + chunk(b"IEND", b"")
    )
