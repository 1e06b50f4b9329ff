"""A command carries exactly one action: the wire's rule, the schema and COMMAND_ACTIONS agree;
on a hub (real Mosquitto), an action nobody here can carry out is refused with why, a handler
registered for an action answers for it, and a handler's bug is answered, not a crash."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from anycar.uplink.commands import Outcome
from anycar.wire import Channel, WireError, encode, schema, signature
from anycar.wire import messages as msg
from anycar.wire.firmware import newer, version_key
from test_uplink_downlink import FLEET, Listener, make_hub, results
from uplink_support import send_down, unique_vehicle

pytestmark = pytest.mark.timeout(60)
SIG = {"algorithm": "Ed25519", "key_id": "0" * 16, "value": "A" * 88}


def doc(**actions: Any) -> dict[str, Any]:
    now = time.time()
    out = msg.command_of("PM-0001", "c-1", "scene", {"id": "x"}, ts=now, expires=now + 5)
    del out["scene"]
    return {**out, **actions, "signature": SIG}


def test_exactly_one_action_and_the_list_matches_the_schema() -> None:
    assert schema.check_message(doc(scene={"id": "cool_cargo"})) == "command"
    assert schema.command_action(doc(fleet_event={"type": "delivery_assigned"})) == "fleet_event"
    with pytest.raises(WireError, match=r"exactly one action .* got actuate, scene"):
        schema.check_message(doc(scene={"id": "a"}, actuate={"Vehicle.Speed": 1}))
    with pytest.raises(WireError, match="got none"):
        schema.check_message(doc())
    with pytest.raises(WireError, match="'teleport' was unexpected"):
        schema.check_message(doc(teleport={"stops": []}))  # an action this version does not know
    with pytest.raises(WireError, match=r"route: .*\"plan\" is a required property"):
        schema.check_message(doc(route={"stops": []}))  # delivery-exec: route is known, and checked
    with pytest.raises(WireError, match="scene"):
        schema.check_message(doc(scene={"id": "Not An Id"}))
    command = schema.schema_files()["command.v1.schema.json"]
    own = set(command["properties"]) - {"kind", "id", "expires", "signature"}
    assert own == set(schema.COMMAND_ACTIONS) and set(command["$defs"]) >= own


def test_versions_order_as_semver() -> None:
    ordered = [
        "0.9.0",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0",
        "1.0.1",
        "1.10.0",
    ]
    assert sorted(ordered, key=version_key) == ordered
    assert newer("1.0.0", "1.0.0-rc.1") and not newer("1.0.0+build.5", "1.0.0")
    with pytest.raises(WireError, match="not a semantic version"):
        version_key("v1")


def command(vehicle: str, cid: str, action: str, body: Any) -> bytes:
    now = time.time()
    return encode(
        signature.sign(msg.command_of(vehicle, cid, action, body, ts=now, expires=now + 30), FLEET), "json"
    )


async def test_a_hub_answers_each_action_by_who_carries_it_out(tmp_path: Path) -> None:
    vehicle = unique_vehicle()
    async with Listener(vehicle) as fleet:
        hub, uplink, _ = await make_hub(tmp_path, vehicle)
        try:
            assert uplink.commands is not None
            # this bare hub has no automations and no accessory server
            for cid, action, body in (
                ("s-1", "scene", {"id": "cool_cargo"}),
                ("e-1", "fleet_event", {"type": "delivery_assigned"}),
                (
                    "f-1",
                    "firmware",
                    {
                        "accessory": "Cooler1",
                        "release": {
                            "vendor_id": 1,
                            "product_id": 1,
                            "version": "1.0.0",
                            "size": 1,
                            "sha256": "0" * 64,
                            "signature": SIG,
                        },
                        "url": "http://127.0.0.1:9/x.bin",
                    },
                ),
            ):
                await send_down(1883, vehicle, Channel.COMMANDS, command(vehicle, cid, action, body))
            await fleet.wait_for(lambda: {"s-1", "e-1", "f-1"} <= set(results(fleet)))
            got = {cid: rs[0] for cid, rs in results(fleet).items()}
            assert (got["s-1"]["status"], got["s-1"]["action"]) == ("refused", "scene")
            assert "runs no automations" in got["s-1"]["reason"]
            assert "runs no automations" in got["e-1"]["reason"]
            assert "no accessory server" in got["f-1"]["reason"]

            # a room registers its handler: it answers; a bug in it is answered too
            seen: list[tuple[str, Any]] = []

            async def apply(cid: str, body: Any) -> Outcome:
                seen.append((cid, body))
                return Outcome(
                    "partial",
                    "one light is out",
                    [{"path": "Vehicle.Body.Horn.IsActive", "status": "accepted"}],
                )

            async def broken(cid: str, body: Any) -> Outcome:
                raise KeyError("oops")

            uplink.commands.register("scene", apply)
            uplink.commands.register("fleet_event", broken)
            await send_down(
                1883, vehicle, Channel.COMMANDS, command(vehicle, "s-2", "scene", {"id": "cool_cargo"})
            )
            await send_down(
                1883, vehicle, Channel.COMMANDS, command(vehicle, "e-2", "fleet_event", {"type": "x"})
            )
            await fleet.wait_for(lambda: {"s-2", "e-2"} <= set(results(fleet)))
            got = {cid: rs[0] for cid, rs in results(fleet).items()}
            assert seen == [("s-2", {"id": "cool_cargo"})]
            assert (got["s-2"]["status"], got["s-2"]["reason"]) == ("partial", "one light is out")
            assert got["e-2"]["status"] == "rejected" and "KeyError" in got["e-2"]["reason"]
            assert uplink.status()["commands"]["refused"] == 3
        finally:
            await hub.stop()
