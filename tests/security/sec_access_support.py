"""Shared set-up for the access-control security tests: a real hub (REST, VISS, gRPC on free
loopback ports) with a token key and the cabin (policy, accessories), and one fitted accessory."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization

from anycar.accessories import signing
from anycar.accessories.demo import fit_virtual_fleet
from anycar.accessories.sdk import Accessory
from anycar.hub import Hub, HubConfig
from anycar.hub.assemble import HubParts, build_hub
from anycar.hub.cabin import CabinComponent
from anycar.policy import PolicyEngine
from apis_support import Keys

ABS = "Vehicle.ADAS.ABS.IsEnabled"  # an actuator in a safety-critical branch (Vehicle.ADAS)
DOME = "Vehicle.Cabin.Light.IsDomeOn"


@dataclass
class Secured:
    hub: Hub
    keys: Keys
    cabin: CabinComponent
    http: httpx.AsyncClient
    started: list[Accessory]

    @property
    def policy(self) -> PolicyEngine:
        assert self.cabin.policy is not None
        return self.cabin.policy

    def auth(self, scope: str, subject: str = "tester") -> dict[str, str]:
        return {"Authorization": "Bearer " + raw_token(self.keys, scope, subject=subject)}

    async def fit(self, name: str = "button_panel") -> tuple[Accessory, str]:
        """Fit one virtual accessory; returns it and its instance name."""
        assert self.cabin.manager is not None
        before = set(self.cabin.manager.fitted)
        fitted = await fit_virtual_fleet(self.cabin.manager, signing.generate_key(), names=[name])
        assert fitted, f"no mount of the test car fits {name}"
        self.started.extend(fitted)
        (instance,) = set(self.cabin.manager.fitted) - before
        return fitted[0], instance


def raw_token(keys: Keys, scope: Any, *, subject: str = "tester", **claims: Any) -> str:
    """A signed token with exactly these claims: not checked by ``mint``, so a test can send what
    an attacker or an older issuer would (the hub alone decides what it accepts)."""
    now = int(time.time())
    body: dict[str, Any] = {"sub": subject, "scope": scope, "iat": now, "exp": now + 600} | claims
    key = serialization.load_pem_private_key(keys.private, password=None)
    return jwt.encode(body, key, algorithm="RS256")  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def secured_hub(tmp_path: Path, brand: str = "byd_seal") -> AsyncIterator[Secured]:
    keys = Keys(tmp_path)
    config = HubConfig()
    config.ports = dict.fromkeys(config.ports, 0)
    config.token_public_key = keys.public_path
    parts = HubParts(brand=brand, db_path=tmp_path / "hub.sqlite3", dashboard=False)
    async with build_hub(config, parts) as hub:
        cabin = next(c for c in hub.components if isinstance(c, CabinComponent))
        async with httpx.AsyncClient(base_url=hub.endpoints()["http"], timeout=10) as http:
            secured = Secured(hub, keys, cabin, http, [])
            try:
                yield secured
            finally:
                for acc in secured.started:
                    await acc.stop()
