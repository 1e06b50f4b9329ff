"""The hub process's gRPC set-up, made before ``grpc`` is imported: where its server reads sockets.

grpcio's default server listener (the "event engine" one) reads each socket in gRPC's own
thread pool: for every message a provider sends, the pool's poller thread wakes a worker
thread (which wakes a second one beside it), the worker reads and signals the completion queue,
that wakes grpc.aio's poller thread, and that one wakes the event loop. ``strace`` of the hub
shows those four threads, three hand-offs, before the loop sees a message, and each is a thread
woken on a core that may be busy or idle (a VM's idle vCPU must be woken by its host). With the
experiment ``event_engine_listener`` turned off, the server's sockets are polled by grpc.aio's
own poller thread, which reads and wakes the loop: one hand-off, half the hub's wake-ups per
message (8.6-9.1 -> 4.3-4.6 over gRPC, 6.6-6.9 -> 2.5-2.8 over VISS) and less of its CPU per
message (lower in 23 of 24 interleaved pairs, by up to 23 %; docs/performance.md, api-tail2,
session 8). Clients and the hub's answers are unchanged: the answer was already written by the
event loop's own thread.

grpcio reads ``GRPC_EXPERIMENTS`` once, when ``grpc`` is first imported, so this runs first in
``anycar hub``. A user's own ``GRPC_EXPERIMENTS`` is kept; one that names the experiment
(``event_engine_listener`` turns the default back on) decides. The switch is applied only for
grpcio versions it was measured with: an experiment a release no longer knows is an error line
at every start, and a later release may read sockets differently.
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from importlib import metadata

VARIABLE = "GRPC_EXPERIMENTS"
EXPERIMENT = "event_engine_listener"
# grpcio releases measured with the switch (major, minor), both ends included: pyproject's
# lowest and the one this was measured on
MEASURED = ((1, 60), (1, 85))


def measured_version(version: str) -> bool:
    """Whether a grpcio version string is in the measured range."""
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return MEASURED[0] <= (major, minor) <= MEASURED[1]


def with_poller_reads(value: str | None) -> str:
    """``GRPC_EXPERIMENTS`` with the event-engine listener off, unless ``value`` names it."""
    names = [name.strip() for name in (value or "").split(",") if name.strip()]
    if any(name.lstrip("-") == EXPERIMENT for name in names):
        return ",".join(names)
    return ",".join([*names, "-" + EXPERIMENT])


def prefer_poller_reads(
    environ: MutableMapping[str, str], grpc_version: str | None = None, imported: bool | None = None
) -> bool:
    """Set ``environ``'s ``GRPC_EXPERIMENTS`` for this process's gRPC server; whether the
    listener is now off. Nothing changes once ``grpc`` is imported (too late to matter) or for a
    grpcio release outside ``MEASURED``."""
    if imported if imported is not None else "grpc" in sys.modules:
        return False
    if grpc_version is None:
        try:
            grpc_version = metadata.version("grpcio")
        except metadata.PackageNotFoundError:
            return False
    if not measured_version(grpc_version):
        return False
    environ[VARIABLE] = with_poller_reads(environ.get(VARIABLE))
    return "-" + EXPERIMENT in environ[VARIABLE].split(",")
