"""A Qi charger: charges a phone when enabled and a phone is on the pad."""

from __future__ import annotations

from anycar.accessories.sdk import Accessory


def behave(acc: Accessory) -> None:
    acc.values.update(IsChargingEnabled=True, phone_on_pad=True)

    @acc.on("IsChargingEnabled")
    async def enable(on: bool) -> None:
        acc.values["IsChargingEnabled"] = on

    @acc.every(1.0)
    async def report() -> None:
        charging = bool(acc.values["IsChargingEnabled"] and acc.values["phone_on_pad"] and acc.power == "on")
        await acc.publish(IsCharging=charging, PowerDelivered=7.5 if charging else 0.0)
