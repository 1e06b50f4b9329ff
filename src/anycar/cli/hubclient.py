"""Talking to a running hub's REST API from the command line, with errors a person can act on."""

from __future__ import annotations

import os
from typing import Any

import httpx

from anycar.errors import AnycarError

DEFAULT_HUB = "http://127.0.0.1:8080"


class HubUnreachable(AnycarError):
    code = 503
    reason = "unavailable"


class HubRefused(AnycarError):
    """The hub answered with an error; the message is the hub's own."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"the hub refused ({status} {reason}): {message}")
        self.status = status
        self.hub_reason = reason


def hub_url(given: str | None) -> str:
    return (given or os.environ.get("ANYCAR_HUB") or DEFAULT_HUB).rstrip("/")


def call(
    method: str, hub: str, path: str, body: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    """One request to the hub at ``hub``; the JSON answer, or ``HubRefused``/``HubUnreachable``."""
    token = token or os.environ.get("ANYCAR_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(method, hub + path, json=body, headers=headers, timeout=10.0)
    except httpx.HTTPError as exc:
        raise HubUnreachable(
            f"no hub answers at {hub} ({exc.__class__.__name__}); start one with `anycar demo` "
            "or give its address with --hub (or $ANYCAR_HUB)"
        ) from None
    try:
        data = response.json()
    except ValueError:
        raise HubRefused(response.status_code, "not_json", response.text[:200]) from None
    if response.status_code >= 400:
        err = data.get("error", {}) if isinstance(data, dict) else {}
        raise HubRefused(response.status_code, str(err.get("reason", "")), str(err.get("message", data)))
    if not isinstance(data, dict):
        raise HubRefused(response.status_code, "unexpected", f"expected a JSON object, got {data!r}"[:200])
    return data
