"""A cabin or cargo camera: records on command and reports motion."""

from __future__ import annotations

import random

from anycar.accessories.sdk import Accessory


def behave(acc: Accessory) -> None:
    acc.values.update(IsRecording=False)

    @acc.on("IsRecording")
    async def record(on: bool) -> None:
        acc.values["IsRecording"] = on

    @acc.every(1.0)
    async def report() -> None:
        recording = acc.values["IsRecording"]
        await acc.publish(FrameRate=30.0 if recording else 0.0, IsMotionDetected=random.random() < 0.1)  # nosec B311 # a simulated motion sensor, not security
