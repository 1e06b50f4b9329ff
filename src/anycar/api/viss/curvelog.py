"""VISS's ``curvelog`` filter: send only the points needed to redraw the curve within an error.

Updates of each signal are buffered; when ``bufsize`` points are buffered they are reduced with
the Ramer-Douglas-Peucker algorithm, using the error VISS means: how far a dropped point lies
from the straight line between its retained neighbours, measured in the signal's unit at that
point's time. The retained points go out in one notification (a ``dp`` list), so a client that
interpolates linearly between them is never off by more than ``maxerr``.
"""

from __future__ import annotations

from anycar.broker import Datapoint


def retained(points: list[tuple[float, float]], maxerr: float) -> list[int]:
    """Indices of the points to keep (always the first and the last), in order."""
    n = len(points)
    if n <= 2:
        return list(range(n))
    keep = [False] * n
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        first, last = stack.pop()
        t0, v0 = points[first]
        t1, v1 = points[last]
        span = t1 - t0
        worst, at = -1.0, -1
        for i in range(first + 1, last):
            t, v = points[i]
            expected = v0 if span == 0 else v0 + (v1 - v0) * (t - t0) / span
            error = abs(v - expected)
            if error > worst:
                worst, at = error, i
        if at >= 0 and worst > maxerr:
            keep[at] = True
            stack.append((first, at))
            stack.append((at, last))
    return [i for i in range(n) if keep[i]]


class CurveLog:
    """Per-signal buffers of one subscription."""

    def __init__(self, maxerr: float, bufsize: int) -> None:
        self.maxerr = maxerr
        self.bufsize = bufsize
        self.buffers: dict[str, list[Datapoint]] = {}

    def add(self, dp: Datapoint) -> list[Datapoint]:
        """Buffer one update; when the buffer is full, the points to send (else nothing)."""
        if not isinstance(dp.value, (int, float)) or isinstance(dp.value, bool):
            return [dp]  # unavailable (None): pass it on at once, it ends the curve
        buf = self.buffers.setdefault(dp.path, [])
        buf.append(dp)
        if len(buf) < self.bufsize:
            return []
        self.buffers[dp.path] = []
        points = [(d.timestamp, float(d.value)) for d in buf]
        return [buf[i] for i in retained(points, self.maxerr)]
