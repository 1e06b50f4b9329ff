"""A dial gauge: shows the traction battery's charge (it reads it from the hub) until told to
show another value."""

from __future__ import annotations

from typing import Any

from anycar.accessories.sdk import Accessory

SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"


def behave(acc: Accessory) -> None:
    acc.values.update(Label="Battery %", follow=True)

    @acc.on("Value")
    async def show(value: float) -> None:
        acc.values["follow"] = False

    async def on_soc(values: list[dict[str, Any]]) -> None:
        if acc.values["follow"] and values[-1]["value"] is not None:
            await acc.publish(Value=float(values[-1]["value"]), Label=acc.values["Label"])

    @acc.on_running
    async def follow() -> None:
        await acc.subscribe([SOC], on_soc)
