"""The swap tables (SQLAlchemy 2 Core), kept apart from the fleet's own metadata.

They live in the fleet's database and point at its ``tenants`` and ``vehicles``, but have their
own Alembic scripts (``anycar/swap/migrations``, version table ``alembic_version_swap``), so the
swap room can be migrated, shipped or dropped without touching the fleet's revision chain. These
tables are the mirror of the latest swap revision; a test compares them with the migrated schema.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()
BIG = BigInteger().with_variant(Integer, "sqlite")

# stand-ins for the fleet's tables the swap tables point at (never created from here)
Table("tenants", metadata, Column("id", Integer, primary_key=True))
Table("vehicles", metadata, Column("id", Integer, primary_key=True))

stations = Table(
    "swap_stations",
    metadata,
    Column("id", String(48), primary_key=True),  # the OCPP identity (last path segment of the URL)
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),  # the operator
    Column("password_hash", String(64)),  # SHA-256 of a 192-bit minted password (profile 2)
    Column("security_profile", Integer, nullable=False),  # 2: TLS + basic auth, 3: client certificate
    Column("layout", String(64), nullable=False),
    Column("grid_limit_kw", Float, nullable=False),
    Column("tariff", JSON),  # 24 prices per kWh by UTC hour, or null
    Column("online", Boolean, nullable=False),
    Column("last_seen", Float),
    Column("boot_reason", String(32)),
    Column("vendor", String(50)),
    Column("model", String(50)),
    Column("firmware", String(50)),
    Column("firmware_status", String(40)),
    Column("clock_skew_s", Float),
    Column("created", Float, nullable=False),
)

slots = Table(
    "swap_slots",
    metadata,
    Column("station_id", String(48), ForeignKey("swap_stations.id"), primary_key=True),
    Column("evse_id", Integer, primary_key=True),
    Column(
        "status", String(16), nullable=False
    ),  # OCPP ConnectorStatus: Available Occupied Reserved Unavailable Faulted
    Column("updated", Float, nullable=False),
)

packs = Table(
    "swap_packs",
    metadata,
    Column("serial", String(50), primary_key=True),
    Column("chemistry", String(16), nullable=False),
    Column("capacity_kwh", Float, nullable=False),
    Column("soh", Float, nullable=False),
    Column("soc", Float, nullable=False),
    Column("cycles", Float, nullable=False),  # equivalent full cycles (sum of discharged SoC / 100)
    Column("state", String(16), nullable=False),  # charging ready faulty in_vehicle retired unknown
    Column("station_id", String(48), ForeignKey("swap_stations.id")),
    Column("evse_id", Integer),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id")),
    Column("updated", Float, nullable=False),
)
Index("ix_swap_packs_station", packs.c.station_id, packs.c.state)

pack_history = Table(
    "swap_pack_history",
    metadata,
    Column("id", BIG, primary_key=True),
    Column("serial", String(50), ForeignKey("swap_packs.serial"), nullable=False),
    Column("ts", Float, nullable=False),
    Column(
        "event", String(24), nullable=False
    ),  # registered into_slot out_of_slot into_vehicle retired state
    Column("station_id", String(48)),
    Column("evse_id", Integer),
    Column("vehicle_id", Integer),
    Column("soc", Float),
    Column("soh", Float),
    Column("swap_id", Integer),
    Column("detail", Text),
)
Index("ix_swap_pack_history_serial_ts", pack_history.c.serial, pack_history.c.ts)

id_tokens = Table(
    "swap_id_tokens",
    metadata,
    Column("token", String(255), primary_key=True),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), nullable=False),
    Column("revoked", Boolean, nullable=False),
    Column("created", Float, nullable=False),
)

reservations = Table(
    "swap_reservations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # the OCPP reservation id
    Column("station_id", String(48), ForeignKey("swap_stations.id"), nullable=False),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), nullable=False),
    Column("token", String(255), nullable=False),
    Column("evse_id", Integer),
    Column("expires", Float, nullable=False),
    # queued (held: the station is offline) pending (sent, no answer yet) active rejected
    # cancel_queued (cancelled while the station is offline) cancelled used expired
    Column("status", String(16), nullable=False),
    Column("created", Float, nullable=False),
    Column(
        "answer", String(24)
    ),  # the station's word: ReserveNow / CancelReservation / ReservationStatusUpdate
    Column("sent", Float),  # when the CSMS sent the ReserveNow
    Column("updated", Float),
    Column("detail", Text),  # why it is or ended as it is
)
Index("ix_swap_reservations_station", reservations.c.station_id, reservations.c.status)

swaps = Table(
    "swap_swaps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # the OCPP requestId
    Column("station_id", String(48), ForeignKey("swap_stations.id"), nullable=False),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id"), nullable=False),
    Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False),  # billed: the vehicle's
    Column("reservation_id", Integer),
    Column("state", String(16), nullable=False),  # requested rejected done timeout aborted disputed
    Column("requested", Float, nullable=False),
    Column("accepted", Float),
    Column("in_ts", Float),  # old pack into the station (BatteryIn)
    Column("out_ts", Float),  # charged pack out of the station (BatteryOut)
    Column("finished", Float),
    Column("pack_old", String(50)),
    Column("pack_new", String(50)),
    Column("soc_old", Float),
    Column("soc_new", Float),
    Column("energy_kwh", Float),
    Column("amount", Float),
    Column("currency", String(3)),
    Column("reason", Text),
    # swap-vehicle: the vehicle's own word on the pack it now carries (anycar.swap.reconcile)
    Column("reconciled", String(16)),  # ok mismatch missing; null: not settled yet
    Column("vehicle_pack", String(50)),  # the serial the vehicle reported
    Column("reconciled_ts", Float),
)
Index("ix_swap_swaps_station_requested", swaps.c.station_id, swaps.c.requested)
Index("ix_swap_swaps_tenant", swaps.c.tenant_id, swaps.c.requested)

alerts = Table(
    "swap_alerts",
    metadata,
    Column("id", BIG, primary_key=True),
    Column("ts", Float, nullable=False),
    Column("station_id", String(48)),
    Column(
        "kind", String(32), nullable=False
    ),  # pack_elsewhere unknown_pack duplicate clock_skew offline_mid_swap ...
    Column("detail", Text, nullable=False),
    Column("swap_id", Integer),
)
Index("ix_swap_alerts_ts", alerts.c.ts)

# ops-console: where a station stands, for the fleet map (set by the operator, PUT /api/stations/{id}/site)
sites = Table(
    "swap_sites",
    metadata,
    Column("station_id", String(48), ForeignKey("swap_stations.id"), primary_key=True),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("name", String(80), nullable=False),
    Column("updated", Float, nullable=False),
)

SWAP_TABLES = frozenset(t.name for t in metadata.sorted_tables if t.name.startswith("swap_"))
