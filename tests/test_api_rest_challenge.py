"""A 401 from the REST API says how to authenticate (RFC 7235 §3.1, RFC 6750 §3), as VISS over
HTTP does: Bearer, and ``error="invalid_token"`` when a token was given but cannot be used."""

from __future__ import annotations

import httpx

from anycar.accessories.errors import PairingError
from anycar.api.auth import TokenMissing
from anycar.api.rest import challenge_headers
from apis_support import Keys, hub_config, running_hub


async def test_rest_401_carries_a_bearer_challenge_and_403_does_not(tmp_path) -> None:
    keys = Keys(tmp_path)
    async with running_hub(hub_config(keys.public_path)) as hub:
        base = f"http://127.0.0.1:{hub.http.port}/api/v1"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            missing = await http.get("/subscriptions")
            assert missing.status_code == 401
            assert missing.headers["WWW-Authenticate"] == 'Bearer realm="anycar"'
            bad = await http.get("/subscriptions", headers={"Authorization": "Bearer not-a-token"})
            assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
            expired = keys.token("read", ttl_s=-120)
            old = await http.get("/subscriptions", headers={"Authorization": f"Bearer {expired}"})
            assert old.status_code == 401
            assert "expired" in old.headers["WWW-Authenticate"], old.headers
            narrow = keys.token("read:Vehicle.Speed")
            denied = await http.get("/subscriptions", headers={"Authorization": f"Bearer {narrow}"})
            assert denied.status_code == 403 and "WWW-Authenticate" not in denied.headers


def test_a_401_that_is_not_about_the_token_names_the_scheme_alone() -> None:
    assert challenge_headers(PairingError("wrong pairing code")) == {
        "WWW-Authenticate": 'Bearer realm="anycar"'
    }
    assert challenge_headers(TokenMissing("no token")) == {"WWW-Authenticate": 'Bearer realm="anycar"'}
