"""A live-feed client that falls behind is closed (4408) as soon as its queue overflows, not after
the server has written out the queue's backlog to it; the ingest's publish never waits, and a
client that keeps up gets everything. Real parts: a FleetServer (uvicorn, the /api/live route)
and real WebSocket clients (the `websockets` package) over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from pathlib import Path

import pytest
import websockets

from fleet_support import eventually, fleet_engine, live_feed_server

T0 = 1_767_225_600.0


def _small_window(url: str) -> socket.socket:
    """A client socket with a small receive buffer: a phone on a bad link, not 32 MB of loopback
    autotuning that would hold the whole test's items before the client is ever behind."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    sock.connect((host, int(port)))
    return sock


BATCH = 10  # items per publish: the overflow is placed within one batch


async def test_a_client_behind_the_bound_is_closed_at_once_without_its_backlog(tmp_path: Path) -> None:
    with fleet_engine("sqlite", tmp_path) as engine:
        async with live_feed_server(engine) as (server, tid, token, url):
            bound = server.live.bound
            async with (
                websockets.connect(url, max_queue=1, ping_interval=None, sock=_small_window(url)) as slow,
                websockets.connect(url, ping_interval=None) as fast,
            ):
                for ws in (slow, fast):
                    await ws.send(token)
                    assert json.loads(await ws.recv())["type"] == "hello"
                fast_seqs: list[int] = []
                slow_seqs: list[int] = []

                async def read(ws: websockets.ClientConnection, into: list[int], slow_s: float) -> None:
                    async for text in ws:
                        into.append(json.loads(text)["seq"])
                        if not server.live.dropped:  # slow until dropped; then it reads what is left
                            await asyncio.sleep(slow_s)

                total = 6 * bound
                fast_reader = asyncio.create_task(read(fast, fast_seqs, 0))
                slow_reader = asyncio.create_task(read(slow, slow_seqs, 0.02))  # 50 items/s at most
                overflow_end, worst, seq = None, 0.0, 0
                while seq < total:
                    items = [
                        {
                            "tenant_id": tid,
                            "vehicle": "v1",
                            "seq": seq + i,
                            "ts": T0 + seq + i,
                            "lat": 48.0,
                            "lon": 11.0,
                            "pad": os.urandom(2000).hex(),
                        }
                        for i in range(BATCH)
                    ]
                    seq += BATCH
                    t = time.perf_counter()
                    server.live.publish("position", items)  # what the ingest does after a commit
                    worst = max(worst, time.perf_counter() - t)
                    if overflow_end is None and server.live.dropped:
                        overflow_end, dropped_at = seq, time.monotonic()
                        assert server.live.clients() == 1  # only the fast one is left
                    await asyncio.sleep(0.002)
                    while seq - len(fast_seqs) > bound // 2:  # the ingest's pace is what a
                        await asyncio.sleep(0.001)  # reader keeps up with, even on a loaded box
                assert overflow_end is not None, "the slow client never fell behind"
                await eventually(lambda: len(fast_seqs) == total, 60, "the fast client's items")
                assert fast_seqs == list(range(total)) and server.live.dropped == 1
                assert worst < 0.5, worst  # the publish never waited for a client (the slow one reads 50/s)
                with contextlib.suppress(websockets.ConnectionClosed):
                    await asyncio.wait_for(slow_reader, 60)
                closed_after = time.monotonic() - dropped_at
                assert slow.close_code == 4408, (slow.close_code, slow.close_reason)
                # what the slow client got after its overflow is only what was on the wire before it:
                # nothing of the `bound` items queued for it then was sent afterwards
                assert slow_seqs == list(range(len(slow_seqs)))
                assert slow_seqs[-1] < overflow_end - bound, (slow_seqs[-1], overflow_end, bound)
                assert closed_after < 30, closed_after
                fast_reader.cancel()


async def test_a_client_that_goes_away_leaves_the_feed_at_once_and_a_stop_logs_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing published meanwhile: the handler must notice the disconnect itself (before, it
    waited on the feed until an item's send failed, and a server stop cancelled it mid-wait,
    which uvicorn logged as "Exception in ASGI application" with a CancelledError traceback)."""
    with fleet_engine("sqlite", tmp_path) as engine:
        async with live_feed_server(engine) as (server, _tid, token, url):
            for _ in range(2):
                async with websockets.connect(url, ping_interval=None) as ws:
                    await ws.send(token)
                    assert json.loads(await ws.recv())["type"] == "hello"
                    assert server.live.clients() == 1
            await eventually(lambda: server.live.clients() == 0, 10, "the gone client's subscription")
            staying = await websockets.connect(url, ping_interval=None)
            await staying.send(token)
            assert json.loads(await staying.recv())["type"] == "hello"
        # the server stopped with the client still connected: it is told (1012), and no error
        with contextlib.suppress(websockets.ConnectionClosed):
            await asyncio.wait_for(staying.recv(), 10)
        assert staying.close_code == 1012, staying.close_code
    assert not [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]
