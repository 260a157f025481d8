"""carrier rules per region, seeded with the defaults for the demo regions

The seed is part of the migration on purpose: it runs once, so an operator who later edits or
deactivates a rule is never overridden at the next start-up. The values are frozen here (a
migration must not change meaning when application code changes later).

Default zones (destination region → carrier, method, price in kopecks, days, cut-off at the
sending location; couriers.md "Per-region rules"):

* Moscow and its region: CDEK courier 1–2 days (cut-off 15:00), and 1 day from the online
  warehouse WH-ONLINE (evening pick-up, cut-off 18:00); CDEK pickup point 1–2 days; Russian
  Post 2–4 days (cut-off 12:00);
* European Russia 2–4 days, the Urals and Siberia 3–6, the Far East 5–9 (post roughly twice
  as long); Kazakhstan: CDEK only, 5–8 days.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 05:00:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: Union[str, None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

#: zone → regions
ZONES: dict[str, tuple[str, ...]] = {
    "moscow": ("RU-MOW", "RU-MOS"),
    "europe": ("RU-SPE", "RU-LEN", "RU-TA", "RU-NIZ", "RU-VOR", "RU-ROS", "RU-KDA", "RU-VGG", "RU-SAM", "RU-KGD"),
    "urals_siberia": ("RU-BA", "RU-PER", "RU-SVE", "RU-CHE", "RU-TYU", "RU-OMS", "RU-NVS", "RU-KYA"),
    "far_east": ("RU-IRK", "RU-KHA", "RU-PRI"),
    "kazakhstan": ("KZ-ALA", "KZ-AST", "KZ-SHY", "KZ-KAR"),
}

#: zone → (carrier, method, price kopecks, days_min, days_max, cutoff, from_location_ids)
RULES: dict[str, tuple[tuple[str, str, int, int, int, str, list[str] | None], ...]] = {
    "moscow": (
        ("cdek", "courier", 39_900, 1, 2, "15:00", None),
        ("cdek", "courier", 39_900, 1, 1, "18:00", ["WH-ONLINE"]),
        ("cdek", "pickup_point", 19_900, 1, 2, "15:00", None),
        ("post", "post", 29_900, 2, 4, "12:00", None),
    ),
    "europe": (
        ("cdek", "courier", 49_900, 2, 4, "15:00", None),
        ("cdek", "pickup_point", 29_900, 2, 4, "15:00", None),
        ("post", "post", 34_900, 4, 8, "12:00", None),
    ),
    "urals_siberia": (
        ("cdek", "courier", 59_900, 3, 6, "15:00", None),
        ("cdek", "pickup_point", 34_900, 3, 6, "15:00", None),
        ("post", "post", 39_900, 6, 12, "12:00", None),
    ),
    "far_east": (
        ("cdek", "courier", 79_900, 5, 9, "15:00", None),
        ("cdek", "pickup_point", 49_900, 5, 9, "15:00", None),
        ("post", "post", 49_900, 8, 16, "12:00", None),
    ),
    "kazakhstan": (
        ("cdek", "courier", 89_900, 5, 8, "15:00", None),
        ("cdek", "pickup_point", 59_900, 5, 8, "15:00", None),
    ),
}


def upgrade() -> None:
    table = op.create_table(
        "carrier_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("carrier", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("days_min", sa.Integer(), nullable=False),
        sa.Column("days_max", sa.Integer(), nullable=False),
        sa.Column("cutoff", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("from_location_ids", postgresql.ARRAY(sa.String(length=32)), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_carrier_rule_region"), "carrier_rule", ["region"], unique=False)
    op.bulk_insert(
        table,
        [
            {"region": region, "carrier": carrier, "method": method, "price": price, "currency": "RUB",
             "days_min": dmin, "days_max": dmax, "cutoff": cutoff, "from_location_ids": only, "active": True}
            for zone, regions in ZONES.items()
            for region in regions
            for carrier, method, price, dmin, dmax, cutoff, only in RULES[zone]
        ],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_carrier_rule_region"), table_name="carrier_rule")
    op.drop_table("carrier_rule")
