"""initial schema: users, accounts, orders, positions, fills

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

DEC = sa.String(40)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), nullable=False, unique=True),
        sa.Column("account_number", sa.String(16), nullable=False, unique=True),
        sa.Column("cash", DEC, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("client_order_id", sa.String(48), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("time_in_force", sa.String(8), nullable=False),
        sa.Column("qty", DEC, nullable=False),
        sa.Column("limit_price", DEC, nullable=True),
        sa.Column("filled_qty", DEC, nullable=False),
        sa.Column("filled_avg_price", DEC, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("submitted_at", TS, nullable=False),
        sa.Column("filled_at", TS, nullable=True),
        sa.Column("canceled_at", TS, nullable=True),
        sa.Column("expired_at", TS, nullable=True),
        sa.Column("reject_reason", sa.String(200), nullable=True),
        sa.UniqueConstraint("user_id", "client_order_id", name="uq_orders_user_client_order_id"),
    )
    op.create_index("ix_orders_user_created", "orders", ["user_id", "created_at"])
    op.create_index("ix_orders_status", "orders", ["status"])
    op.create_table(
        "positions",
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("symbol", sa.String(16), primary_key=True),
        sa.Column("qty", DEC, nullable=False),
        sa.Column("cost_basis", DEC, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "fills",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("order_id", sa.String(36), sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("qty", DEC, nullable=False),
        sa.Column("price", DEC, nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_fills_order", "fills", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_fills_order", table_name="fills")
    op.drop_table("fills")
    op.drop_table("positions")
    op.drop_index("ix_orders_status", table_name="orders")
    op.drop_index("ix_orders_user_created", table_name="orders")
    op.drop_table("orders")
    op.drop_table("accounts")
    op.drop_table("users")
