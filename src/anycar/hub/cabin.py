"""The cabin as a hub component: accessories and policy at the car's mount points, and the
REST views the dashboard and fleet tools read (vehicle, accessories, driving state, events).

Controls and readings are derived from each accessory's bound signals, so a new accessory shows
up in the dashboard without any code: boolean actuator -> switch, number -> range, string with
``allowed`` -> select, ``...Color`` string -> colour; sensors are readings.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from anycar.accessories.demo import fit_virtual_fleet, virtual_vendor_key
from anycar.accessories.manager import AccessoryManager, Fitted
from anycar.accessories.mounts import MountPlan, load_mounts
from anycar.accessories.sdk import Accessory
from anycar.accessories.virtual import demo_fit
from anycar.api.auth import Action
from anycar.api.bodies import read_json_object
from anycar.api.rest import API_PREFIX, RouteGroup, caller_grants, ok_responses, path_parameter, require
from anycar.brands import BrandProfile
from anycar.errors import ConfigError
from anycar.hub.pairing import pairing_group
from anycar.hub.revocation import revocation_group
from anycar.model import NodeType, Signal
from anycar.model.datatypes import INTEGER_RANGES, is_numeric
from anycar.policy import PolicyEngine
from anycar.policy.privileges import Privilege

if TYPE_CHECKING:
    from anycar.hub.hub import Hub

GRANT_BODY_BYTES = 64 * 1024  # a grant lists patterns, not data

# The policy's event kinds, as the dashboard's Activity panel names them.
EVENT_KINDS = {
    "shed": "shed",
    "restore": "restored",
    "available": "restored",
    "refusal": "refused",
    "fit_refused": "refused",
    "attestation_failed": "refused",
    "pairing_failed": "refused",
    "locked_out": "refused",
    "rate_limited": "refused",
    "restriction": "restricted",
    "driving_state": "restricted",
    "commissioned": "fitted",
    "fitted": "fitted",
    "removed": "removed",
    "unavailable": "unavailable",
    "trust_added": "trust",
    "trust_revoked": "trust",
    "grant_changed": "trust",
    "courtesy": "courtesy",  # a courtesy-lighting window opened (policy.courtesy), not a restore
    "automation_notify": "automation",
    "automation_loop": "refused",
    "automation_rate_limited": "refused",
    "firmware_update": "fitted",
    "firmware_updated": "fitted",
    "firmware_failed": "refused",
}


class CabinComponent:
    """Mount points, the accessory server, the policy engine; optionally the virtual fleet."""

    name = "cabin"

    def __init__(
        self,
        profile: BrandProfile,
        db_path: str | Path,
        *,
        accessory_port: int = 0,
        virtual_fleet: bool = False,
    ) -> None:
        self.profile = profile
        self.db_path = Path(db_path)
        self.accessory_port = accessory_port
        self.virtual_fleet = virtual_fleet
        self.plan: MountPlan = load_mounts(profile.directory)
        self.policy: PolicyEngine | None = None
        self.manager: AccessoryManager | None = None
        self.virtual: list[Accessory] = []

    async def start(self, hub: Hub) -> None:
        broker = hub.broker
        self.policy = PolicyEngine(
            broker,
            db_path=self.db_path,
            driving=self.plan.driving,
            power=self.plan.power,
            supervisor=hub.supervisor,
            clock=hub.clock,
        )
        await self.policy.start()
        # Apps with a grant of their own are held to it on every API, on top of their token.
        hub.authorizer.second_opinion = self.policy.app_opinion
        hub.authorizer.narrowed = self.policy.has_app_grant
        self.manager = AccessoryManager(
            broker,
            self.db_path,
            self.plan,
            policy=self.policy,
            host=hub.config.host,
            port=self.accessory_port,
        )
        await self.manager.start()
        if not any(g.name == "revocation" for g in hub.rest.groups):
            hub.add_rest_group(revocation_group(lambda: self.manager))
        if not any(g.name == "cabin" for g in hub.rest.groups):  # a restarted hub keeps its routes
            hub.add_rest_group(self.rest_group())
        if not any(g.name == "pairing" for g in hub.rest.groups):
            hub.add_rest_group(pairing_group(lambda: self.manager))
        if self.virtual_fleet:
            self.virtual = await fit_virtual_fleet(
                self.manager, virtual_vendor_key(self.db_path), names=demo_fit(self.profile.id)
            )

    def endpoints(self) -> dict[str, str]:
        return {"accessories": self.manager.url} if self.manager is not None else {}

    def accessory_draw_w(self) -> float:
        """What the fitted accessories draw from the 12 V system now (W); 0 before the start."""
        return sum(self.manager.draws_w().values()) if self.manager is not None else 0.0

    async def stop(self) -> None:
        for acc in self.virtual:
            await acc.stop()
        self.virtual = []
        if self.manager is not None:
            await self.manager.stop()
        if self.policy is not None:
            await self.policy.stop()
            self.policy.close()

    # -- views --------------------------------------------------------------------------------
    def vehicle(self) -> dict[str, Any]:
        assert self.manager is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
        board = self.manager.board
        fitted_at = {f.mount.id: f for f in self.manager.fitted.values()}
        rails = [
            {
                "id": r.id,
                "name": r.description or f"{r.voltage_v:g} V rail",
                "budget_w": r.budget_w,
                "used_w": round(sum(self._now_w(f) for f in fitted_at.values() if f.mount.rail == r.id), 2),
                "reserved_w": round(board.rail_used(r.id), 2),
            }
            for r in self.plan.rails.values()
        ]
        mounts = []
        for m in self.plan.mounts.values():
            f = fitted_at.get(m.id)
            loc = m.location
            mounts.append(
                {
                    "id": m.id,
                    "name": m.description or m.id,
                    "type": m.type,
                    "location": ".".join(str(loc[k]) for k in ("row", "side") if k in loc)
                    or str(loc.get("zone", "")),
                    "where": _where(loc),
                    "rail": m.rail,
                    "budget_w": m.max_w,
                    "fitted": None
                    if f is None
                    else {
                        "accessory": f.instance,
                        "name": f.manifest.product_name,
                        "trait": f.manifest.traits[0].id if f.manifest.traits else "",
                        "watts": self._now_w(f),
                    },
                }
            )
        p = self.profile
        return {
            "id": p.id,
            "brand": p.brand,
            "model": p.model,
            "name": p.title,
            "reference": p.reference,
            "body": p.body,
            "rails": rails,
            "mounts": mounts,
        }

    def _now_w(self, f: Fitted) -> float:
        """What the accessory draws now: none when shed or gone; standby when its main switch is
        off (or its speed or level is 0); typical when on, or when it has not said (its manifest)."""
        state = _state(f)
        if state in ("shed", "unavailable"):
            return 0.0
        assert self.manager is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
        power = f.manifest.power
        names = {local.rsplit(".", 1)[-1]: path for local, path in f.binding.paths.items()}
        for wanted in (*_SWITCHES, *_LEVELS):
            path = names.get(wanted)
            if path is None:
                continue
            dp = self.manager.broker.get(path)
            if dp is None or dp.value is None:
                break
            return float(power.standby_w if not dp.value else power.typical_w)
        return float(power.typical_w)

    def accessories(self) -> dict[str, Any]:
        assert self.manager is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
        catalog = self.manager.broker.catalog
        out = []
        for f in self.manager.fitted.values():
            controls, readings = [], []
            for local, path in f.binding.paths.items():
                sig = catalog.find(path)
                if sig is None or path == f.binding.status_path:
                    continue
                if sig.type is NodeType.ACTUATOR and (control := _control(sig, local)) is not None:
                    controls.append(control)
                elif sig.type is not NodeType.ACTUATOR:
                    readings.append(
                        {"path": path, "label": _label(local), **({"unit": sig.unit} if sig.unit else {})}
                    )
            power = f.manifest.power
            load = f.load
            out.append(
                {
                    "id": f.instance,
                    "name": f.manifest.product_name,
                    "vendor": str(f.manifest.data.get("vendor_name", "")),
                    "model": str(f.manifest.data.get("model", "")),
                    "trait": f.manifest.traits[0].id if f.manifest.traits else "",
                    "mount": f.mount.id,
                    "mount_name": f.mount.description or f.mount.id,
                    "state": _state(f),
                    "priority": load.priority.label if load is not None else f.manifest.priority.label,
                    "power": {
                        "standby_w": power.standby_w,
                        "typical_w": power.typical_w,
                        "peak_w": power.peak_w,
                        "now_w": self._now_w(f),
                    },
                    "controls": controls,
                    "readings": readings,
                    "restricted": sorted(load.restrictions) if load is not None else [],
                }
            )
        return {"accessories": out}

    def driving_state(self) -> dict[str, Any]:
        assert self.policy is not None and self.manager is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
        status = self.policy.status()
        names = {f.instance: f.manifest.product_name for f in self.manager.fitted.values()}
        affected = [
            {
                "accessory": load["name"],
                "name": names.get(load["name"], load["name"]),
                "restrictions": load["restrictions"],
            }
            for load in status["loads"]
            if load["restrictions"]
        ]
        return {
            "state": status["driving_state"],
            "restrictions": status["restrictions"],
            "affected": affected,
        }

    def events(self, limit: int) -> dict[str, Any]:
        assert self.policy is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
        recent = self.policy.events.recent(limit=limit)
        out = []
        for e in reversed(recent):
            out.append(
                {
                    "ts": dt.datetime.fromtimestamp(e.ts, dt.UTC)
                    .isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
                    "kind": EVENT_KINDS.get(e.kind, "error"),
                    "event": e.kind,
                    "accessory": e.subject,
                    "message": e.message,
                }
            )
        return {"events": out}

    def rest_group(self) -> RouteGroup:
        """``/api/vehicle``, ``/api/accessories``, ``/api/driving-state``, ``/api/events``."""

        async def vehicle(request: Request) -> JSONResponse:
            require(request, Action.READ)
            return JSONResponse(self.vehicle())

        async def accessories(request: Request) -> JSONResponse:
            require(request, Action.READ)
            return JSONResponse(self.accessories())

        async def driving(request: Request) -> JSONResponse:
            require(request, Action.READ)
            return JSONResponse(self.driving_state())

        async def events(request: Request) -> JSONResponse:
            require(request, Action.READ)
            try:
                limit = max(1, min(500, int(request.query_params.get("limit", "50"))))
            except ValueError:
                return JSONResponse(
                    {"error": {"code": 400, "reason": "bad_request", "message": "limit must be an integer"}},
                    status_code=400,
                )
            return JSONResponse(self.events(limit))

        async def grants(request: Request) -> JSONResponse:
            require(request, Action.READ)
            assert self.policy is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
            return JSONResponse({"grants": [g.to_dict() for g in self.policy.grants.all()]})

        async def grant_app(request: Request) -> JSONResponse:
            assert self.policy is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
            # Who asks comes first: no body is read for a caller without a valid token.
            held = caller_grants(request)
            body = await read_json_object(request, GRANT_BODY_BYTES)
            grant = self.policy.change_grant(
                held,
                held.privilege,
                request.path_params["app"],
                Privilege.parse(body.get("privilege", "Operate")),
                reads=_patterns(body, "reads"),
                actuates=_patterns(body, "actuates"),
            )
            return JSONResponse(grant.to_dict())

        p = API_PREFIX
        described = {
            "vehicle": "The brand profile, supply rails and mount points with what is fitted and its watts",
            "accessories": "Fitted accessories with state, power, and the controls and readings of their signals",
            "driving-state": "Parked, idling or moving, and the UX restrictions in force",
            "events": "Recent fits, refusals, sheds, restores and restrictions, newest first",
            "grants": "What each accessory and app may read and actuate, and its privilege",
        }
        return RouteGroup(
            name="cabin",
            description="The vehicle's mount points, its accessories, the driving state and the policy's decisions.",
            routes=[
                Route(f"{p}/vehicle", vehicle, methods=["GET"]),
                Route(f"{p}/accessories", accessories, methods=["GET"]),
                Route(f"{p}/driving-state", driving, methods=["GET"]),
                Route(f"{p}/events", events, methods=["GET"]),
                Route(f"{p}/grants", grants, methods=["GET"]),
                Route(f"{p}/grants/{{app}}", grant_app, methods=["PUT"]),
            ],
            paths={
                f"{p}/{name}": {"get": {"tags": ["cabin"], "summary": text, "responses": ok_responses(text)}}
                for name, text in described.items()
            }
            | {
                f"{p}/events": {
                    "get": {
                        "tags": ["cabin"],
                        "summary": described["events"],
                        "parameters": [
                            {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 50}}
                        ],
                        "responses": ok_responses(described["events"], errors=(400,)),
                    }
                },
                f"{p}/grants/{{app}}": {
                    "put": {
                        "tags": ["cabin"],
                        "parameters": [path_parameter("app", "the app's subject (the token's 'sub')")],
                        "summary": "Set a subject's privilege and the paths it may read and actuate: "
                        "needs the 'admin' scope, never more than the caller holds (compared as sets "
                        "of signals), never a widening of the caller's own grant",
                        "requestBody": {
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "privilege": {
                                                "enum": ["View", "Operate", "Manage", "Administer"]
                                            },
                                            "reads": {"type": "array", "items": {"type": "string"}},
                                            "actuates": {"type": "array", "items": {"type": "string"}},
                                        },
                                    }
                                }
                            }
                        },
                        "responses": ok_responses("the grant as stored", errors=(400, 404)),
                    }
                },
            },
        )


def _patterns(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"field {key!r} must be a list of VSS paths or patterns")
    return value


def _state(f: Fitted) -> str:
    if f.silent or f.status in ("UNAVAILABLE", "REMOVED"):
        return "unavailable"
    if f.load is not None and f.load.shed:
        return "shed"
    if f.load is not None and f.load.restrictions:
        return "restricted"
    return "running"


# An accessory's main switch, by local name, in the order they are looked for.
_SWITCHES = ("IsOn", "IsLightOn", "IsEnabled", "IsActive", "IsRecording", "IsPlaying", "IsChargingEnabled")
_LEVELS = ("FanSpeed", "Intensity", "Volume", "Level")


def _where(loc: dict[str, Any]) -> str:
    """``{row: 1, side: DriverSide, zone: dashboard}`` -> ``dashboard, row 1, driver side``."""
    side = str(loc.get("side", ""))
    words = "".join(f" {c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(side)).strip()
    parts = [str(loc.get("zone", "")).replace("_", " "), f"row {loc['row']}" if "row" in loc else "", words]
    return ", ".join(p for p in parts if p)


def _label(local: str) -> str:
    """``IsLightOn`` -> ``Light on``: a control's name as a person reads it."""
    name = local.rsplit(".", 1)[-1]
    if name.startswith("Is") and name[2:3].isupper():
        name = name[2:]
    out = "".join(f" {c.lower()}" if c.isupper() and i else c for i, c in enumerate(name))
    return out.replace("is ", "").strip().capitalize() or name


def _control(sig: Signal, local: str) -> dict[str, Any] | None:
    base: dict[str, Any] = {"path": sig.path, "label": _label(local)}
    if sig.datatype == "boolean":
        return {**base, "kind": "switch"}
    if sig.datatype == "string" and sig.allowed:
        return {**base, "kind": "select", "options": [str(a) for a in sig.allowed]}
    if sig.datatype == "string" and sig.name.lower().endswith(("color", "colour")):
        return {**base, "kind": "color"}
    if is_numeric(sig.datatype) and not sig.datatype.endswith("[]"):
        lo, hi = sig.min, sig.max
        if sig.datatype in INTEGER_RANGES:
            rlo, rhi = INTEGER_RANGES[sig.datatype]
            lo = rlo if lo is None else lo
            hi = min(rhi, 1000) if hi is None else hi
        lo = 0 if lo is None else lo
        hi = 100 if hi is None else hi
        step = 1 if sig.datatype in INTEGER_RANGES else 0.5
        return {
            **base,
            "kind": "range",
            "min": lo,
            "max": hi,
            "step": step,
            **({"unit": sig.unit} if sig.unit else {}),
        }
    return None
