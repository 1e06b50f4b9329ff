"""The hub process's gRPC set-up: its server's sockets read by grpc.aio's poller thread, not by
gRPC's event-engine pool (anycar.grpc_setup), and what a user's own GRPC_EXPERIMENTS keeps."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

from hypothesis import given
from hypothesis import strategies as st

from anycar.grpc_setup import EXPERIMENT, VARIABLE, measured_version, prefer_poller_reads, with_poller_reads

NAMES = st.sampled_from(["work_stealing", "tcp_frame_size_tuning", EXPERIMENT, "event_engine_client", "x"])


@given(st.lists(st.tuples(st.booleans(), NAMES), max_size=5), st.sampled_from([",", ", ", " ,"]))
def test_the_listener_is_turned_off_unless_the_user_named_it(names: list[tuple[bool, str]], sep: str) -> None:
    value = sep.join(("-" if off else "") + name for off, name in names)
    out = with_poller_reads(value).split(",")
    given_names = [("-" if off else "") + name for off, name in names]
    if any(name == EXPERIMENT for _, name in names):
        assert out == (given_names or [""])  # the user's choice decides, unchanged
    else:
        assert out[:-1] == given_names and out[-1] == "-" + EXPERIMENT


def test_only_the_measured_grpcio_releases_get_the_switch() -> None:
    for version, measured in [
        ("1.85.3", True),
        ("1.60.0", True),
        ("1.72.0rc1", True),
        ("1.59.9", False),
        ("1.86.0", False),
        ("2.0.0", False),
        ("nonsense", False),
    ]:
        assert measured_version(version) is measured, version
        environ: dict[str, str] = {}
        assert prefer_poller_reads(environ, version, imported=False) is measured, version
        assert (VARIABLE in environ) is measured


def test_too_late_once_grpc_is_imported_and_a_user_who_wants_the_default_keeps_it() -> None:
    environ = {VARIABLE: "work_stealing"}
    assert prefer_poller_reads(environ, "1.85.3", imported=True) is False
    assert environ == {VARIABLE: "work_stealing"}
    assert prefer_poller_reads(environ, "1.85.3", imported=False) is True
    assert environ == {VARIABLE: f"work_stealing,-{EXPERIMENT}"}
    environ = {VARIABLE: EXPERIMENT}
    assert prefer_poller_reads(environ, "1.85.3", imported=False) is False
    assert environ == {VARIABLE: EXPERIMENT}


def _thread_wakeups(pid: int) -> dict[str, int]:
    """Voluntary context switches (a thread that waited and was woken) by thread name."""
    out: dict[str, int] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                status = f.read()
        except OSError:
            continue
        woken = int(status.split("\nvoluntary_ctxt_switches:")[1].split()[0])
        out[name] = out.get(name, 0) + woken
    return out


def _event_engine_wakeups_per_message(user_value: str | None, messages: int = 60) -> float:
    """Start a real `anycar hub`, publish ``messages`` requests 3 ms apart over one provider
    stream, and count how often the hub's event-engine threads were woken per request."""
    import grpc
    from kuksa.val.v2 import val_pb2 as v2
    from kuksa.val.v2 import val_pb2_grpc

    from anycar.bench import api
    from anycar.bench.broker import bench_signals
    from anycar.model import Catalog

    saved = os.environ.get(VARIABLE)
    if user_value is None:
        os.environ.pop(VARIABLE, None)
    else:
        os.environ[VARIABLE] = user_value
    try:
        hub, endpoints = api._start_hub()
    finally:
        if saved is None:
            os.environ.pop(VARIABLE, None)
        else:
            os.environ[VARIABLE] = saved
    sig, _ = bench_signals(Catalog.load_default(), 1)[0]

    async def publish() -> float:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{api._port(endpoints['grpc'])}")
        call = val_pb2_grpc.VALStub(channel).OpenProviderStream()
        warm = v2.OpenProviderStreamRequest()
        warm.publish_values_request.data_points[sig.id].value.float = 1.0
        await call.write(warm)
        await asyncio.sleep(0.3)
        before = _thread_wakeups(hub.pid)
        for k in range(messages):
            message = v2.OpenProviderStreamRequest()
            message.publish_values_request.request_id = k
            message.publish_values_request.data_points[sig.id].value.float = float(k % 50)
            await call.write(message)
            await asyncio.sleep(0.003)
        await asyncio.sleep(0.2)
        after = _thread_wakeups(hub.pid)
        call.cancel()
        await channel.close()
        woken = sum(
            after.get(name, 0) - before.get(name, 0) for name in after if name.startswith("event_engine")
        )
        return woken / messages

    try:
        return asyncio.run(publish())
    finally:
        api._stop(hub)


def test_anycar_hub_reads_a_providers_messages_without_waking_the_event_engine_threads() -> None:
    """The switch must be made before the hub imports grpc: a hub that still reads in the event
    engine's pool wakes its threads once or more per request (the control, with the user's
    GRPC_EXPERIMENTS asking for that listener)."""
    start = time.monotonic()
    ours = _event_engine_wakeups_per_message(None)
    default = _event_engine_wakeups_per_message(EXPERIMENT)
    assert default >= 1.0, default
    assert ours < 0.3, (ours, default)
    assert time.monotonic() - start < 60


# the moment grpc is first imported in `anycar demo`, what GRPC_EXPERIMENTS says (then stop)
_AT_GRPC_IMPORT = """
import importlib.abc, os, sys

class AtGrpcImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "grpc":
            print("GRPC_EXPERIMENTS=" + os.environ.get("GRPC_EXPERIMENTS", "(unset)"), flush=True)
            os._exit(0)
        return None

sys.meta_path.insert(0, AtGrpcImport())
from anycar.cli.main import main
main(["demo", "--brand", "kaiyun_pickman"])
"""


def test_anycar_demo_switches_the_listener_off_before_grpc_is_imported() -> None:
    """The single-car demo's hub serves kuksa.val.v2 as ``anycar hub`` does (before the switch
    here, grpc came in with the listener on)."""
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    done = subprocess.run(
        [sys.executable, "-c", _AT_GRPC_IMPORT], capture_output=True, text=True, timeout=120, env=env
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("GRPC_EXPERIMENTS=")]
    assert lines == [f"GRPC_EXPERIMENTS=-{EXPERIMENT}"], (done.stdout[-2000:], done.stderr[-2000:])
