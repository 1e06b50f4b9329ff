"""A cargo-bed sensor module (PICKMAN deliveries): door contact, temperature and load cell;
the demo opens the door and loads parcels with ``open_door`` and ``load``."""

from __future__ import annotations

from anycar.accessories.sdk import Accessory


def behave(acc: Accessory) -> None:
    acc.values.update(IsOpen=False, Temperature=8.0, Weight=0.0)

    async def open_door(is_open: bool) -> None:
        await acc.publish(IsOpen=is_open)

    async def load(kg: float) -> None:
        acc.values["Weight"] = max(0.0, acc.values["Weight"] + kg)
        await acc.publish(Weight=round(acc.values["Weight"], 2))

    @acc.every(2.0)
    async def report() -> None:
        await acc.publish(
            IsOpen=acc.values["IsOpen"], Temperature=acc.values["Temperature"], Weight=acc.values["Weight"]
        )

    acc.open_door = open_door  # type: ignore[attr-defined]
    acc.load = load  # type: ignore[attr-defined]
