"""pair kinds and gold pairs: rating_pair.kind, gold_answer, decoy, decoy_text; notice table

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rating_pair", schema=None) as batch_op:
        # Existing pairs were all drawn when their round opened: 'round'.
        batch_op.add_column(
            sa.Column(
                "kind",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="round",
            )
        )
        batch_op.add_column(
            sa.Column("gold_answer", sqlmodel.sql.sqltypes.AutoString(length=1), nullable=True)
        )
        batch_op.add_column(
            sa.Column("decoy", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch_op.add_column(sa.Column("decoy_text", sa.Text(), nullable=True))
    op.create_table(
        "notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("notice")
    with op.batch_alter_table("rating_pair", schema=None) as batch_op:
        batch_op.drop_column("decoy_text")
        batch_op.drop_column("decoy")
        batch_op.drop_column("gold_answer")
        batch_op.drop_column("kind")
