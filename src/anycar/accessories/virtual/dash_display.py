"""A small display: shows text, media or video, and obeys the restrictions the hub sends
(stops video and hides its keyboard in the driver's view while moving)."""

from __future__ import annotations

from anycar.accessories.sdk import Accessory, Refused


def behave(acc: Accessory) -> None:
    acc.values.update(IsOn=True, ContentType="NONE", Brightness=70, Text="")

    @acc.on("ContentType")
    async def show(kind: str) -> None:
        if kind == "VIDEO" and "NO_VIDEO" in acc.restrictions:
            raise Refused("video is not allowed now")  # the hub refuses first; belt and braces
        acc.values["ContentType"] = kind

    @acc.on("Text")
    async def text(value: str) -> None:
        limit = acc.max_string_length
        if "LIMIT_STRING_LENGTH" in acc.restrictions and limit is not None and len(value) > limit:
            raise Refused(f"text longer than {limit} characters")

    @acc.on_restrictions
    async def obey(restrictions: list[str], state: str) -> None:
        if "NO_VIDEO" in restrictions and acc.values.get("ContentType") == "VIDEO":
            await acc.publish(ContentType="NONE")
        acc.values["keyboard_visible"] = "NO_KEYBOARD" not in restrictions

    async def type_text(text: str) -> None:
        await acc.publish_checked(KeyboardInput=text)

    acc.type_text = type_text  # type: ignore[attr-defined]
