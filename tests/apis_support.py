"""Shared helpers for the API and hub tests: a real hub on loopback with free ports, dev keys."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from kuksa.val.v2 import val_pb2_grpc

from anycar.api.auth import generate_keypair, mint
from anycar.hub import Hub, HubConfig

FREE_PORTS = {"grpc": 0, "viss": 0, "http": 0}


def hub_config(public_key: Path | None = None, **limits: float) -> HubConfig:
    cfg = HubConfig(ports=dict(FREE_PORTS), token_public_key=public_key)
    if limits:
        from anycar.api.viss import VissLimits

        cfg.limits = VissLimits(**limits)  # type: ignore[arg-type]
    return cfg


@contextlib.asynccontextmanager
async def running_hub(config: HubConfig | None = None) -> AsyncIterator[Hub]:
    hub = Hub(config or hub_config())
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


class Keys:
    """A development key pair on disk and a way to mint tokens with it."""

    def __init__(self, folder: Path, algorithm: str = "RS256") -> None:
        self.private, public = generate_keypair(algorithm)
        self.public_path = folder / f"{algorithm}.pub"
        self.public_path.write_bytes(public)

    def token(self, scope: str, ttl_s: float = 600, **kw: object) -> str:
        return mint(self.private, scope, ttl_s=ttl_s, **kw)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def grpc_stub(hub: Hub, token: str | None = None) -> AsyncIterator[tuple[Any, Any]]:
    """A kuksa.val.v2 stub on its own connection (as a separate client process would have) and
    the call metadata that carries ``token``."""
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{hub.grpc.port}", options=[("grpc.use_local_subchannel_pool", 1)]
    )
    try:
        metadata = (("authorization", f"Bearer {token}"),) if token else None
        yield val_pb2_grpc.VALStub(channel), metadata
    finally:
        await channel.close()
