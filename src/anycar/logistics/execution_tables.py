"""delivery-exec tables (revision ``delivery_exec``): the routes pushed to vehicles, each order's
execution (PIN, ETA, notifications), the hubs' pinned POD keys and the proofs of delivery."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from anycar.fleet.db import metadata

route_pushes = Table(
    "route_pushes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), nullable=False),
    Column("plan_id", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("command_id", String(64), nullable=False),
    Column("created", Float, nullable=False),
    Column("route", JSON, nullable=False),
)
# unique: two pushes at once (a console move, a keeper pass) must not both take the next version
Index("ux_route_pushes_vehicle_version", route_pushes.c.vehicle_id, route_pushes.c.version, unique=True)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("order_ref", String(64), nullable=False),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id")),
    Column("plan_id", Integer, nullable=False),
    Column("seq", Integer, nullable=False),  # position in its route
    Column("kind", String(8), nullable=False),  # drop | pickup
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("weight_kg", Float, nullable=False),
    Column("window", String(64)),
    Column("planned", String(8)),
    Column("pin", String(16)),  # the recipient's secret: never in the route sent to the vehicle
    Column("status", String(16), nullable=False),  # planned | arriving | delivered | failed
    Column("eta_ts", Float),
    Column("eta_updated", Float),
    Column("eta_source", String(64)),
    Column("notified", JSON, nullable=False),  # {"eta": ts of the estimate sent, "arriving": ts, ...}
)
Index("ix_deliveries_tenant_order", deliveries.c.tenant_id, deliveries.c.order_ref, unique=True)

hub_keys = Table(
    "hub_keys",
    metadata,
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), primary_key=True),
    Column("key_id", String(16), nullable=False),
    Column("public_key", String(64), nullable=False),
    Column("first_seen", Float, nullable=False),
)

pods = Table(
    "pods",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), nullable=False),
    Column("order_ref", String(64), nullable=False),
    Column("ts", Float, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("exceptions", JSON, nullable=False),
    Column("record", JSON, nullable=False),  # as signed: re-verifiable with the pinned key
    Column("received", Float, nullable=False),
    Column("note", Text),
)
Index("ix_pods_tenant_order", pods.c.tenant_id, pods.c.order_ref)

driver_links = Table(
    "driver_links",
    metadata,
    Column("token_sha256", String(64), primary_key=True),  # the token itself is only in the URL
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), nullable=False),
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=False),
)

# The customer's and the dispatcher's webhooks a proof of delivery causes, written in the same
# transaction as the POD (revision ``pod_outbox``): a batch rolled back leaves none, a batch
# retried after a rollback writes them once; ``PodOutbox`` hands each row to the webhook sender
# once (claimed by setting ``sent``), with the row's id as the delivery id receivers dedupe on.
pod_outbox = Table(
    "pod_outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),
    Column("kind", String(32), nullable=False),  # a webhook event kind (delivery_delivered, alert)
    Column("item", JSON, nullable=False),
    Column("created", Float, nullable=False),
    Column("sent", Float),  # when it was handed to the webhook sender; NULL: still to send
)
Index("ix_pod_outbox_sent", pod_outbox.c.sent, pod_outbox.c.id)
