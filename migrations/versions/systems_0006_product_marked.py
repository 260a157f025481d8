"""product.marked: the ERP's flag of goods under mandatory Честный ЗНАК marking

Revision ID: systems_0006
Revises: 0003 (the current head: 0001 → 0002 → 0004 → 0005 → 0003)
Create Date: 2026-11-29 10:00:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = 'systems_0006'
down_revision: Union[str, None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('product', sa.Column('marked', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    op.drop_column('product', 'marked')
