"""Runs a simulator on an asyncio loop and hands every step to its sinks.

``SimulatorSink`` is the seam: the hub plugs in a sink that encodes each step's values to CAN
frames through the brand profile (``CanFrameSink``) and feeds the CAN adapter, so the demo runs
the real path CAN -> mapping -> broker. ``BrokerSink`` publishes straight into a broker, for
tests and for running without a CAN profile.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

from anycar.broker import ActuationRejected, ActuationRequest, Provider, SignalBroker
from anycar.sim.simulator import INPUTS, SimStep, Simulator

log = logging.getLogger(__name__)


class SimulatorSink(Protocol):
    """Receives each simulator step; may be a plain function or a coroutine function."""

    def __call__(self, step: SimStep) -> Awaitable[None] | None: ...


class BrokerSink:
    """Publishes each step into a broker as one provider, and serves the simulator's inputs.

    Values the broker refuses are counted per path and logged once; the rest still go through.
    """

    def __init__(self, broker: SignalBroker, sim: Simulator, name: str = "simulator") -> None:
        self.sim = sim
        self.provider: Provider = broker.register_provider(name, sim.paths(), on_actuate=self._on_actuate)
        self.rejected: Counter[str] = Counter()
        self._publish(sim.static_values(), None)

    def _on_actuate(self, request: ActuationRequest) -> None:
        try:
            value = self.sim.apply(request.path, request.value)
        except ValueError as exc:
            raise ActuationRejected(str(exc)) from None
        self.provider.publish(request.path, value)

    def _publish(self, values: Mapping[str, Any], timestamp: float | None) -> None:
        errors = self.provider.publish_many(values.items(), timestamp)
        for path, err in errors.items():
            if self.rejected[path] == 0:
                log.warning("simulator value refused by the broker: %s", err)
            self.rejected[path] += 1

    def __call__(self, step: SimStep) -> None:
        self._publish(step.values, None)

    def close(self) -> None:
        self.provider.close()


class CanFrameSink:
    """Encodes each step's values to CAN frames and sends them on a python-can bus.

    ``encode`` is the brand profile's ``vss2dbc`` encoder: VSS values in, frames
    (``can.Message``) out. Send errors are counted, never raised: a full bus must not stop the
    simulation.
    """

    def __init__(
        self,
        encode: Callable[[Mapping[str, Any]], Iterable[Any]],
        bus: Any,
        *,
        include: Iterable[str] | None = None,
    ) -> None:
        self.encode = encode
        self.bus = bus
        self.include = frozenset(include) if include is not None else None
        self.frames = 0
        self.errors: Counter[str] = Counter()

    def __call__(self, step: SimStep) -> None:
        values = (
            step.values
            if self.include is None
            else {k: v for k, v in step.values.items() if k in self.include}
        )
        for frame in self.encode(values):
            try:
                self.bus.send(frame)
                self.frames += 1
            except Exception as exc:  # python-can raises CanError and OSError subclasses
                self.errors[type(exc).__name__] += 1


class SimulationRunner:
    """Steps a simulator in (scaled) real time, or as fast as possible, feeding its sinks.

    ``speedup`` is simulated seconds per real second; ``math.inf`` (or ``None``) runs as fast as
    possible, yielding to the loop between steps so that the rest of the hub keeps running.
    """

    def __init__(
        self,
        sim: Simulator,
        sinks: Iterable[SimulatorSink] = (),
        *,
        speedup: float | None = 1.0,
    ) -> None:
        if speedup is not None and speedup <= 0:
            raise ValueError("speedup must be positive")
        self.sim = sim
        self.sinks: list[SimulatorSink] = list(sinks)
        self.speedup = math.inf if speedup is None else speedup
        self.steps = 0
        self.sink_errors = 0
        self.last: SimStep | None = None
        self._stop = asyncio.Event()

    def add_sink(self, sink: SimulatorSink) -> None:
        self.sinks.append(sink)

    def stop(self) -> None:
        self._stop.set()

    async def run(self, duration: float | None = None) -> int:
        """Run until ``duration`` simulated seconds have passed (None: until ``stop()``).

        Returns the number of steps taken.
        """
        loop = asyncio.get_running_loop()
        start_wall = loop.time()
        start_sim = self.sim.t
        taken = 0
        while not self._stop.is_set():
            if duration is not None and self.sim.t + self.sim.dt > start_sim + duration + 1e-9:
                break
            step = self.sim.step()
            self.last = step
            taken += 1
            self.steps += 1
            await self._emit(step)
            if math.isinf(self.speedup):
                await asyncio.sleep(0)
                continue
            due = start_wall + (step.t - start_sim) / self.speedup
            delay = due - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
            else:
                await asyncio.sleep(0)
        return taken

    async def _emit(self, step: SimStep) -> None:
        for sink in self.sinks:
            try:
                result = sink(step)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # one broken sink must not stop the others or the simulation
                self.sink_errors += 1
                if self.sink_errors <= 3:
                    log.exception("simulator sink %r failed", sink)


def measure(sim: Simulator, seconds: float) -> dict[str, Any]:
    """How fast the simulator steps with no sink: for ``anycar bench sim``."""
    start = time.perf_counter()
    steps = sum(1 for _ in sim.run(seconds))
    elapsed = time.perf_counter() - start
    return {
        "steps": steps,
        "dt_s": sim.dt,
        "simulated_s": round(steps * sim.dt, 1),
        "elapsed_s": round(elapsed, 4),
        "steps_per_s": round(steps / elapsed, 1),
        "realtime_factor": round(steps * sim.dt / elapsed, 1),
    }


__all__ = ["INPUTS", "BrokerSink", "CanFrameSink", "SimulationRunner", "SimulatorSink", "measure"]
