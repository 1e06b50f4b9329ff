"""A button panel: reports presses; button 1 toggles the dome light through the hub (needs a
grant naming Vehicle.Cabin.Light.IsDomeOn)."""

from __future__ import annotations

from typing import Any

from anycar.accessories.sdk import Accessory

DOME = "Vehicle.Cabin.Light.IsDomeOn"


def behave(acc: Accessory) -> None:
    acc.values.update(PressCount=0, dome=False)

    async def press(button: str) -> dict[str, Any] | None:
        acc.values["PressCount"] += 1
        await acc.publish(LastPressed=button, PressCount=acc.values["PressCount"])
        if button == "B1":
            acc.values["dome"] = not acc.values["dome"]
            return await acc.actuate(DOME, acc.values["dome"])
        return None

    acc.press = press  # type: ignore[attr-defined]
