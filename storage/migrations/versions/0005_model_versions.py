"""model versions: which exact model answered (model_version; generation.model_version_id,
probe.model_version_id)

Existing generations and probes keep no version (NULL): the results count them with their
model's current version until a second version of the model is seen.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("identity", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("details_json", sa.Text(), nullable=False),
        sa.Column("first_seen", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["model.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_id", "identity"),
    )
    op.create_index("ix_model_version_model_id", "model_version", ["model_id"], unique=False)
    for table in ("generation", "probe"):
        # Plain DDL (no batch rebuild): SQLite adds a column with its foreign key in SQL.
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE {table} ADD COLUMN model_version_id INTEGER "
                       "REFERENCES model_version (id)")  # fmt: skip
        else:
            column = sa.Column(
                "model_version_id", sa.Integer(), sa.ForeignKey("model_version.id"), nullable=True
            )
            op.add_column(table, column)
        op.create_index(f"ix_{table}_model_version_id", table, ["model_version_id"])


def downgrade() -> None:
    for table in ("probe", "generation"):
        op.drop_index(f"ix_{table}_model_version_id", table_name=table)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("model_version_id")
    op.drop_index("ix_model_version_model_id", table_name="model_version")
    op.drop_table("model_version")
