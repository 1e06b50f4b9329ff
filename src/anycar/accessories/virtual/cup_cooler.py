"""A cup cooler: drifts towards its target when on, towards the cabin when off."""

from __future__ import annotations

from anycar.accessories.sdk import Accessory

CABIN_C = 24.0


def behave(acc: Accessory) -> None:
    acc.values.update(IsOn=False, TargetTemperature=6.0, Temperature=CABIN_C)

    @acc.on("IsOn")
    async def switch(on: bool) -> None:
        acc.values["IsOn"] = on

    @acc.on("TargetTemperature")
    async def target(celsius: float) -> None:
        acc.values["TargetTemperature"] = celsius

    @acc.every(1.0)
    async def step() -> None:
        goal = acc.values["TargetTemperature"] if acc.values["IsOn"] and acc.power == "on" else CABIN_C
        temp = acc.values["Temperature"] + (goal - acc.values["Temperature"]) * 0.1
        await acc.publish(Temperature=round(temp, 2))
