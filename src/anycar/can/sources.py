"""Where frames come from and go to: python-can buses and recorded logs.

``read_log`` reads candump ``.log``, Vector ``.asc``, ``.blf`` and PEAK ``.trc`` files with
python-can's readers, and survives corrupt lines: python-can's text readers stop at the first
line they cannot parse, so the reader is resumed after it (the header is read only once) and
the line is counted. ``replay`` feeds a log to an adapter at recorded speed or as fast as it
goes; ``BusSource`` feeds a live bus (socketcan, virtual, ...) to an adapter on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import can
from can.io.asc import ASCReader
from can.io.blf import BLFReader
from can.io.canutils import CanutilsLogReader
from can.io.trc import TRCReader

from anycar.can.adapter import CanAdapter
from anycar.can.decoder import BadInput
from anycar.errors import ConfigError, NotProvider
from anycar.supervisor import Supervised, Supervisor

LOG_SUFFIXES = (".log", ".asc", ".blf", ".trc")
REPLAY_BATCH = 256


class _OnceHeader:
    """Mixin: read a text log's header on the first pass only, so a reader can be resumed."""

    _header_done = False
    _header_value: Any = None

    def _extract_header(self) -> Any:
        if self._header_done:
            return None
        self._header_done = True
        return super()._extract_header()  # type: ignore[misc]


class _ASC(_OnceHeader, ASCReader):
    pass


class _TRC(_OnceHeader, TRCReader):
    pass


def read_log(path: str | Path, bad: BadInput | None = None) -> Iterator[can.Message]:
    """Every frame of a log file; corrupt lines or records are counted in ``bad`` and skipped."""
    p = Path(path)
    suffix = p.suffix.lower()
    counters = bad if bad is not None else BadInput()
    if suffix not in LOG_SUFFIXES:
        raise ConfigError(f"{p}: unknown log format {suffix!r} (known: {', '.join(LOG_SUFFIXES)})")
    if not p.is_file():
        raise ConfigError(f"{p}: no such log file")
    if suffix == ".blf":
        yield from _read_blf(p, counters)
        return
    with p.open("r", encoding="utf-8", errors="replace", newline=None) as fh:
        reader: Any
        if suffix == ".log":
            reader = CanutilsLogReader(_candump_lines(fh, counters))  # type: ignore[arg-type]  # iterated only
        elif suffix == ".asc":
            reader = _ASC(fh)
        else:
            reader = _TRC(fh)
        while True:
            try:
                for msg in reader:  # a new pass resumes after the line that broke the last one
                    if _plausible(msg):
                        yield msg
                    else:
                        counters.corrupt_log_line += 1
                return
            except (ValueError, IndexError, KeyError, TypeError, OverflowError):
                counters.corrupt_log_line += 1
            except NotImplementedError as exc:
                raise ConfigError(f"{p}: {exc}") from None


_CANDUMP = re.compile(
    r"^\s*\(\d+(?:\.\d+)?\)\s+\S+\s+(?:[0-9A-Fa-f]{3}|[0-9A-Fa-f]{8})#"
    r"(?:#[0-9A-Fa-f](?:[0-9A-Fa-f]{2}){0,64}|(?:[0-9A-Fa-f]{2}){0,8}|R\d{0,2})"
    r"(?:\s+[RTrt])?\s*$"
)


def _candump_lines(lines: Iterable[str], counters: BadInput) -> Iterator[str]:
    """Only well-formed ``candump -L`` lines reach python-can's reader, which would otherwise
    read an odd number of hex digits or a 9-byte classic frame without complaint."""
    for line in lines:
        if not line.strip():
            continue
        if _CANDUMP.match(line):
            yield line
        else:
            counters.corrupt_log_line += 1


def _plausible(msg: can.Message) -> bool:
    if msg.is_error_frame:
        return True
    limit = 0x1FFFFFFF if msg.is_extended_id else 0x7FF
    if not 0 <= msg.arbitration_id <= limit:
        return False
    return len(msg.data) <= (64 if msg.is_fd else 8)


def _read_blf(p: Path, counters: BadInput) -> Iterator[can.Message]:
    try:
        reader = BLFReader(str(p))
    except Exception:
        counters.corrupt_log_line += 1
        return
    try:
        for msg in reader:
            if _plausible(msg):
                yield msg
            else:
                counters.corrupt_log_line += 1
    except Exception:  # a damaged binary record cannot be resynchronised; keep what was read
        counters.corrupt_log_line += 1
    finally:
        reader.stop()


def write_log(path: str | Path, messages: list[can.Message]) -> None:
    """Write frames to any format python-can writes, chosen by suffix (.log, .asc, .blf, .trc)."""
    with can.Logger(str(path)) as logger:
        for msg in messages:
            logger.on_message_received(msg)


def replay(
    adapter: CanAdapter,
    path: str | Path,
    *,
    realtime: bool = False,
    speed: float = 1.0,
    on_updates: Callable[[float, list[tuple[str, Any]]], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Feed a log to the adapter; ``realtime`` keeps the recorded pace (times ``speed``)."""
    start = time.perf_counter()
    batch: list[can.Message] = []
    first_ts: float | None = None
    frames = 0

    def flush() -> None:
        if batch:
            updates = adapter.feed_many(batch)
            if on_updates is not None and updates:
                on_updates(batch[-1].timestamp, updates)
            batch.clear()

    for msg in read_log(path, adapter.bad):
        frames += 1
        if realtime:
            if first_ts is None:
                first_ts = msg.timestamp
            due = (msg.timestamp - first_ts) / speed
            ahead = due - (time.perf_counter() - start)
            if ahead > 0.001:
                flush()
                sleep(ahead)
        if on_updates is not None and batch and msg.timestamp != batch[-1].timestamp:
            flush()  # updates are reported with the time of the frames that carried them
        batch.append(msg)
        if len(batch) >= REPLAY_BATCH:
            flush()
    flush()
    elapsed = time.perf_counter() - start
    return {"frames": frames, "seconds": round(elapsed, 3), **adapter.stats()}


class BusSource:
    """Reads a python-can bus on its own thread and feeds the adapter on the event loop.

    ``bus_name`` names the profile bus the frames belong to, for interfaces (like python-can's
    virtual bus) whose channel is not the profile's channel.
    """

    def __init__(self, adapter: CanAdapter, bus: can.BusABC, *, bus_name: str | None = None) -> None:
        self.adapter = adapter
        self.bus = bus
        self.bus_name = bus_name
        self._reader = can.AsyncBufferedReader()
        self._notifier: can.Notifier | None = None
        self._task: asyncio.Task[None] | None = None
        self._supervised: Supervised | None = None

    async def start(self, supervisor: Supervisor | None = None) -> None:
        """Start reading; under the hub's ``supervisor`` a crash is logged and the reader restarted."""
        loop = asyncio.get_running_loop()
        # its thread wakes every 0.1 s (python-can's default is 1 s), so stopping a hub does not
        # wait a second per bus; a frame still wakes it at once
        self._notifier = can.Notifier(self.bus, [self._reader], timeout=0.1, loop=loop)
        name = f"can-source-{self.adapter.name}-{self.bus_name or self.bus.channel_info}"
        if supervisor is not None:
            self._supervised = supervisor.spawn(name, self._run)
        else:
            self._task = asyncio.create_task(self._run(), name=name)

    async def _run(self) -> None:
        reader = self._reader
        while True:
            first = await reader.get_message()
            batch = [first]
            queue = reader.buffer
            while not queue.empty() and len(batch) < REPLAY_BATCH:
                batch.append(queue.get_nowait())
            if self.bus_name is not None:
                for msg in batch:
                    msg.channel = self.bus_name
            try:
                self.adapter.feed_many(batch)
            except NotProvider:  # the adapter was closed: nothing left to publish to
                return

    async def stop(self) -> None:
        if self._notifier is not None:
            self._notifier.stop()
            self._notifier = None
        if self._supervised is not None:
            await self._supervised.stop()
            self._supervised = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def bus_sender(buses: can.BusABC | dict[str, can.BusABC]) -> Callable[[str, can.Message], None]:
    """The ``send`` of a CAN adapter: one python-can bus, or one per bus name of the profile."""
    if isinstance(buses, dict):
        table = dict(buses)

        def send_named(bus: str, msg: can.Message) -> None:
            target = table.get(bus)
            if target is None:
                raise can.CanOperationError(f"no python-can bus is open for bus {bus!r}")
            target.send(msg)

        return send_named

    single = buses
    return lambda _bus, msg: single.send(msg)


def open_bus(interface: str, channel: str, **kwargs: Any) -> can.BusABC:
    """A python-can bus, e.g. ``open_bus("socketcan", "can0")`` or ``open_bus("virtual", "x")``."""
    try:
        return can.Bus(interface=interface, channel=channel, **kwargs)
    except (can.CanError, OSError, ValueError) as exc:
        raise ConfigError(f"cannot open CAN bus {interface}:{channel}: {exc}") from None


async def replay_async(adapter: CanAdapter, path: str | Path, *, speed: float = 1.0) -> dict[str, Any]:
    """Feed a log to the adapter at its recorded pace (times ``speed``) without blocking the loop."""
    start = time.perf_counter()
    batch: list[can.Message] = []
    first_ts: float | None = None
    frames = 0
    for msg in read_log(path, adapter.bad):
        frames += 1
        if first_ts is None:
            first_ts = msg.timestamp
        ahead = (msg.timestamp - first_ts) / speed - (time.perf_counter() - start)
        if ahead > 0.001 or len(batch) >= REPLAY_BATCH:
            adapter.feed_many(batch)
            batch.clear()
            await asyncio.sleep(max(ahead, 0.0))
        batch.append(msg)
    adapter.feed_many(batch)
    return {"frames": frames, "seconds": round(time.perf_counter() - start, 3), **adapter.stats()}
