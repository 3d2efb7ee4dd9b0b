"""accounts.reserved_cash: cash held by resting buy orders, kept in the account row

Summing every open buy order on each placement made order entry O(open orders); the reservation
is now maintained in the same transaction as each order change.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column("reserved_cash", sa.String(40), nullable=False, server_default="0")
        )
    # Existing resting buy orders keep their reservation across the upgrade.
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT user_id, qty, filled_qty, limit_price FROM orders WHERE side = 'buy' "
            "AND type = 'limit' AND status IN ('accepted', 'new', 'partially_filled', "
            "'pending_cancel')"
        )
    ).fetchall()
    from decimal import Decimal

    reserved: dict[str, Decimal] = {}
    for user_id, qty, filled, limit in rows:
        reserved[user_id] = reserved.get(user_id, Decimal(0)) + (
            (Decimal(qty) - Decimal(filled)) * Decimal(limit)
        )
    for user_id, amount in reserved.items():
        conn.execute(
            sa.text("UPDATE accounts SET reserved_cash = :r WHERE user_id = :u"),
            {"r": format(amount, "f"), "u": user_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("reserved_cash")
