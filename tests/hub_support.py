"""A real hub on its own thread and event loop, for tests whose driver (Playwright's sync API)
keeps the main thread's loop busy."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from anycar.hub import Hub, HubConfig
from anycar.hub.assemble import HubParts, build_hub

# `anycar hub` / `anycar demo` on free ports: the defaults may be taken on a shared machine
FREE_PORTS = ["--grpc-port", "0", "--viss-port", "0", "--http-port", "0", "--accessory-port", "0"]


@contextlib.contextmanager
def running_hub(
    tmp_path: Path,
    *,
    brand: str = "kaiyun_pickman",
    speedup: float = 4.0,
    seed: int = 1,
    config: HubConfig | None = None,
    simulate: bool = True,
    automations: list[Path] | None = None,
) -> Iterator[Hub]:
    """The demo's hub (simulator, virtual accessories, every API, dashboard) on free ports."""
    if config is None:
        config = HubConfig()
    config.ports = dict.fromkeys(config.ports, 0)
    parts = HubParts(
        brand=brand,
        db_path=tmp_path / "hub.sqlite3",
        virtual_fleet=True,
        simulate=simulate,
        automations=automations,
        seed=seed,
        speedup=speedup,
    )
    hub = build_hub(config, parts)
    ready = threading.Event()
    failure: list[BaseException] = []
    loop_box: list[asyncio.AbstractEventLoop] = []
    stop_box: list[asyncio.Event] = []

    async def main() -> None:
        stop = asyncio.Event()
        stop_box.append(stop)
        loop_box.append(asyncio.get_running_loop())
        try:
            await hub.start()
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            return
        ready.set()
        try:
            await stop.wait()
        finally:
            await hub.stop()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="test-hub", daemon=True)
    thread.start()
    if not ready.wait(60):
        raise RuntimeError("the hub did not start within 60 s")
    if failure:
        raise failure[0]
    try:
        yield hub
    finally:
        loop_box[0].call_soon_threadsafe(stop_box[0].set)
        thread.join(30)
