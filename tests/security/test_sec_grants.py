"""Issue 9, finding 1: grants. Changing one needs Administer; what is given is compared with what
the granter holds as sets of signals, never as pattern text; nobody widens their own grant;
accessories never write safety-critical branches, whatever any grant says (the broker refuses);
every change is in the event log with who made it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sec_access_support import ABS, DOME, secured_hub

from anycar.accessories.sdk import HubError
from anycar.api.auth import Action
from anycar.api.viss.errors import VissError
from anycar.api.viss.messages import parse_object
from anycar.errors import AnycarError
from anycar.policy.privileges import Grant, Privilege


async def test_a_read_token_cannot_rewrite_an_accessorys_grant_nor_reach_abs(tmp_path: Path) -> None:
    """The chained attack: read:Vehicle.Speed rewrote a fitted accessory's grant, which then set ABS."""
    async with secured_hub(tmp_path) as s:
        asked: list[Any] = []
        s.hub.broker.register_provider("chassis", [ABS], on_actuate=lambda req: asked.append(req.value))
        panel, instance = await s.fit("button_panel")
        before = s.policy.grants.get(instance)
        reader = s.auth("read:Vehicle.Speed", subject="passenger-phone")
        for body in ({"privilege": "Administer"}, {}, {"privilege": "Administer", "actuates": [ABS]}):
            answer = await s.http.put(f"/api/v1/grants/{instance}", json=body, headers=reader)
            assert answer.status_code == 403, (body, answer.text)
            assert "Administer" in answer.json()["error"]["message"]
        assert s.policy.grants.get(instance) == before
        with pytest.raises(HubError) as refused:
            await panel.actuate(ABS, False)  # type: ignore[attr-defined]
        assert refused.value.code == 403 and asked == []


async def test_changing_a_grant_needs_the_admin_scope_and_privilege_is_checked(tmp_path: Path) -> None:
    async with secured_hub(tmp_path) as s:
        _, instance = await s.fit("button_panel")
        manager_token = s.auth("read actuate manage")
        body = {"privilege": "Operate", "actuates": [DOME]}
        answer = await s.http.put("/api/v1/grants/climate-app", json=body, headers=manager_token)
        assert answer.status_code == 403 and "needs Administer" in answer.json()["error"]["message"]
        owner = s.auth("read actuate admin", subject="owner")
        assert (await s.http.put("/api/v1/grants/climate-app", json=body, headers=owner)).status_code == 200
        # an accessory's grant stays an accessory's: at most Manage, never a safety-critical actuator
        lifted = await s.http.put(
            f"/api/v1/grants/{instance}", json={"privilege": "Administer"}, headers=owner
        )
        assert lifted.status_code == 403 and "at most Manage" in lifted.json()["error"]["message"]
        abs_grant = {"privilege": "Manage", "actuates": [ABS]}
        refused = await s.http.put(f"/api/v1/grants/{instance}", json=abs_grant, headers=owner)
        assert refused.status_code == 403 and "safety-critical" in refused.json()["error"]["message"]
        grant = s.policy.grants.get(instance)
        assert grant is not None and grant.kind == "accessory" and grant.privilege <= Privilege.MANAGE


async def test_a_grant_is_compared_with_the_granters_rights_as_sets_of_signals(tmp_path: Path) -> None:
    async with secured_hub(tmp_path) as s:
        # the shared mechanism: a token's scope asked about a pattern answers for its signals
        held = s.hub.authorizer.grants(s.auth("actuate:Vehicle.*")["Authorization"])
        assert held.allows(Action.ACTUATE, "Vehicle.Speed")
        assert not held.allows(Action.ACTUATE, "Vehicle.**")
        with pytest.raises(AnycarError) as wider:
            held.check(Action.ACTUATE, "Vehicle.**")
        assert wider.value.code == 403
        # Vehicle.* is the 26 leaves right under Vehicle; Vehicle.** is all 1,267 of them
        one_level = s.auth("actuate:Vehicle.* read:Vehicle.* admin")
        for field in ("actuates", "reads"):
            wide = await s.http.put("/api/v1/grants/app", json={field: ["Vehicle.**"]}, headers=one_level)
            assert wide.status_code == 403, (field, wide.text)
        lights = s.auth("actuate:Vehicle.Cabin.Light.* admin")
        answer = await s.http.put(
            "/api/v1/grants/app", json={"actuates": ["Vehicle.Cabin.Light.*"]}, headers=lights
        )
        assert answer.status_code == 200, answer.text
        # what a narrow granter gives is the signals it holds now, not a pattern that grows later
        stored = answer.json()["actuates"]
        assert DOME in stored and not any("*" in p for p in stored)
        # the same set written differently is no more than the granter holds
        branch = s.auth("actuate:Vehicle.Cabin.Light admin")
        same = await s.http.put(
            "/api/v1/grants/app", json={"actuates": ["Vehicle.Cabin.Light.**"]}, headers=branch
        )
        assert same.status_code == 200, same.text


async def test_an_app_cannot_widen_its_own_grant(tmp_path: Path) -> None:
    async with secured_hub(tmp_path) as s:
        s.policy.grant_app("nav-app", Privilege.VIEW, reads=["Vehicle.Speed", "Vehicle.CurrentLocation"])
        itself = s.auth("read actuate", subject="nav-app")  # narrowing one's own grant needs no admin
        for body in (
            {"privilege": "Administer", "reads": ["Vehicle.Speed"]},
            {"privilege": "Operate", "reads": ["Vehicle.Speed"], "actuates": [DOME]},
            {"privilege": "View", "reads": ["Vehicle.Speed", "Vehicle.Cabin"]},
        ):
            widened = await s.http.put("/api/v1/grants/nav-app", json=body, headers=itself)
            assert widened.status_code == 403 and "own" in widened.json()["error"]["message"], body
        narrowed = await s.http.put(
            "/api/v1/grants/nav-app", json={"privilege": "View", "reads": ["Vehicle.Speed"]}, headers=itself
        )
        assert narrowed.status_code == 200 and narrowed.json()["reads"] == ["Vehicle.Speed"]


async def test_every_grant_change_is_in_the_event_log_with_who_made_it(tmp_path: Path) -> None:
    async with secured_hub(tmp_path) as s:
        owner = s.auth("read actuate admin", subject="owner")
        body = {"privilege": "Operate", "reads": ["Vehicle.Speed"], "actuates": [DOME]}
        assert (await s.http.put("/api/v1/grants/climate-app", json=body, headers=owner)).status_code == 200
        (change,) = s.policy.events.history(kind="grant_changed", subject="climate-app")
        assert change.data["by"] == "owner" and change.data["before"] is None
        assert change.data["after"]["actuates"] == [DOME]
        stranger = s.auth("read", subject="stranger")
        assert (await s.http.put("/api/v1/grants/climate-app", json={}, headers=stranger)).status_code == 403
        refusals = s.policy.events.history(kind="refusal", subject="climate-app")
        assert any(e.data.get("by") == "stranger" for e in refusals)
        s.policy.grant_app("climate-app", Privilege.VIEW, reads=["Vehicle.Speed"], by="installer")
        last = s.policy.events.history(kind="grant_changed", subject="climate-app")[-1]
        assert last.data["by"] == "installer" and last.data["before"]["privilege"] == "Operate"


async def test_no_grant_lets_an_accessory_write_a_safety_critical_signal(tmp_path: Path) -> None:
    """Enforced at the broker, so it holds for the accessory protocol and every API alike."""
    async with secured_hub(tmp_path) as s:
        asked: list[Any] = []
        s.hub.broker.register_provider("chassis", [ABS], on_actuate=lambda req: asked.append(req.value))
        panel, instance = await s.fit("button_panel")
        # whatever the grant store says (a widened grant, a corrupted row): the broker still refuses
        s.policy.grant(Grant(instance, "app", Privilege.ADMINISTER, ("Vehicle",), ("Vehicle",)))
        with pytest.raises(HubError, match="safety-critical") as refused:
            await panel.actuate(ABS, False)  # type: ignore[attr-defined]
        assert refused.value.code == 403
        with pytest.raises(AnycarError, match="safety-critical") as direct:
            await s.hub.broker.actuate(ABS, False, requester=f"accessory:{instance}")
        assert direct.value.code == 403
        with pytest.raises(AnycarError, match="safety-critical"):
            s.hub.broker.register_provider(f"accessory:{instance}-2", ["Vehicle.Chassis.Brake.PedalPosition"])
        # a token whose subject is the accessory, through VISS
        s.policy.grant(Grant(instance, "accessory", Privilege.OPERATE, owns=(), actuates=(DOME,)))
        token = s.keys.token("actuate", subject=instance)
        request = parse_object({"action": "set", "path": ABS, "value": "false", "requestId": "1"})
        with pytest.raises(VissError) as viss_refused:
            await s.hub.viss.set(request, token)
        assert viss_refused.value.number == 403
        assert asked == []
        assert any("safety-critical" in e.message for e in s.policy.events.history(kind="refusal"))
