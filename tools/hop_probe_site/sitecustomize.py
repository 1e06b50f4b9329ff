"""Loaded by every Python process started with this folder on PYTHONPATH (tools/api_hop_probe.py).

With ``HOP_PROBE_DIR`` set, records in every process: each garbage collection (wall start,
duration, generation), each event-loop callback over ``HOP_PROBE_MIN_US`` (default 20 µs; wall
start, duration, name); and in the hub, per message, the wall time at each hop: the provider
stream's ``handle`` entered and left (with the message's request id and first stamp), the
Subscribe encoder called, the VISS notification sent. Writes PID.json into ``HOP_PROBE_DIR`` at
exit or on SIGTERM. Measurement only; without ``HOP_PROBE_DIR`` it does nothing.
"""

from __future__ import annotations

import os

if os.environ.get("HOP_PROBE_DIR"):
    import asyncio.events
    import atexit
    import builtins
    import gc
    import json
    import signal
    import sys
    import time
    from typing import Any

    _folder = os.environ["HOP_PROBE_DIR"]
    _min = float(os.environ.get("HOP_PROBE_MIN_US", "20")) * 1e-6
    _gcs: list[tuple[float, float, int]] = []
    _cbs: list[tuple[float, float, str]] = []
    _hops: dict[str, list[Any]] = {"handle": [], "encode": [], "notify": []}
    _started = [0.0]
    _young = [0]
    _now = time.time
    _perf = time.perf_counter

    def _on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            _started[0] = _now()
            _young[0] = gc.get_count()[0]
        else:
            _gcs.append((_started[0], _now() - _started[0], info["generation"], info["collected"], _young[0]))

    gc.callbacks.append(_on_gc)

    _run = asyncio.events.Handle._run

    def _timed_run(self: Any) -> None:
        t0 = _perf()
        w0 = _now()
        _run(self)
        took = _perf() - t0
        if took > _min:
            callback = self._callback
            name = getattr(callback, "__qualname__", None) or type(callback).__name__
            coro = getattr(getattr(callback, "__self__", None), "get_coro", None)
            if coro is not None:
                c = coro()
                name = getattr(c, "__qualname__", name)
            _cbs.append((w0, took, str(name)[:60]))

    asyncio.events.Handle._run = _timed_run  # type: ignore[method-assign]

    _patched = [False]
    _current = [0.0]

    def _patch_hub() -> None:
        """Once the hub's modules are imported: wrap the hops."""
        if _patched[0]:
            return
        ps = sys.modules.get("anycar.api.grpc.provider_stream")
        prov = sys.modules.get("anycar.broker.provider")
        wire = sys.modules.get("anycar.api.grpc.wire")
        svc = sys.modules.get("anycar.api.viss.service")
        if not (
            hasattr(ps, "ProviderStream")
            and hasattr(prov, "Provider")
            and hasattr(wire, "SubscribeEncoder")
            and hasattr(svc, "VissSession")
        ):
            return
        _patched[0] = True
        handle = ps.ProviderStream.handle

        async def timed_handle(self: Any, request: Any) -> None:
            t0 = _now()
            _current[0] = 0.0
            await handle(self, request)
            try:
                rid = request.publish_values_request.request_id
            except Exception:
                rid = -1
            _hops["handle"].append((rid, _current[0], t0, _now()))

        ps.ProviderStream.handle = timed_handle
        publish = prov.Provider.publish_checked

        def timed_publish(self: Any, sids: Any, dps: Any, refused: int = 0) -> None:
            if dps:
                _current[0] = dps[0][2]
            publish(self, sids, dps, refused)

        prov.Provider.publish_checked = timed_publish
        messages = wire.SubscribeEncoder.messages

        def timed_messages(self: Any, batch: Any) -> Any:
            t0 = _now()
            out = messages(self, batch)
            _hops["encode"].append((batch[0][2] if batch else 0.0, t0, _now()))
            return out

        wire.SubscribeEncoder.messages = timed_messages
        session = svc.VissSession
        notify = session._notify

        async def timed_notify(self: Any, sid: str, batch: Any) -> None:
            t0 = _now()
            await notify(self, sid, batch)
            _hops["notify"].append((batch[0][2] if batch else 0.0, t0, _now()))

        session._notify = timed_notify

    _real_import = builtins.__import__
    _young_set: list[bool] = []

    def _import(*args: Any, **kwargs: Any) -> Any:
        module = _real_import(*args, **kwargs)
        idle = sys.modules.get("anycar.idle_gc")
        if os.environ.get("HOP_PROBE_GC_YOUNG") and hasattr(idle, "IdleCollector") and not _young_set:
            # an experiment: the idle collector's young threshold (default anycar.idle_gc.YOUNG)
            _young_set.append(True)
            idle.IdleCollector.__init__.__defaults__ = (idle.PERIOD_S, int(os.environ["HOP_PROBE_GC_YOUNG"]))
        if not _patched[0] and "anycar.api.viss.service" in sys.modules:
            _patch_hub()
            if _patched[0] and (_young_set or not os.environ.get("HOP_PROBE_GC_YOUNG")):
                builtins.__import__ = _real_import
        return module

    with open("/proc/self/cmdline", "rb") as _f:
        _cmdline = _f.read().split(b"\0")
    if b"anycar.cli.main" in _cmdline:
        builtins.__import__ = _import

    def _dump() -> None:
        if not os.path.isdir(_folder):
            return
        import collections

        alive = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
        with open(os.path.join(_folder, f"{os.getpid()}.json"), "w") as f:
            json.dump(
                {
                    "argv": sys.argv,
                    "gc": _gcs,
                    "callbacks": _cbs,
                    "hops": _hops,
                    "alive": alive.most_common(25),
                    "frozen": gc.get_freeze_count(),
                },
                f,
            )

    def _on_term(*_: Any) -> None:
        _dump()
        os._exit(0)

    atexit.register(_dump)
    signal.signal(signal.SIGTERM, _on_term)
