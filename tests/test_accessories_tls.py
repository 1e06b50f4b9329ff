"""The accessory link over TLS (wss://): the token and pairing proof never cross in clear text."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from anycar.accessories import AccessoryManager, load_profile_mounts, signing, virtual
from anycar.broker import SignalBroker
from helpers_accessories import FAST
from tls_support import self_signed


async def test_commission_over_wss(tmp_path: Path) -> None:
    cert, key_file = self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key_file)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    broker = SignalBroker()
    manager = AccessoryManager(
        broker, tmp_path / "hub.sqlite3", load_profile_mounts("nio_et7"), limits=FAST, ssl=server_ctx
    )
    vendor = signing.generate_key()
    manager.add_vendor_key(virtual.VIRTUAL_VENDOR_ID, signing.public_b64(vendor))
    await manager.start()
    try:
        assert manager.url.startswith("wss://127.0.0.1:")
        tablet = virtual.build("dash_display", serial="T-1", signing_key=vendor)
        tablet.ssl = client_ctx
        tablet.start(manager.url)
        await asyncio.wait_for(tablet.awaiting.wait(), 5)
        rec = await manager.commission("fff1:8003:T-1", tablet.pairing_code, "seat_back_driver")
        await asyncio.wait_for(tablet.running.wait(), 5)
        assert (await broker.actuate(rec.paths["ContentType"], "MEDIA")).ok
        await tablet.stop()

        untrusting = virtual.build("dash_display", serial="T-2", signing_key=vendor)  # no CA: refuses the hub
        untrusting.ssl = ssl.create_default_context()
        await asyncio.wait_for(untrusting.run(manager.url, reconnect=False), 5)
        assert untrusting.state == "disconnected" and "fff1:8003:T-2" not in manager.pending
    finally:
        await manager.stop()
