"""reservations: the store-reservation projection (click & reserve, click & collect pickup)

Revision ID: 0003
Revises: 0005 (re-chained after main's 0002, 0004, 0005)
Create Date: 2026-11-23 05:00:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: Union[str, None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('reservations',
    sa.Column('reservation_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('store_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('order_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('snapshot', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('reservation_id')
    )
    op.create_index(op.f('ix_reservations_store_id'), 'reservations', ['store_id'], unique=False)
    op.create_index(op.f('ix_reservations_phone'), 'reservations', ['phone'], unique=False)
    op.create_index(op.f('ix_reservations_order_id'), 'reservations', ['order_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_reservations_order_id'), table_name='reservations')
    op.drop_index(op.f('ix_reservations_phone'), table_name='reservations')
    op.drop_index(op.f('ix_reservations_store_id'), table_name='reservations')
    op.drop_table('reservations')
