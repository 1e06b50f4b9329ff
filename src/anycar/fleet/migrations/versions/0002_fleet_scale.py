"""Storage at scale: per-tenant retention, the dedup watermark, and on PostgreSQL positions and
signal values range-partitioned by ts.

On PostgreSQL the existing table is renamed ``<name>_before`` and attached as the partition of
every time before the start of the migration's UTC day (no row is copied; its index is reused as
the partition's), a ``<name>_default`` partition takes what no day partition covers, and
``anycar.fleet.partitions`` makes one partition per UTC day ahead of time. The partitioned
parent has no primary key: a unique index would have to include ts, costs every insert a second
index, and nothing addresses a position by its id. SQLite keeps plain tables (see
docs/fleet.md, "Storage at scale").

Revision ID: 0002_fleet_scale
Revises: 0001
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0002_fleet_scale"
down_revision = "0001"
branch_labels = None
depends_on = None

DAY = 86_400
COLUMNS = {
    "positions": """
        id bigint NOT NULL DEFAULT nextval('positions_id_seq'),
        vehicle_id integer NOT NULL REFERENCES vehicles (id),
        ts double precision NOT NULL,
        lat double precision NOT NULL,
        lon double precision NOT NULL,
        speed double precision,
        heading double precision,
        source varchar(16) NOT NULL""",
    "signal_values": """
        id bigint NOT NULL DEFAULT nextval('signal_values_id_seq'),
        vehicle_id integer NOT NULL REFERENCES vehicles (id),
        path varchar(256) NOT NULL,
        ts double precision NOT NULL,
        num double precision,
        value json""",
}


def _partition(name: str) -> None:
    start = float(int(time.time()) // DAY * DAY)  # the start of today (UTC)
    op.execute(f"ALTER TABLE {name} RENAME TO {name}_before")
    op.execute(f"ALTER INDEX ix_{name}_vehicle_ts RENAME TO ix_{name}_before_vehicle_ts")
    op.execute(f"ALTER SEQUENCE {name}_id_seq OWNED BY NONE")
    op.execute(f"ALTER TABLE {name}_before ALTER COLUMN id SET DEFAULT nextval('{name}_id_seq')")
    op.execute(f"CREATE TABLE {name} ({COLUMNS[name]}) PARTITION BY RANGE (ts)")
    op.execute(f"ALTER SEQUENCE {name}_id_seq OWNED BY {name}.id")
    # a CHECK first makes ATTACH skip its own validating scan; the check is then redundant
    op.execute(f"ALTER TABLE {name}_before ADD CONSTRAINT {name}_before_range CHECK (ts < {start!r})")
    op.execute(f"ALTER TABLE {name} ATTACH PARTITION {name}_before FOR VALUES FROM (MINVALUE) TO ({start!r})")
    op.execute(f"ALTER TABLE {name}_before DROP CONSTRAINT {name}_before_range")
    op.execute(f"CREATE TABLE {name}_default PARTITION OF {name} DEFAULT")
    op.execute(f"CREATE INDEX ix_{name}_vehicle_ts ON {name} (vehicle_id, ts)")  # reuses the old one


def upgrade() -> None:
    op.create_table(
        "tenant_retention",
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("days", sa.Float, nullable=False),
    )
    op.create_table(
        "received_floor",
        sa.Column("vehicle", sa.String(64), primary_key=True),
        sa.Column("boot", sa.String(16), primary_key=True),
        sa.Column("floor", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        for name in COLUMNS:
            _partition(name)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in COLUMNS:  # back to one plain table holding every row
            op.execute(f"CREATE TABLE {name}_plain (LIKE {name} INCLUDING DEFAULTS)")
            op.execute(f"INSERT INTO {name}_plain SELECT * FROM {name}")  # nosec B608 # names from COLUMNS
            op.execute(f"ALTER SEQUENCE {name}_id_seq OWNED BY NONE")
            op.execute(f"DROP TABLE {name} CASCADE")
            op.execute(f"ALTER TABLE {name}_plain RENAME TO {name}")
            op.execute(f"ALTER TABLE {name} ADD PRIMARY KEY (id)")
            op.execute(f"ALTER TABLE {name} ADD FOREIGN KEY (vehicle_id) REFERENCES vehicles (id)")
            op.execute(f"ALTER SEQUENCE {name}_id_seq OWNED BY {name}.id")
            op.execute(f"CREATE INDEX ix_{name}_vehicle_ts ON {name} (vehicle_id, ts)")
    op.drop_table("received_floor")
    op.drop_table("tenant_retention")
