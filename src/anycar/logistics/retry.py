"""When a failed delivery may be tried again (demo-route): the rules are data (``data/retry.yaml``).

A failed order goes back to dispatch with its reason (the order's ``outcome``: reason, its code,
when it failed, when it may be retried and by which rule). The planner takes it again (``board.
open_orders``) with its time windows cut to start no earlier than the retry time, so it is not
sent to the same door before the rule allows; a rule that says ``never`` (or a day with no
window left) leaves it to the dispatcher, and the plan's notes say why. Times are epoch seconds
on the logistics room's clock; the planner's day is its UTC day (``service.clock_now_s``).

The failed attempts of one order are counted (``attempts`` in its outcome, every reason counts)
and capped (``cap`` in the file): the failure that reaches ``max_attempts`` is final, with no
retry, and ``then`` says what becomes of it (``return_to_depot``: the parcel goes back to the
depot; ``failed``: it stays failed for the dispatcher); ``execution.cap_reached`` raises the
event (an alert for the dispatcher, a ``delivery_final`` webhook).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from anycar.errors import ConfigError
from anycar.logistics.orders import Order, OrderError, Window, clock, parse_order, parse_windows
from anycar.logistics.settings import ServiceArea

DATA = Path(__file__).parent / "data" / "retry.yaml"
WHERE = "anycar/logistics/data/retry.yaml"
DAY_S = 86_400


THEN = {  # what ``cap.then`` may say, and the words the console shows for it
    "return_to_depot": "the parcel goes back to the depot",
    "failed": "marked failed for the dispatcher",
}


@dataclass(frozen=True, slots=True)
class Cap:
    """At most ``max_attempts`` failed attempts per order; ``then``: one of ``THEN``."""

    max_attempts: int = 3
    then: str = "return_to_depot"


@dataclass(frozen=True, slots=True)
class Rule:
    retry_after_s: float | None = None
    next_window: bool = False
    never: bool = False


def _rule(data: Any, at: str) -> Rule:
    if not isinstance(data, dict):
        raise ConfigError(f"{at}: expected a mapping")
    unknown = set(data) - {"retry_after_s", "next_window", "never"}
    if unknown:
        raise ConfigError(f"{at}: unknown {', '.join(sorted(unknown))}")
    after = data.get("retry_after_s")
    if after is not None and (isinstance(after, bool) or not isinstance(after, int | float) or after < 0):
        raise ConfigError(f"{at}.retry_after_s: seconds, not negative")
    for flag in ("next_window", "never"):
        if not isinstance(data.get(flag, False), bool):
            raise ConfigError(f"{at}.{flag}: true or false")
    rule = Rule(
        None if after is None else float(after), bool(data.get("next_window")), bool(data.get("never"))
    )
    if not rule.never and rule.retry_after_s is None and not rule.next_window:
        raise ConfigError(f"{at}: retry_after_s, next_window or never")
    return rule


def load_rules(text: str | None = None, where: str = WHERE) -> tuple[dict[str, Rule], Rule]:
    """(rule per reason code, the default rule) from YAML ``text`` (default: the shipped file)."""
    try:
        data = yaml.safe_load(DATA.read_text("utf-8") if text is None else text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("reasons") or {}, dict):
        raise ConfigError(f"{where}: reasons: a mapping of reason -> rule")
    reasons = {
        code_of(str(k)): _rule(v, f"{where}: reasons.{k}") for k, v in (data.get("reasons") or {}).items()
    }
    return reasons, _rule(data.get("default") or {"retry_after_s": 1800}, f"{where}: default")


def load_cap(text: str | None = None, where: str = WHERE) -> Cap:
    """The attempt cap from YAML ``text`` (default: the shipped file); a file without ``cap`` has
    the default one (a fleet can raise it, not drop it: an order never fails forever)."""
    try:
        data = yaml.safe_load(DATA.read_text("utf-8") if text is None else text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({str(exc).splitlines()[0]})") from None
    raw = (data or {}).get("cap") if isinstance(data, dict) else None
    if raw is None:
        return Cap()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: cap: a mapping with max_attempts and then")
    unknown = set(raw) - {"max_attempts", "then"}
    if unknown:
        raise ConfigError(f"{where}: cap: unknown {', '.join(sorted(unknown))}")
    most = raw.get("max_attempts", Cap().max_attempts)
    if isinstance(most, bool) or not isinstance(most, int) or not 1 <= most <= 20:
        raise ConfigError(f"{where}: cap.max_attempts: a whole number 1..20")
    then = raw.get("then", Cap().then)
    if then not in THEN:
        raise ConfigError(f"{where}: cap.then: one of {', '.join(THEN)}")
    return Cap(int(most), str(then))


@cache
def rules() -> tuple[dict[str, Rule], Rule]:
    return load_rules()


@cache
def cap() -> Cap:
    return load_cap()


def attempts_before(fields: dict[str, Any]) -> int:
    """The failed attempts already recorded on the order (its last outcome's count)."""
    outcome = fields.get("outcome") or {}
    if outcome.get("status") != "failed":
        return int(outcome.get("attempts") or 0)  # a re-open keeps the count it had
    n = outcome.get("attempts")
    return int(n) if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1


def code_of(reason: str) -> str:
    """``"Recipient absent"`` -> ``recipient_absent``."""
    return re.sub(r"[^a-z0-9]+", "_", reason.strip().lower()).strip("_")[:64] or "unknown"


def _windows(fields: dict[str, Any]) -> tuple[Window, ...]:
    raw = (
        fields.get("windows") if fields.get("kind", "delivery") != "pickup" else fields.get("pickup_windows")
    )
    try:
        return parse_windows(raw, "windows")
    except OrderError:
        return ()


def decide(
    fields: dict[str, Any], reason: str, failed_at: float, by: str, limit: Cap | None = None
) -> dict[str, Any]:
    """The order's ``outcome`` after a failed attempt at ``failed_at`` (epoch, the room's clock);
    ``fields`` the order's as they were (its earlier outcome counts the attempts); ``limit``
    the cap (default the shipped file's). ``final`` is set when this attempt reaches the cap."""
    code = code_of(reason or "unknown")
    table, default = rules()
    rule = table.get(code, default)
    limit = cap() if limit is None else limit
    n = attempts_before(fields) + 1
    out: dict[str, Any] = {
        "status": "failed",
        "reason": reason,
        "code": code,
        "by": by,
        "failed_at": failed_at,
        "retry_at": None,
        "attempts": n,
        "max_attempts": limit.max_attempts,
    }
    if n >= limit.max_attempts:
        return out | {
            "retry": f"no retry: attempt {n} of {limit.max_attempts} failed; {THEN[limit.then]}",
            "rule": "cap",
            "final": limit.then,
        }
    if rule.never:
        return out | {"retry": "no automatic retry: the dispatcher decides", "rule": "never"}
    day_s = failed_at % DAY_S
    candidates = [failed_at + rule.retry_after_s] if rule.retry_after_s is not None else []
    said = [f"{rule.retry_after_s:g} s after the failure"] if rule.retry_after_s is not None else []
    if rule.next_window:
        later = [w.start for w in _windows(fields) if w.start > day_s]
        if not later:
            return out | {
                "retry": f"no retry today: no time window starts after {clock(int(day_s))}",
                "rule": "next_window",
            }
        candidates.append(failed_at - day_s + min(later))
        said.append("the next time window")
    retry_at = max(candidates)
    text = f"not before {clock(int(retry_at % DAY_S // 60 * 60))}"
    return out | {"retry_at": retry_at, "retry": text, "rule": " and ".join(said)}


def clip(order: Order, not_before_s: int) -> Order | None:
    """``order`` with the windows of its failed stop (the drop-off; a pickup's pickup) cut to start
    no earlier than ``not_before_s`` (seconds of the planning day); None when none is left."""
    place = order.pickup if order.kind == "pickup" else order.drop
    if place is None:
        return order
    kept = tuple(Window(max(w.start, not_before_s), w.end) for w in place.windows if w.end > not_before_s)
    if not kept:
        return None
    place = dataclasses.replace(place, windows=kept)
    if order.kind == "pickup":
        return dataclasses.replace(order, pickup=place)
    return dataclasses.replace(order, drop=place)


def again(fields: dict[str, Any], area: ServiceArea) -> tuple[Order | None, str]:
    """A failed order as the planner may take it again, or None and why not."""
    outcome = fields.get("outcome") or {}
    ref = fields.get("id")
    if outcome.get("status") != "failed" or "retry_at" not in outcome:
        return None, ""  # failed by hand before retry rules: the dispatcher re-opens it
    if outcome["retry_at"] is None:
        return None, f"{ref}: failed ({outcome.get('reason')}); {outcome.get('retry')}"
    order = clip(parse_order(fields, area), int(float(outcome["retry_at"]) % DAY_S))
    if order is None:
        return (
            None,
            f"{ref}: failed ({outcome.get('reason')}); {outcome.get('retry')}, when none of its windows is open",
        )
    return order, ""
