"""A headrest speaker: volume, mute and spoken announcements."""

from __future__ import annotations

from anycar.accessories.sdk import Accessory, Refused


def behave(acc: Accessory) -> None:
    acc.values.update(Volume=30, IsMuted=False, spoken=[])

    @acc.on("Volume")
    async def volume(percent: int) -> None:
        acc.values["Volume"] = percent

    @acc.on("IsMuted")
    async def mute(on: bool) -> None:
        acc.values["IsMuted"] = on

    @acc.on("Announcement")
    async def announce(text: str) -> None:
        if acc.values["IsMuted"]:
            raise Refused("speaker is muted")
        acc.values["spoken"].append(text)
