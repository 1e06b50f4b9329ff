"""A cabin air sensor: temperature, humidity and CO2 that rises with occupants."""

from __future__ import annotations

import math
import time

from anycar.accessories.sdk import Accessory


def behave(acc: Accessory) -> None:
    start = time.monotonic()

    @acc.every(1.0)
    async def sample() -> None:
        t = time.monotonic() - start
        await acc.publish(
            Temperature=round(22.0 + 1.5 * math.sin(t / 60), 2),
            Humidity=round(45.0 + 5 * math.sin(t / 90), 1),
            CO2=int(600 + min(900, t * 2)),
        )
