"""Speed, state of charge and 12 V over time, drawn as a self-contained SVG."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape  # nosec B406 # escape() writes SVG text; nothing here parses XML

from anycar.sim.simulator import LV_VOLTAGE, SOC, SPEED, Simulator

WIDTH = 960
PANEL_H = 170
MARGIN_L, MARGIN_R, MARGIN_T, GAP = 64, 24, 56, 34
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    unit: str
    color: str
    values: list[float]


def sample(sim: Simulator, seconds: float) -> tuple[list[float], list[Series], list[tuple[float, float]]]:
    """Run the simulator and collect the three series and the spans parked at a delivery."""
    times: list[float] = []
    speed: list[float] = []
    soc: list[float] = []
    volts: list[float] = []
    stops: list[tuple[float, float]] = []
    for step in sim.run(seconds):
        times.append(step.t)
        speed.append(step.values[SPEED])
        soc.append(step.values[SOC])
        volts.append(step.values[LV_VOLTAGE])
        if step.phase == "delivery":
            if stops and abs(stops[-1][1] - (step.t - sim.dt)) < 1e-6:
                stops[-1] = (stops[-1][0], step.t)
            else:
                stops.append((step.t - sim.dt, step.t))
    series = [
        Series("Speed", "km/h", "#2563eb", speed),
        Series("Traction battery state of charge", "%", "#059669", soc),
        Series("12 V rail", "V", "#d97706", volts),
    ]
    return times, series, stops


def _nice_ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    span = hi - lo or 1.0
    raw = span / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    ticks = []
    v = first
    while v <= hi + 1e-9:
        ticks.append(round(v, 10))
        v += step
    return ticks


def _fmt(v: float) -> str:
    return (
        f"{v:.0f}"
        if abs(v - round(v)) < 1e-9
        else f"{v:.1f}"
        if abs(v * 10 - round(v * 10)) < 1e-6
        else f"{v:.2f}"
    )


def render_svg(
    title: str,
    times: Sequence[float],
    series: Sequence[Series],
    shaded: Sequence[tuple[float, float]] = (),
    subtitle: str = "",
) -> str:
    """An SVG document with one panel per series on a shared time axis."""
    height = MARGIN_T + len(series) * (PANEL_H + GAP) + 20
    plot_w = WIDTH - MARGIN_L - MARGIN_R
    t0, t1 = (times[0], times[-1]) if times else (0.0, 1.0)
    tspan = (t1 - t0) or 1.0

    def x(t: float) -> float:
        return MARGIN_L + (t - t0) / tspan * plot_w

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="{FONT}">',
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text x="{MARGIN_L}" y="26" font-size="18" font-weight="600" fill="#111827">{escape(title)}</text>',
        f'<text x="{MARGIN_L}" y="44" font-size="12" fill="#6b7280">{escape(subtitle)}</text>',
    ]
    time_ticks = _nice_ticks(t0, t1, 8)
    for i, s in enumerate(series):
        top = MARGIN_T + i * (PANEL_H + GAP) + 14
        bottom = top + PANEL_H
        vals = s.values or [0.0]
        lo, hi = min(vals), max(vals)
        if hi - lo < 1e-6:
            lo, hi = lo - 1, hi + 1
        pad = (hi - lo) * 0.08
        lo, hi = lo - pad, hi + pad
        if s.unit == "km/h":
            lo = 0.0

        def y(v: float, lo: float = lo, hi: float = hi, bottom: float = bottom) -> float:
            return bottom - (v - lo) / (hi - lo) * PANEL_H

        out.append(
            f'<text x="{MARGIN_L}" y="{top - 6}" font-size="13" font-weight="600" fill="{s.color}">'
            f"{escape(s.label)} ({escape(s.unit)})</text>"
        )
        out.append(
            f'<rect x="{MARGIN_L}" y="{top}" width="{plot_w}" height="{PANEL_H}" fill="#f9fafb" stroke="#e5e7eb"/>'
        )
        for a, b in shaded:
            out.append(
                f'<rect x="{x(a):.1f}" y="{top}" width="{max(0.5, x(b) - x(a)):.1f}" height="{PANEL_H}" '
                'fill="#fde68a" fill-opacity="0.45"/>'
            )
        for tick in _nice_ticks(lo, hi, 4):
            yy = y(tick)
            out.append(
                f'<line x1="{MARGIN_L}" x2="{MARGIN_L + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#e5e7eb"/>'
            )
            out.append(
                f'<text x="{MARGIN_L - 8}" y="{yy + 4:.1f}" font-size="11" text-anchor="end" fill="#6b7280">{_fmt(tick)}</text>'
            )
        for tick in time_ticks:
            xx = x(tick)
            out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{top}" y2="{bottom}" stroke="#f0f1f3"/>')
            out.append(
                f'<text x="{xx:.1f}" y="{bottom + 14}" font-size="11" text-anchor="middle" fill="#6b7280">{_fmt(tick)}</text>'
            )
        # Thin the polyline to at most two points per pixel column.
        stride = max(1, len(times) // (plot_w * 2))
        pts = " ".join(
            f"{x(t):.1f},{y(v):.1f}" for t, v in zip(times[::stride], s.values[::stride], strict=False)
        )
        out.append(
            f'<polyline fill="none" stroke="{s.color}" stroke-width="1.6" stroke-linejoin="round" points="{pts}"/>'
        )
    out.append(
        f'<text x="{MARGIN_L + plot_w}" y="{height - 6}" font-size="11" text-anchor="end" fill="#6b7280">time (s)</text>'
    )
    if shaded:
        out.append(
            f'<rect x="{MARGIN_L}" y="{height - 16}" width="12" height="10" fill="#fde68a"/>'
            f'<text x="{MARGIN_L + 16}" y="{height - 7}" font-size="11" fill="#6b7280">parked at a delivery stop</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def plot_cycle(sim: Simulator, seconds: float | None = None) -> str:
    """Drive one lap (the cycle and the rest after it, by default) and draw it."""
    seconds = sim.lap_s if seconds is None else seconds
    times, series, stops = sample(sim, seconds)
    v = sim.vehicle
    title = f"{v.name}: {sim.cycle.name} on {sim.route.name}"
    km = sim.odometer_m / 1000
    used = v.battery.initial_soc - sim.battery.soc
    kwh = used / 100 * v.battery.capacity_kwh
    sub = (
        f"{km:.2f} km in {seconds:.0f} s, {kwh:.2f} kWh from the traction battery "
        f"({kwh / km * 100 if km else 0:.1f} kWh/100 km), regenerated {sim.battery.regenerated_wh / 1000:.2f} kWh; seed {sim.seed}"
    )
    return render_svg(title, times, series, stops, sub)
