"""A fragrance diffuser: its cartridge empties while it runs."""

from __future__ import annotations

from anycar.accessories.sdk import Accessory, Refused


def behave(acc: Accessory) -> None:
    acc.values.update(IsOn=False, Intensity=40, CartridgeLevel=100)

    @acc.on("IsOn")
    async def switch(on: bool) -> None:
        if on and acc.values["CartridgeLevel"] == 0:
            raise Refused("cartridge is empty")
        acc.values["IsOn"] = on

    @acc.every(2.0)
    async def report() -> None:
        if acc.values["IsOn"] and acc.power == "on":
            acc.values["CartridgeLevel"] = max(0, acc.values["CartridgeLevel"] - 1)
        await acc.publish(CartridgeLevel=acc.values["CartridgeLevel"])
