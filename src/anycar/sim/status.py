"""The live status line of ``anycar demo``: a few words that change, not a wall of logs.

``DemoStatus`` reads the broker each time rich refreshes it, so the demo only has to wrap it
in ``rich.live.Live`` (``live_status`` does that) and keep running.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from anycar.broker import SignalBroker
from anycar.policy.driving import DrivingConfig
from anycar.sim.simulator import (
    CABIN_TEMP,
    GEAR_LETTERS,
    IGNITION,
    LV_VOLTAGE,
    SELECTED_GEAR,
    SOC,
    SPEED,
)

BAR_CELLS = 8
_DRIVING = DrivingConfig.default()


@dataclass(frozen=True, slots=True)
class FittedAccessory:
    name: str
    mount: str = ""
    watts: float = 0.0
    available: bool = True


AccessorySource = Sequence[FittedAccessory] | Callable[[], Sequence[FittedAccessory]]


def driving_state(speed: float | None, gear: int | None, ignition: str | None) -> str:
    """Parked, idling or moving, by the policy's own rule (its default speed ranges)."""
    return str(_DRIVING.derive(speed=speed, selected_gear=gear, ignition=ignition))


class DemoStatus:
    """Speed, gear, state of charge, 12 V, cabin, driving state, fitted accessories and URL."""

    def __init__(
        self,
        broker: SignalBroker,
        url: str,
        *,
        vehicle: str = "",
        accessories: AccessorySource = (),
    ) -> None:
        self.broker = broker
        self.url = url
        self.vehicle = vehicle
        self.accessories = accessories

    def _value(self, path: str) -> Any:
        dp = self.broker.get(path)
        return None if dp is None else dp.value

    def _fitted(self) -> Sequence[FittedAccessory]:
        source = self.accessories
        return source() if callable(source) else source

    def render(self) -> RenderableType:
        speed = self._value(SPEED)
        soc = self._value(SOC)
        gear = self._value(SELECTED_GEAR)
        volts = self._value(LV_VOLTAGE)
        cabin = self._value(CABIN_TEMP)
        ignition = self._value(IGNITION)
        state = driving_state(speed, gear, ignition)

        line = Text()
        line.append("● ", style="bold green" if speed is not None else "bold yellow")
        line.append("anycar", style="bold")
        line.append(" │ ", style="dim")
        line.append("—" if speed is None else f"{speed:5.1f}", style="bold")
        line.append(" km/h ")
        line.append(GEAR_LETTERS.get(gear, "·") if gear is not None else "·", style="bold magenta")
        line.append(" │ SoC ", style="dim")
        if soc is None:
            line.append("—")
        else:
            filled = round(soc / 100 * BAR_CELLS)
            colour = "green" if soc > 30 else "yellow" if soc > 12 else "red"
            line.append("█" * filled, style=colour)
            line.append("░" * (BAR_CELLS - filled), style="dim")
            line.append(f" {soc:.1f} %")
        line.append(" │ 12 V ", style="dim")
        line.append(
            "—" if volts is None else f"{volts:5.2f} V",
            style="red" if volts is not None and volts < 12.0 else "",
        )
        line.append(" │ ", style="dim")
        line.append("—" if cabin is None else f"{cabin:.1f} °C")
        line.append(" │ ", style="dim")
        line.append(
            state, style={"moving": "bold blue", "idling": "yellow", "parked": "green"}.get(state, "dim")
        )

        fitted = self._fitted()
        acc = Text("  fitted: ", style="dim")
        if not fitted:
            acc.append("no accessories", style="dim")
        for i, a in enumerate(fitted):
            if i:
                acc.append("  ·  ", style="dim")
            acc.append(a.name, style="bold" if a.available else "dim strike")
            if a.mount:
                acc.append(f" @ {a.mount}", style="dim")
            if a.watts:
                acc.append(f" {a.watts:.0f} W" if a.watts >= 1 else f" {a.watts:.1f} W")  # standby is not 0 W
        total = sum(a.watts for a in fitted if a.available)
        if fitted:
            acc.append(f"   ({total:.0f} W)", style="dim")

        url = Text("  ")
        if self.vehicle:
            url.append(self.vehicle, style="cyan")
            url.append(" · ", style="dim")
        url.append("dashboard ", style="dim")
        url.append(self.url, style=f"bold underline link {self.url}")
        url.append("  (Ctrl-C to stop)", style="dim")
        return Group(line, acc, url)

    def __rich__(self) -> RenderableType:
        return self.render()


def live_status(status: DemoStatus, console: Console | None = None, refresh_per_second: float = 4) -> Live:
    """A rich Live that redraws ``status`` in place; use it as a context manager."""
    return Live(status, console=console, refresh_per_second=refresh_per_second, transient=False)
