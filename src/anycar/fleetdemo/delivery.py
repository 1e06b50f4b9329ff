"""The fleet demo's delivery behaviour, from ``data/delivery.yaml``: the drivers' timings and what
each recipient does at the door, attempt by attempt. Bad fields name themselves."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from anycar.errors import ConfigError

WHERE = "anycar/fleetdemo/data/delivery.yaml"
ANSWERS = ("home", "absent")


@dataclass(frozen=True, slots=True)
class DriverTimes:
    work_after_s: float = 10.0
    act_gap_s: float = 0.3
    answer_wait_s: float = 30.0
    done_wait_s: float = 10.0
    home_after_s: float = 20.0
    near_depot_m: float = 150.0


@dataclass(frozen=True, slots=True)
class Recipient:
    attempts: tuple[str, ...] = ("home",)
    pin: str = "sent"  # "sent": the PIN of the delivery_eta webhook; else the digits typed instead
    why: str = "recipient absent"

    def answer(self, attempt: int) -> str:
        """``home`` or ``absent`` at the ``attempt``-th ring (0-based; the last entry repeats)."""
        return self.attempts[min(attempt, len(self.attempts) - 1)]


@dataclass(frozen=True, slots=True)
class DeliverySpec:
    driver: DriverTimes
    default: Recipient
    orders: dict[str, Recipient] = field(default_factory=dict)

    def recipient(self, order: str) -> Recipient:
        return self.orders.get(order, self.default)

    def failing(self) -> list[str]:
        """The orders whose recipient is not in at some attempt: the day's failed deliveries."""
        return sorted(o for o, r in self.orders.items() if "absent" in r.attempts)


def _recipient(data: Any, at: str, base: Recipient) -> Recipient:
    if not isinstance(data, dict):
        raise ConfigError(f"{at}: expected a mapping")
    unknown = set(data) - {"attempts", "pin", "why"}
    if unknown:
        raise ConfigError(f"{at}: unknown {', '.join(sorted(unknown))}")
    attempts = data.get("attempts", list(base.attempts))
    if not isinstance(attempts, list) or not attempts or any(a not in ANSWERS for a in attempts):
        raise ConfigError(f"{at}.attempts: a list of {' or '.join(ANSWERS)}")
    pin = str(data.get("pin", base.pin))
    if pin != "sent" and not (pin.isdigit() and set(pin) <= set("1234") and len(pin) <= 12):
        raise ConfigError(f"{at}.pin: 'sent' or digits 1-4 (the button panel's B1..B4)")
    return Recipient(tuple(attempts), pin, str(data.get("why", base.why))[:200])


def load_delivery(text: str | None = None, where: str = WHERE) -> DeliverySpec:
    """The shipped behaviour (or YAML ``text``)."""
    if text is None:
        text = resources.files("anycar.fleetdemo").joinpath("data/delivery.yaml").read_text("utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping")
    raw = data.get("driver") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: driver: expected a mapping")
    known = DriverTimes.__dataclass_fields__
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"{where}: driver: unknown {', '.join(sorted(unknown))}")
    try:
        times = DriverTimes(**{k: float(v) for k, v in raw.items()})
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: driver: every value is a number of seconds (or metres)") from None
    if any(getattr(times, k) < 0 for k in known):
        raise ConfigError(f"{where}: driver: no negative times")
    people = data.get("recipients") or {}
    if not isinstance(people, dict):
        raise ConfigError(f"{where}: recipients: expected a mapping")
    default = _recipient(people.get("default") or {}, f"{where}: recipients.default", Recipient())
    orders = people.get("orders") or {}
    if not isinstance(orders, dict):
        raise ConfigError(f"{where}: recipients.orders: expected a mapping of order id -> recipient")
    return DeliverySpec(
        times,
        default,
        {str(ref): _recipient(r, f"{where}: recipients.orders.{ref}", default) for ref, r in orders.items()},
    )
