"""A reading light: switches, dims and colours; refuses colours it cannot show."""

from __future__ import annotations

import re

from anycar.accessories.sdk import Accessory, Refused

_COLOR = re.compile(r"^#?[0-9A-Fa-f]{6}$")


def behave(acc: Accessory) -> None:
    acc.values.update(IsLightOn=False, Intensity=60, Color="#FFE4B5")  # a warm white, as VSS writes it

    @acc.on("IsLightOn")
    async def switch(on: bool) -> None:
        acc.values["IsLightOn"] = on

    @acc.on("Intensity")
    async def dim(level: int) -> None:
        acc.values["Intensity"] = level

    @acc.on("Color")
    async def colour(value: str) -> None:
        if not _COLOR.match(value):
            raise Refused(f"colour {value!r} is not RRGGBB")
        acc.values["Color"] = value

    @acc.on_power
    async def power(state: str, reason: str) -> None:
        if state == "shed" and acc.values.get("IsLightOn"):
            await acc.publish(IsLightOn=False)
