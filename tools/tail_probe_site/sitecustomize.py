"""Loaded by every Python process started with this folder on PYTHONPATH (tools/api_tail_probe.py).

With ``GC_PROBE_DIR`` set, records each garbage collection (wall start, duration, generation,
objects collected) and, with ``LOOP_PROBE=1`` too, each event-loop callback that ran over 0.3 ms
(wall start, duration, the task's coroutine); ``GC_PROBE_THRESHOLD=a,b,c`` sets the collector's
thresholds. Writes PID.json (and PID.loop.json) into ``GC_PROBE_DIR`` at exit or on SIGTERM.
Measurement only; without ``GC_PROBE_DIR`` it does nothing.
"""

from __future__ import annotations

import os

if os.environ.get("GC_PROBE_DIR"):
    import asyncio.events
    import atexit
    import gc
    import json
    import signal
    import time
    from typing import Any

    _folder = os.environ["GC_PROBE_DIR"]
    _collections: list[tuple[float, float, int, int]] = []
    _slow: list[tuple[float, float, str]] = []
    _started = [0.0]

    def _on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            _started[0] = time.time()
        else:
            _collections.append(
                (_started[0], time.time() - _started[0], info["generation"], info["collected"])
            )

    gc.callbacks.append(_on_gc)
    if os.environ.get("GC_PROBE_THRESHOLD"):
        gc.set_threshold(*[int(x) for x in os.environ["GC_PROBE_THRESHOLD"].split(",")])

    if os.environ.get("LOOP_PROBE"):
        _run = asyncio.events.Handle._run

        def _timed_run(self: Any) -> None:
            t0 = time.perf_counter()
            _run(self)
            took = time.perf_counter() - t0
            if took > 0.0003:
                callback = self._callback
                name = getattr(callback, "__qualname__", None) or repr(callback)
                coro = getattr(getattr(callback, "__self__", None), "get_coro", None)
                if coro is not None:
                    name = getattr(coro(), "__qualname__", name)
                _slow.append((time.time() - took, took, str(name)[:80]))

        asyncio.events.Handle._run = _timed_run  # type: ignore[method-assign]

    def _dump() -> None:
        if not os.path.isdir(_folder):
            return
        with open(os.path.join(_folder, f"{os.getpid()}.json"), "w") as f:
            json.dump({"events": _collections, "threshold": gc.get_threshold()}, f)
        if os.environ.get("LOOP_PROBE"):
            with open(os.path.join(_folder, f"{os.getpid()}.loop.json"), "w") as f:
                json.dump(_slow, f)

    def _on_term(*_: Any) -> None:
        _dump()
        os._exit(0)

    atexit.register(_dump)
    signal.signal(signal.SIGTERM, _on_term)  # the hub replaces it with its own and exits through atexit
