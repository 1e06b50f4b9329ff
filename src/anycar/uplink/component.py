"""The uplink as a hub component: campaigns and events in, the spool in the middle, the MQTT
link out; commands and campaigns from the fleet back in.

Everything to send becomes a wire message with this boot's next sequence number, is encoded
and written to the spool, and only then published. Campaigns come from files (the shipped
default unless the config names others) and from the fleet, signed; the fleet's are kept in
the spool's file and re-checked at every start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anycar import __version__
from anycar.errors import ConfigError
from anycar.model.signal import Signal
from anycar.policy import PolicyEngine
from anycar.policy.db import default_db_path
from anycar.ratelimit import TokenBucket
from anycar.uplink.campaigns import Campaign, load_campaign_file, parse_campaign
from anycar.uplink.collector import CampaignRunner
from anycar.uplink.commands import CommandHandler
from anycar.uplink.config import UplinkConfig
from anycar.uplink.events import EventDetector, Thresholds
from anycar.uplink.link import Link
from anycar.uplink.rest import uplink_group
from anycar.uplink.spool import Spool
from anycar.uplink.tasks import supervised
from anycar.wire import Channel, Origin, Sample, WireError, decode, encode, new_boot_id, signature
from anycar.wire import messages as msg
from anycar.wire.schema import check_message

if TYPE_CHECKING:
    from anycar.hub.hub import Hub

log = logging.getLogger(__name__)
MIB = 1024 * 1024
EVENT_PRIORITY = 1
CAMPAIGNS_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (
    id TEXT PRIMARY KEY, version INTEGER NOT NULL, message TEXT NOT NULL, received REAL NOT NULL
)"""


def default_spool_path() -> Path:
    return default_db_path().parent / "uplink.sqlite3"


class UplinkComponent:
    name = "uplink"

    def __init__(
        self, config: UplinkConfig, *, clock: Callable[[], float] = time.time, validate: bool = True
    ) -> None:
        self.cfg = config
        self.clock = clock
        self.validate = validate
        self.spool_path = config.spool_path or default_spool_path()
        self.trusted = {}
        for i, text in enumerate(config.fleet_keys):
            try:
                key = signature.parse_public_key(text, f"fleet_keys[{i}]")
            except WireError as exc:
                raise ConfigError(f"{config.source}: uplink.{exc}") from None
            self.trusted[signature.key_id(key)] = key
        self.origin = Origin(config.vehicle_id, new_boot_id())
        self.seq = 0
        self.campaigns: dict[str, Campaign] = {}
        self.runners: dict[str, CampaignRunner] = {}
        self.refusals: dict[str, int] = {}
        self.crashes: dict[str, int] = {}
        self.spool: Spool | None = None
        self.link: Link | None = None
        self.events: EventDetector | None = None
        self.commands: CommandHandler | None = None
        self._hub: Hub | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reported_drops = 0
        self._scheduling = asyncio.Lock()
        # Campaign messages are rare; a flood of them is dropped (counted) before it is read.
        self._campaign_bucket = TokenBucket(1.0, 10)
        self._manager: Callable[[], Any] = lambda: None  # the cabin's accessory manager, if any
        self._listened: list[Any] = []  # event logs we listen to (notify, inventory changes)
        self._inventory_sent: list[dict[str, Any]] | None = None
        self._inventory_due = False
        self.delivery: Any = None  # delivery-exec: the route and proofs of delivery

    # -- life cycle ---------------------------------------------------------------------------
    async def start(self, hub: Hub) -> None:
        try:
            await self._start(hub)
        except BaseException:
            await self.stop()  # the hub stops only what started; close what this one opened
            raise

    async def _start(self, hub: Hub) -> None:
        self._hub = hub
        catalog = hub.broker.catalog
        self.spool = Spool(self.spool_path, quota_bytes=int(self.cfg.quota_mb * MIB), clock=self.clock)
        self.spool.db.execute(CAMPAIGNS_SCHEMA)
        self._reported_drops = self.spool.counters.get("dropped", 0)
        for file in self.cfg.campaigns:
            campaign = load_campaign_file(file, catalog)
            self.campaigns[campaign.id] = campaign
        self._load_fleet_campaigns()
        # The cabin's policy engine, if this hub has one (it starts before the uplink).
        policies = [getattr(c, "policy", None) for c in hub.components]
        policy = next((p for p in policies if isinstance(p, PolicyEngine)), None)
        self.commands = CommandHandler(
            hub.broker,
            policy,
            self.spool,
            self.cfg.commands,
            self.cfg.vehicle_id,
            self.trusted,
            self._answer_command,
            clock=self.clock,
        )
        self._register_actions(hub)
        self.events = EventDetector(
            hub.broker, self._emit_events, Thresholds.load(self.cfg.events), clock=self.clock
        )
        await self.events.start(policy.events if policy is not None else None)
        catalog.add_listener(self._on_catalog_change)
        if not any(g.name == "uplink" for g in hub.rest.groups):  # a restarted hub keeps its routes
            hub.add_rest_group(uplink_group(self))
        await self._schedule()
        will = encode(msg.state(self.origin, False, ts=self.clock()), self.cfg.format, validate=self.validate)
        self.link = Link(
            self.cfg,
            self.spool,
            boot=self.origin.boot,
            birth=self._birth,
            will=will,
            on_message=self._on_message,
        )
        self._tasks += [
            asyncio.create_task(supervised(self.link.run, "link", self.crashes), name="uplink-link"),
            asyncio.create_task(
                supervised(self._housekeeping, "housekeeping", self.crashes), name="uplink-housekeeping"
            ),
        ]
        supervisor = getattr(hub, "supervisor", None)
        if supervisor is not None:  # its tasks restart themselves; /api/v1/info shows how they fare
            supervisor.add_probe("uplink", self._health)

    # -- fleet-commands: scene, fleet_event and firmware commands; inventory; notify ---------------
    def _register_actions(self, hub: Hub) -> None:
        """Hand each command action to the room that carries it out, if this hub has it."""
        from anycar.uplink.actions import firmware_action, fleet_event_action, scene_action

        if self.commands is None:
            return
        autos = next((c for c in hub.components if c.name == "automations"), None)
        cabin = next((c for c in hub.components if c.name == "cabin"), None)

        def engine() -> Any:
            return getattr(autos, "engine", None)

        def manager() -> Any:
            return getattr(cabin, "manager", None)

        settings = self.cfg.commands
        if autos is None:
            why = "this hub runs no automations (anycar hub --automations DIR)"
            self.commands.register("scene", None, why)
            self.commands.register("fleet_event", None, why)
        else:
            self.commands.register("scene", scene_action(engine, settings))
            if settings.fleet_events:
                self.commands.register("fleet_event", fleet_event_action(engine))
            else:
                self.commands.register("fleet_event", None, "uplink.commands.fleet_events is off on this hub")
        if cabin is None:
            self.commands.register("firmware", None, "this hub has no accessory server (no --brand)")
        else:
            self.commands.register("firmware", firmware_action(manager, settings))
        self._manager = manager
        self._start_delivery(hub)
        found = engine()
        logs = [getattr(found, "events", None)] if found is not None else []
        policies = [getattr(c, "policy", None) for c in hub.components]
        policy = next((p for p in policies if isinstance(p, PolicyEngine)), None)
        if policy is not None:
            logs.append(policy.events)
        self._listened = []
        for events in {id(x): x for x in logs if x is not None}.values():
            events.add_listener(self._on_hub_event)
            self._listened.append(events)

    # -- delivery-exec: the route from the fleet, the next stop, proofs of delivery ---------------
    def _start_delivery(self, hub: Hub) -> None:
        from anycar.uplink.delivery import DeliveryKeeper, hub_key
        from anycar.uplink.delivery_rest import delivery_group

        if self.commands is None or self.spool is None:
            return
        key = hub_key(self.spool_path.with_name(self.spool_path.name + ".identity.pem"))

        def display() -> str | None:
            mgr = self._manager()
            for fitted in list(getattr(mgr, "fitted", {}).values()) if mgr is not None else []:
                if any(t.id == "display" for t in fitted.manifest.traits):
                    return str(fitted.instance)
            return None

        self.delivery = DeliveryKeeper(
            hub.broker, self.spool.db, key, self._send_pod, display=display, clock=self.clock
        )
        self.commands.register("route", self.delivery.receive)
        if not any(g.name == "delivery" for g in hub.rest.groups):
            hub.add_rest_group(delivery_group(lambda: self.delivery))
        self._tasks.append(
            asyncio.create_task(
                supervised(self.delivery.run, "delivery", self.crashes), name="uplink-delivery"
            )
        )

    def _send_pod(self, record: dict[str, Any], public_key: str) -> None:
        self._submit(
            Channel.POD,
            lambda seq: msg.pod(self.origin, seq, record, public_key, ts=self.clock()),
            prio=msg.POD_PRIORITY,
        )

    INVENTORY_KINDS = frozenset(
        {
            "fitted",
            "commissioned",
            "removed",
            "shed",
            "restore",
            "available",
            "unavailable",
            "firmware_updated",
        }
    )

    def _on_hub_event(self, event: Any) -> None:
        """Notifications go to the fleet whatever the campaigns say; a change of what is fitted
        (or how it runs) sends the inventory again. Must not fail inside the event log."""
        try:
            if self.spool is None:
                return
            if event.kind == "automation_notify":
                item = {
                    "type": "automation_notify",
                    "ts": event.ts,
                    "position": self.events.position() if self.events else None,
                    "subject": str(event.subject)[:1024],
                    "message": str(event.message)[:4096],
                    "data": {"automation": str(event.data.get("automation", event.subject))},
                }
                self._emit_events_always([item])
            elif event.kind in self.INVENTORY_KINDS and not self._inventory_due:
                self._inventory_due = True
                asyncio.get_running_loop().call_soon(self._send_inventory, False)
        except Exception:
            self.crashes["hub event listener"] = self.crashes.get("hub event listener", 0) + 1
            log.exception("uplink: a hub event could not be spooled")

    def _send_inventory(self, always: bool = True) -> None:
        """The whole list of fitted accessories (on birth: always; on a change: if it differs)."""
        from anycar.accessories.updating import inventory

        self._inventory_due = False
        mgr = self._manager()
        if mgr is None or self.spool is None:
            return
        items = inventory(mgr)[:256]
        if not always and items == self._inventory_sent:
            return
        self._inventory_sent = items
        self._submit(
            Channel.INVENTORY,
            lambda seq: msg.inventory(self.origin, seq, items, ts=self.clock()),
            prio=msg.INVENTORY_PRIORITY,
        )

    def _health(self) -> dict[str, Any]:
        status = self.status()
        keys = ("connected", "last_error", "in_flight", "backlog", "crashes", "refusals")
        return {key: status[key] for key in keys} | {"spool": status["spool"]}

    async def stop(self) -> None:
        for events in self._listened:
            events.remove_listener(self._on_hub_event)
        self._listened = []
        if self.commands is not None:
            await self.commands.close()
        supervisor = getattr(self._hub, "supervisor", None)
        if supervisor is not None:
            supervisor.remove_probe("uplink")
        for runner in list(self.runners.values()):
            await runner.stop()  # pending samples go to the spool
        self.runners = {}
        if self.events is not None:
            await self.events.stop()
        if self.link is not None and self.spool is not None:
            offline = encode(
                msg.state(self.origin, False, ts=self.clock()), self.cfg.format, validate=self.validate
            )
            await self.link.publish_now(Channel.STATE, offline, retain=True)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self.delivery is not None:
            self.delivery.close()
            self.delivery = None
        if self.spool is not None:
            self._write_status(stopped=True)
            self.spool.close()
            self.spool = None
        self._hub = None

    # -- out -------------------------------------------------------------------------------------
    def _submit(
        self,
        channel: Channel,
        build: Callable[[int], dict[str, Any]],
        *,
        prio: int,
        qos: int = 1,
        ttl: float | None = None,
        campaign: str | None = None,
    ) -> None:
        if self.spool is None:
            return
        self.seq += 1
        doc = build(self.seq)
        payload = encode(doc, self.cfg.format, compress=self.cfg.compress, validate=self.validate)
        flying = self.link.flying_ids if self.link is not None else ()
        self.spool.put(
            channel,
            payload,
            prio=prio,
            qos=qos,
            boot=self.origin.boot,
            seq=self.seq,
            ttl=ttl,
            campaign=campaign,
            protect=flying,
        )

    def _emit_samples(self, campaign: Campaign, rows: list[Sample], trigger: float | None) -> None:
        step = campaign.max_values
        for i in range(0, len(rows), step):
            chunk = rows[i : i + step]

            def build(seq: int, chunk: list[Sample] = chunk) -> dict[str, Any]:
                return msg.telemetry(
                    self.origin,
                    seq,
                    chunk,
                    campaign=campaign.id,
                    version=campaign.version,
                    prio=campaign.priority,
                    ts=self.clock(),
                    trigger=trigger,
                )

            self._submit(
                Channel.TELEMETRY,
                build,
                prio=campaign.priority,
                qos=campaign.qos,
                ttl=campaign.ttl_s,
                campaign=campaign.id,
            )

    def _emit_events(self, items: list[dict[str, Any]]) -> None:
        if not any(c.events for c in self.runners_campaigns()):
            return
        for i in range(0, len(items), 1000):
            chunk = items[i : i + 1000]

            def build(seq: int, chunk: list[dict[str, Any]] = chunk) -> dict[str, Any]:
                return msg.events(self.origin, seq, chunk, prio=EVENT_PRIORITY, ts=self.clock())

            self._submit(Channel.EVENTS, build, prio=EVENT_PRIORITY)

    def runners_campaigns(self) -> list[Campaign]:
        return [r.campaign for r in self.runners.values()]

    def _answer_command(
        self,
        command: str | None,
        status: str,
        reason: str,
        results: list[dict[str, Any]],
        action: str | None = None,
    ) -> None:
        self._submit(
            Channel.COMMAND_RESULTS,
            lambda seq: msg.command_result(
                self.origin,
                seq,
                command=command,
                status=status,
                reason=reason,
                results=results,
                ts=self.clock(),
                action=action,
            ),
            prio=0,
        )

    def _ack_campaign(self, campaign: str | None, version: int | None, status: str, reason: str = "") -> None:
        if status != "accepted":
            self.refusals[status] = self.refusals.get(status, 0) + 1
            log.warning("uplink: campaign %s@%s %s: %s", campaign, version, status, reason)
        self._submit(
            Channel.CAMPAIGN_ACKS,
            lambda seq: msg.campaign_ack(
                self.origin,
                seq,
                campaign=campaign,
                version=version,
                status=status,
                reason=reason,
                ts=self.clock(),
            ),
            prio=0,
        )

    def _birth(self) -> bytes:
        with contextlib.suppress(RuntimeError):  # after the birth: what is fitted, whole
            asyncio.get_running_loop().call_soon(self._send_inventory, True)
        doc = msg.state(
            self.origin,
            True,
            ts=self.clock(),
            version=__version__,
            campaigns=[c.key for c in self.runners_campaigns()],
        )
        return encode(doc, self.cfg.format, validate=self.validate)

    # -- in --------------------------------------------------------------------------------------
    async def _on_message(self, channel: Channel, payload: bytes) -> None:
        if channel is Channel.COMMANDS and self.commands is not None:
            await self.commands.handle(payload)
        elif channel is Channel.CAMPAIGNS:
            await self.receive_campaign(payload)

    async def receive_campaign(self, payload: bytes) -> None:
        """A campaign message from the fleet: checked, kept, run, acknowledged (or refused, with why)."""
        if not self._campaign_bucket.take():
            self.refusals["rate_limited"] = self.refusals.get("rate_limited", 0) + 1
            return
        try:
            doc = decode(payload, validate=False)
            signature.verify(doc, self.trusted)
            check_message(doc)
            if doc["kind"] != "campaign":
                raise WireError(f"a {doc['kind']} message on the campaigns topic", reason="schema")
        except WireError as exc:
            self._ack_campaign(None, None, "refused", str(exc))
            return
        body = doc["campaign"]
        cid, version = body["id"], body["version"]
        if doc["vehicle"] not in ("*", self.cfg.vehicle_id):
            self._ack_campaign(cid, version, "refused", f"campaign is for vehicle {doc['vehicle']}")
            return
        current = self.campaigns.get(cid)
        if current is not None and current.version >= version:
            self._ack_campaign(cid, version, "stale", f"version {current.version} is already here")
            return
        assert self._hub is not None and self.spool is not None  # nosec B101 # narrows Optionals for mypy; set in start(), an invariant, not outside input
        if body.get("remove"):
            self.campaigns.pop(cid, None)
            self.spool.db.execute("DELETE FROM campaigns WHERE id = ?", (cid,))
            self._ack_campaign(cid, version, "removed")
        else:
            try:
                campaign = parse_campaign(
                    body, self._hub.broker.catalog, where=f"campaign {cid}@{version}", source="fleet"
                )
            except ConfigError as exc:
                self._ack_campaign(cid, version, "refused", str(exc))
                return
            self.campaigns[cid] = campaign
            self.spool.db.execute(
                "INSERT INTO campaigns (id, version, message, received) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET version = excluded.version, message = excluded.message, received = excluded.received",
                (cid, version, json.dumps(doc), self.clock()),
            )
            self._ack_campaign(cid, version, "accepted")
        await self._schedule()

    def _load_fleet_campaigns(self) -> None:
        assert self.spool is not None and self._hub is not None  # nosec B101 # narrows Optionals for mypy; set in start(), an invariant, not outside input
        for row in self.spool.db.execute("SELECT id, version, message FROM campaigns").fetchall():
            try:
                doc = json.loads(row[2])
                signature.verify(
                    doc, self.trusted
                )  # a key removed from the config takes its campaigns with it
                campaign = parse_campaign(
                    doc["campaign"],
                    self._hub.broker.catalog,
                    where=f"stored campaign {row[0]}",
                    source="fleet",
                )
            except (WireError, ConfigError, ValueError, KeyError) as exc:
                log.warning("uplink: stored campaign %s@%s dropped: %s", row[0], row[1], exc)
                self.spool.db.execute("DELETE FROM campaigns WHERE id = ?", (row[0],))
                continue
            current = self.campaigns.get(campaign.id)
            if current is None or current.version < campaign.version:
                self.campaigns[campaign.id] = campaign

    def _on_catalog_change(self, added: list[Signal], changed: list[Signal]) -> None:
        """Accessories add signals: campaigns whose patterns cover them start watching them. Runs
        inside the catalog's overlay, so it must not fail there."""
        try:
            for runner in self.runners.values():
                runner.attach([[s for s in added if runner.wants(s.path)]])
        except Exception:
            self.crashes["catalog listener"] = self.crashes.get("catalog listener", 0) + 1
            log.exception("uplink: new signals could not be added to the campaigns")

    # -- keeping things current ----------------------------------------------------------------
    async def _schedule(self) -> None:
        """Run the campaigns that are active now (by their start and stop), stop the others."""
        async with self._scheduling:  # housekeeping and a campaign from the fleet may both ask
            await self._reschedule()

    async def _reschedule(self) -> None:
        if self._hub is None:
            return
        now = self.clock()
        for cid, runner in list(self.runners.items()):
            wanted = self.campaigns.get(cid)
            if wanted is None or wanted is not runner.campaign or not wanted.active(now):
                del self.runners[cid]
                await runner.stop()
        for cid, campaign in list(self.campaigns.items()):
            if cid not in self.runners and campaign.active(now):
                runner = CampaignRunner(campaign, self._hub.broker, self._emit_samples, clock=self.clock)
                if self.spool is not None:
                    if campaign.quota_bytes:
                        self.spool.campaign_quota[cid] = campaign.quota_bytes
                    else:
                        self.spool.campaign_quota.pop(cid, None)
                await runner.start()
                self.runners[cid] = runner

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            await self._schedule()
            self._report_drops()
            self._write_status()

    def _report_drops(self) -> None:
        """Drops from the spool are never silent: an ``uplink_dropped`` event says how many and why."""
        if self.spool is None:
            return
        total = self.spool.counters.get("dropped", 0)
        if total <= self._reported_drops:
            return
        new = total - self._reported_drops
        self._reported_drops = total
        drops = {k: v for k, v in self.spool.stats()["drops"].items()}
        self._emit_events_always(
            [
                {
                    "type": "uplink_dropped",
                    "ts": self.clock(),
                    "position": self.events.position() if self.events else None,
                    "message": f"{new} message(s) dropped from the spool",
                    "data": {"new": new, "total": total, **drops},
                }
            ]
        )

    def _emit_events_always(self, items: list[dict[str, Any]]) -> None:
        self._submit(
            Channel.EVENTS, lambda seq: msg.events(self.origin, seq, items, prio=0, ts=self.clock()), prio=0
        )

    def status(self) -> dict[str, Any]:
        link = self.link
        spool = self.spool.stats() if self.spool is not None else {}
        return {
            "vehicle": self.cfg.vehicle_id,
            "broker": self.cfg.url,
            "boot": self.origin.boot,
            "seq": self.seq,
            "connected": bool(link and link.connected),
            "connects": link.connects if link else 0,
            "last_error": (link.last_error if link else "") or spool.get("last_error", ""),
            "in_flight": link.in_flight if link else 0,
            "backlog": link.backlog_left if link else 0,
            "spool": spool,
            "campaigns": [c.key for c in self.runners_campaigns()],
            "events": dict(self.events.counts) if self.events else {},
            "commands": dict(self.commands.counts) if self.commands else {},
            "refusals": dict(self.refusals),
            "crashes": {**self.crashes, **(self.events.crashes if self.events else {})},
            "updated": self.clock(),
        }

    def _write_status(self, *, stopped: bool = False) -> None:
        """For ``anycar uplink status`` in another process (it reads the spool's file)."""
        if self.spool is None:
            return
        status = self.status()
        status.pop("spool")
        status["stopped"] = stopped
        self.spool.set_meta({"status": json.dumps(status)})
        self.spool.set_meta({"campaigns": json.dumps([c.summary() for c in self.campaigns.values()])})

    def endpoints(self) -> dict[str, str]:
        return {"uplink": self.cfg.url}
