"""Reservations held by the CSMS for a station that is offline, and each one's outcome.

A reservation made while its station is not connected is stored as ``queued`` and sent
(ReserveNow) when the station connects; a cancellation of a reservation the station holds, made
while it is offline, is ``cancel_queued`` until then. ``answer`` is the station's word
(ReserveNowStatus, or the CancelReservation / ReservationStatusUpdate status), ``sent`` when the
CSMS sent it, ``detail`` why it ended as it did (expired before the station connected, ...).

Revision ID: swap_0003
Revises: swap_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "swap_0003"
down_revision = "swap_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("swap_reservations") as batch:
        batch.add_column(sa.Column("answer", sa.String(length=24), nullable=True))
        batch.add_column(sa.Column("sent", sa.Float(), nullable=True))
        batch.add_column(sa.Column("updated", sa.Float(), nullable=True))
        batch.add_column(sa.Column("detail", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("swap_reservations") as batch:
        batch.drop_column("detail")
        batch.drop_column("updated")
        batch.drop_column("sent")
        batch.drop_column("answer")
