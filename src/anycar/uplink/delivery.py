"""delivery-exec, the hub's half of executing a round: the route the fleet pushed (a signed
``route`` command), kept in the spool's database so it survives a restart, the next stop on a
fitted display, and the **proof of delivery** collected from the car's own accessories.

At the current stop the hub watches the cargo door (open -> close), the load cell (the weight
just before the door opened and after), the button panel (a PIN typed on its four buttons) and
the position; the stop closes when the PIN is complete (a stop that needs one), when the door
closes (one that does not), or when the driver reports it (``POST /api/v1/delivery/complete``).
The record is signed with the hub's own Ed25519 key and sent on the ``pod`` channel. The hub
does not judge: the fleet compares the weight drop with the order, the place with the stop and
the PIN with the order's, and raises the exceptions.

A planned battery swap is a stop of the route too (``kind: swap``, demo-route): it is the next
stop on the display like any other, gathers no delivery evidence, and closes as ``swapped`` when
the pack's serial (``pack`` in ``data/delivery.yaml``) changes while it is the current stop, or
when the driver reports it; no proof of delivery is sent for it (the station and the pack's own
report tell the fleet).

Signals are located by the patterns in ``data/delivery.yaml``, so any brand's tailgate or any
vendor's load cell works, whatever its instance name.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fnmatch
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from anycar.broker import SignalBroker
from anycar.broker.datapoint import Datapoint
from anycar.broker.subscription import Subscription
from anycar.errors import AnycarError
from anycar.uplink.commands import Outcome
from anycar.wire import signature
from anycar.wire.routestops import is_swap, stop_key

log = logging.getLogger("anycar.uplink.delivery")
REQUESTER = "delivery"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS delivery_route (id INTEGER PRIMARY KEY CHECK (id = 1), "
    "plan INTEGER NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL, received REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS delivery_done (plan INTEGER NOT NULL, ord TEXT NOT NULL, "
    "outcome TEXT NOT NULL, ts REAL NOT NULL, PRIMARY KEY (plan, ord))",
)


@cache
def settings() -> dict[str, Any]:
    text = (resources.files("anycar.uplink") / "data" / "delivery.yaml").read_text("utf-8")
    return dict(yaml.safe_load(text))


def hub_key(path: Path) -> Ed25519PrivateKey:
    """The hub's identity key (PEM, owner-only), made on first use: it signs proofs of delivery."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return key


def public_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def pin_digest(order: str, pin: str) -> str:
    """What travels instead of the PIN: the fleet, which knows the PIN, computes the same."""
    return hashlib.sha256(f"{order}:{pin}".encode()).hexdigest()


class StopWatch:
    """The evidence gathered at one stop, from the moment it became the current one."""

    def __init__(self, stop: dict[str, Any], weight: float | None) -> None:
        self.stop = stop
        self.opened: float | None = None
        self.closed: float | None = None
        self.door_path: str | None = None
        self.before: float | None = weight
        self.pin = ""
        self.pin_source: str | None = None
        self.snapshot_before: str | None = None  # the camera's last still before this stop's
        self.pack: Any = None  # a swap stop: the pack's serial when it became the current stop


class DeliveryKeeper:
    """The route, the stop in progress and its proof; owned by the uplink component."""

    def __init__(
        self,
        broker: SignalBroker,
        db: Any,
        key: Ed25519PrivateKey,
        send_pod: Callable[[dict[str, Any], str], None],
        *,
        display: Callable[[], str | None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.broker, self.db, self.key, self.send_pod = broker, db, key, send_pod
        self.display, self.clock = display, clock
        self.public_key = public_b64(key)
        self.cfg = settings()
        for statement in SCHEMA:
            db.execute(statement)
        self.route: dict[str, Any] | None = None
        self.done: dict[str, str] = {}
        self.watch: StopWatch | None = None
        self.values: dict[str, Any] = {}
        self.crashes: dict[str, int] = {}
        self.shown = ""
        self.display_status = "no display"  # shown | why not
        self._shown_at = 0.0
        self._sub: Subscription | None = None
        self._paths: frozenset[str] = frozenset()
        self._load()

    # -- the route ------------------------------------------------------------------------------
    def _load(self) -> None:
        row = self.db.execute("SELECT plan, version, body FROM delivery_route WHERE id = 1").fetchone()
        if row is None:
            return
        self.route = {"plan": row[0], "version": row[1], **json.loads(row[2])}
        self.done = {
            r[0]: r[1]
            for r in self.db.execute("SELECT ord, outcome FROM delivery_done WHERE plan = ?", (row[0],))
        }

    async def receive(self, cid: str, body: dict[str, Any]) -> Outcome:
        """The ``route`` action: keep it if it is newer than the one here."""
        version, plan = int(body["version"]), int(body["plan"])
        if self.route is not None and self.route["version"] >= version:
            return Outcome("refused", f"stale: route version {self.route['version']} is already here")
        stops = list(body["stops"])
        self.db.execute(
            "INSERT INTO delivery_route (id, plan, version, body, received) VALUES (1, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET plan = excluded.plan, version = excluded.version, "
            "body = excluded.body, received = excluded.received",
            (plan, version, json.dumps({"stops": stops}), self.clock()),
        )
        if self.route is None or self.route["plan"] != plan:
            # a re-plan made before this hub's last proofs reached the fleet may list an order
            # delivered here: it stays delivered (a failed one may come back for another attempt)
            kept = {o: out for o, out in self.done.items() if out in ("delivered", "swapped")}
            for order, outcome in kept.items():
                self.db.execute(
                    "INSERT OR IGNORE INTO delivery_done (plan, ord, outcome, ts) VALUES (?, ?, ?, ?)",
                    (plan, order, outcome, self.clock()),
                )
            self.done = {
                r[0]: r[1]
                for r in self.db.execute("SELECT ord, outcome FROM delivery_done WHERE plan = ?", (plan,))
            }
        self.route = {"plan": plan, "version": version, "stops": stops}
        w = self.watch
        if w is None or w.opened is None or not any(stop_key(s) == stop_key(w.stop) for s in stops):
            self.watch = None  # a stop whose door has opened stays in progress: its evidence is kept
        self._advance()
        return Outcome(
            "accepted", "", [{"route_version": version, "stops": len(stops), "status": "accepted"}]
        )

    def next_stop(self) -> dict[str, Any] | None:
        if self.route is None:
            return None
        return next((s for s in self.route["stops"] if stop_key(s) not in self.done), None)

    def view(self) -> dict[str, Any]:
        """What ``GET /api/v1/delivery`` shows: the route, what is done, the next stop."""
        if self.route is None:
            return {"route": None, "next": None, "done": {}}
        return {
            "route": {k: self.route[k] for k in ("plan", "version")} | {"stops": self.route["stops"]},
            "done": dict(self.done),
            "next": self.next_stop(),
            "display": self.shown,
            "display_status": self.display_status,
        }

    def _advance(self) -> None:
        stop = self.next_stop()
        w = self.watch
        if w is not None and w.opened is not None and stop_key(w.stop) not in self.done:
            pass  # the stop in progress (its door opened) is closed first, whatever comes next
        elif stop is None:
            self.watch = None
        elif self.watch is None or stop_key(self.watch.stop) != stop_key(stop):
            self.watch = StopWatch(stop, self._number(self._value(self._first("weights"))))
            if is_swap(stop):
                self.watch.pack = self._pack()
            else:
                camera = self._camera()
                self.watch.snapshot_before = self._snapshot(camera) if camera is not None else None
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(self._show(stop))

    async def _show(self, stop: dict[str, Any] | None) -> None:
        """The next stop on the fitted display (if any): order, planned time, window, weight."""
        instance = self.display()
        if stop is None:
            text = "Round complete"
        elif is_swap(stop):
            held = f" R{stop['reservation']}" if stop.get("reservation") is not None else ""
            text = f"Next: swap at {stop['station']} {stop.get('eta', '')} [{stop.get('window', '')}]{held}"
        else:
            pin = " PIN" if stop.get("pin_required") else ""
            text = (
                f"Next: {stop['order']} {stop.get('eta', '')} [{stop.get('window', '')}] "
                f"{stop['weight_kg']:g} kg{pin}"
            )
        self.shown, self._shown_at = text, self.clock()
        if instance is None:
            self.display_status = "no display"
            return
        base = f"Vehicle.Accessories.{instance}"
        try:
            results = await self.broker.actuate_many(
                {f"{base}.ContentType": "TEXT", f"{base}.Text": text}, requester=REQUESTER
            )
        except AnycarError as exc:
            self._display_failed(instance, f"refused: {exc}")
            return
        bad = [f"{r.path}: {r.status} {r.reason}" for r in results if not r.ok]
        if bad:
            self._display_failed(instance, "; ".join(bad))
        else:
            self.display_status = "shown"

    def _display_failed(self, instance: str, status: str) -> None:
        # The stop is re-shown every few seconds; a shed display would repeat the same warning.
        if status != self.display_status:
            log.warning("delivery: the display %s did not show the next stop: %s", instance, status)
        self.display_status = status

    # -- evidence -------------------------------------------------------------------------------
    def _patterns(self) -> list[str]:
        c = self.cfg
        return [
            *c["doors"],
            *c["weights"],
            c["presses"]["count"],
            c["position"]["lat"],
            c["position"]["lon"],
            c["pack"],
        ]

    def _first(self, what: str) -> str | None:
        for pattern in self.cfg[what]:
            found = sorted(p for p in self.values if fnmatch.fnmatchcase(p, pattern))
            if found:
                return found[0]
        return None

    @staticmethod
    def _number(value: Any) -> float | None:
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    def _value(self, path: str | None) -> Any:
        return self.values.get(path) if path is not None else None

    async def run(self) -> None:
        """Watch the signals (re-subscribing when accessories come and go)."""
        try:
            while True:
                paths = frozenset(
                    s.path
                    for p in self._patterns()
                    if self.broker.catalog.match(p)
                    for s in self.broker.catalog.resolve(p)
                )
                if paths != self._paths or self._sub is None:
                    if self._sub is not None:
                        self._sub.close()
                    self._sub = (
                        self.broker.subscribe(sorted(paths), name="uplink:delivery") if paths else None
                    )
                    self._paths = paths
                    if self._sub is not None:  # the current values: state, not events
                        for dp in self._sub.drain():
                            self.values[dp.path] = dp.value
                        if self.watch is not None and self.watch.before is None:
                            self.watch.before = self._number(self._value(self._first("weights")))
                if self._sub is None:
                    await asyncio.sleep(0.5)
                    continue
                batch = await self._sub.get(timeout=0.5)
                self.apply(batch)
                if self.display_status not in ("shown", "no display") and self.clock() - self._shown_at > 2:
                    await self._show(self.next_stop())  # refused while moving, say: try again
        finally:
            if self._sub is not None:
                self._sub.close()
                self._sub = None

    def apply(self, batch: list[Datapoint]) -> None:
        count_pattern = self.cfg["presses"]["count"]
        for dp in batch:
            old = self.values.get(dp.path, None)
            self.values[dp.path] = dp.value
            w = self.watch
            if w is None:
                continue
            if is_swap(w.stop):
                if dp.path == self.cfg["pack"] and dp.value and w.pack is not None and dp.value != w.pack:
                    self.complete("swapped")  # the robot fitted another pack: the swap is done
                elif dp.path == self.cfg["pack"] and w.pack is None:
                    w.pack = dp.value  # the first reading at this stop
                continue
            if w.opened is None and dp.path == self._first("weights"):
                w.before = self._number(dp.value)  # the load until the door opens
            if any(fnmatch.fnmatchcase(dp.path, p) for p in self.cfg["doors"]) and dp.value != old:
                if dp.value is True and w.opened is None:
                    w.opened, w.door_path = dp.timestamp, dp.path
                    self._capture()
                    load = self._number(self._value(self._first("weights")))
                    w.before = load if load is not None else w.before  # the load just before opening
                elif dp.value is False and w.opened is not None and w.closed is None:
                    w.closed = dp.timestamp
                    if not w.stop.get("pin_required"):
                        self.complete("delivered")
            elif fnmatch.fnmatchcase(dp.path, count_pattern) and dp.value is not None and dp.value != old:
                button_path = dp.path.rsplit(".", 1)[0] + "." + self.cfg["presses"]["button"]
                button = self.broker.get(button_path)
                digit = self.cfg["pin_digits"].get(button.value if button else None)
                if digit is not None and w.stop.get("pin_required"):
                    w.pin += digit
                    w.pin_source = button_path
                    if len(w.pin) >= int(w.stop.get("pin_length") or 4):
                        self.complete("delivered")

    def _camera(self) -> str | None:
        """The capture actuator of a fitted camera, if there is one."""
        found = self.broker.catalog.match(self.cfg["camera"]["capture"])
        paths = (
            sorted(s.path for s in self.broker.catalog.resolve(self.cfg["camera"]["capture"]))
            if found
            else []
        )
        return paths[0] if paths else None

    def _capture(self) -> None:
        path = self._camera()
        if path is None:
            return
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(self._actuate_capture(path))

    async def _actuate_capture(self, path: str) -> None:
        try:
            results = await self.broker.actuate_many({path: True}, requester=REQUESTER)
        except AnycarError as exc:
            log.warning("delivery: the camera %s refused a still: %s", path, exc)
            return
        for r in results:
            if not r.ok:
                log.warning("delivery: the camera %s took no still: %s %s", path, r.status, r.reason)

    def _snapshot(self, capture_path: str) -> str | None:
        dp = self.broker.get(capture_path.rsplit(".", 1)[0] + "." + self.cfg["camera"]["snapshot"])
        return dp.value if dp is not None and isinstance(dp.value, str) else None

    def _photo(self, w: StopWatch) -> dict[str, str] | None:
        """The still taken at this stop: SHA-256 of the image bytes and the data: URL as thumbnail."""
        path = self._camera()
        value = self._snapshot(path) if path is not None else None
        if value is None or value == w.snapshot_before or "," not in value or len(value) > 65536:
            return None
        try:
            image = base64.b64decode(value.split(",", 1)[1], validate=True)
        except ValueError:
            return None
        return {"sha256": hashlib.sha256(image).hexdigest(), "thumbnail": value}

    def position(self) -> dict[str, float] | None:
        c = self.cfg["position"]
        lat, lon = self._number(self.values.get(c["lat"])), self._number(self.values.get(c["lon"]))
        if lat is None or lon is None:
            got = self.broker.get_many([c["lat"], c["lon"]])
            lat = self._number(getattr(got.get(c["lat"]), "value", None))
            lon = self._number(getattr(got.get(c["lon"]), "value", None))
        if lat is None or lon is None:
            return None
        return {"lat": lat, "lon": lon}

    def _pack(self) -> Any:
        """The pack's serial now (None where the car reports none)."""
        path = self.cfg["pack"]
        if path in self.values:
            return self.values[path]
        dp = self.broker.get(path) if self.broker.catalog.match(path) else None
        return dp.value if dp is not None else None

    def complete(self, outcome: str, reason: str = "", pin: str | None = None) -> dict[str, Any]:
        """Close the current stop: the signed record goes to the fleet; the next stop shows.
        A swap stop closes as ``swapped`` (any outcome but ``failed``) or ``failed``, with no POD."""
        w, route = self.watch, self.route
        if w is None or route is None:
            raise AnycarError("no stop in progress: no route, or every stop is done")
        if is_swap(w.stop):
            return self._close_swap("failed" if outcome == "failed" else "swapped", reason)
        if outcome not in ("delivered", "failed"):
            raise AnycarError(
                f"outcome {outcome[:20]!r}: the current stop {w.stop['order']} is not a swap stop"
            )
        entered = pin if pin is not None else w.pin
        weight_path = self._first("weights")
        after = self._number(self._value(weight_path))
        drop = round(w.before - after, 3) if w.before is not None and after is not None else None
        record: dict[str, Any] = {
            "order": w.stop["order"],
            "plan": route["plan"],
            "version": route["version"],
            "outcome": outcome,
            "ts": self.clock(),
            "position": self.position(),
            "door": {"path": w.door_path or self._first("doors"), "opened": w.opened, "closed": w.closed},
            "weight": {"path": weight_path, "before_kg": w.before, "after_kg": after, "drop_kg": drop},
            "pin": {
                "source": ("phone" if pin is not None else w.pin_source) if entered else None,
                "digest": pin_digest(w.stop["order"], entered) if entered else None,
            },
            "photo": self._photo(w),
        }
        if reason:
            record["reason"] = reason[:512]
        signed = signature.sign(record, self.key)
        self.done[w.stop["order"]] = outcome
        self.db.execute(
            "INSERT OR REPLACE INTO delivery_done (plan, ord, outcome, ts) VALUES (?, ?, ?, ?)",
            (route["plan"], w.stop["order"], outcome, record["ts"]),
        )
        self.send_pod(signed, self.public_key)
        self.watch = None
        self._advance()
        return signed

    def _close_swap(self, outcome: str, reason: str) -> dict[str, Any]:
        w, route = self.watch, self.route
        assert w is not None and route is not None  # nosec B101 # checked by complete()
        key = stop_key(w.stop)
        self.done[key] = outcome
        self.db.execute(
            "INSERT OR REPLACE INTO delivery_done (plan, ord, outcome, ts) VALUES (?, ?, ?, ?)",
            (route["plan"], key, outcome, self.clock()),
        )
        log.info("delivery: swap stop %s %s%s", key, outcome, f" ({reason})" if reason else "")
        self.watch = None
        self._advance()
        done = {"stop": key, "station": w.stop.get("station"), "outcome": outcome, "pack": self._pack()}
        return done | ({"reason": reason[:512]} if reason else {})

    def close(self) -> None:
        if self._sub is not None:
            self._sub.close()
            self._sub = None
