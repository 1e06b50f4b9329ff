"""A clip-on fan: speed in percent and an oscillating head; stops when shed."""

from __future__ import annotations

from anycar.accessories.sdk import Accessory


def behave(acc: Accessory) -> None:
    @acc.on("FanSpeed")
    async def speed(percent: int) -> None:
        acc.values["FanSpeed"] = percent

    @acc.on("IsOscillating")
    async def oscillate(on: bool) -> None:
        acc.values["IsOscillating"] = on

    @acc.on_power
    async def power(state: str, reason: str) -> None:
        if state == "shed":
            await acc.publish(FanSpeed=0)

    @acc.every(5.0)
    async def report() -> None:
        await acc.publish(
            FanSpeed=acc.values.get("FanSpeed", 0), IsOscillating=acc.values.get("IsOscillating", False)
        )
