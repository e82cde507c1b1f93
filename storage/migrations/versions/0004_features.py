"""features: inputs belong to a feature (user_context.experiment_id, slice, unique per feature);
imported generations (generation.source, meta_json)

An existing database keeps its data as it was: its inputs are attached to the feature
(experiment) their prompts belong to, which is the built-in daily-pep-talk unless the config
named its experiment otherwise, and every stored generation is 'generated'.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No table is rebuilt (SQLite's batch mode would drop user_context, which prompts
    # reference): a column with its foreign key, indexes and a unique index are all plain DDL.
    if op.get_bind().dialect.name == "sqlite":  # Alembic adds no foreign key on SQLite; SQL does
        op.execute("ALTER TABLE user_context ADD COLUMN experiment_id INTEGER "
                   "REFERENCES experiment (id)")  # fmt: skip
    else:
        op.add_column(
            "user_context",
            sa.Column("experiment_id", sa.Integer(), sa.ForeignKey("experiment.id"), nullable=True),
        )
    op.add_column(
        "user_context",
        sa.Column("slice", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    )
    # Each input belongs to the feature its prompts were rendered for; an input with no
    # prompt yet goes to the only feature when there is exactly one.
    op.execute(
        "UPDATE user_context SET experiment_id = (SELECT MIN(prompt.experiment_id) FROM prompt "
        "WHERE prompt.user_context_id = user_context.id)"
    )
    op.execute(
        "UPDATE user_context SET experiment_id = (SELECT MIN(id) FROM experiment) "
        "WHERE experiment_id IS NULL AND (SELECT COUNT(*) FROM experiment) = 1"
    )
    op.drop_index("ix_user_context_key", table_name="user_context")
    op.create_index("ix_user_context_key", "user_context", ["key"], unique=False)
    op.create_index("ix_user_context_experiment_id", "user_context", ["experiment_id"])
    op.create_index(
        "uq_user_context_experiment_key", "user_context", ["experiment_id", "key"], unique=True
    )
    op.add_column(
        "generation",
        sa.Column(
            "source",
            sqlmodel.sql.sqltypes.AutoString(length=16),
            nullable=False,
            server_default="generated",
        ),
    )
    op.add_column("generation", sa.Column("meta_json", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generation", schema=None) as batch_op:
        batch_op.drop_column("meta_json")
        batch_op.drop_column("source")
    op.drop_index("uq_user_context_experiment_key", table_name="user_context")
    op.drop_index("ix_user_context_experiment_id", table_name="user_context")
    op.drop_index("ix_user_context_key", table_name="user_context")
    op.create_index("ix_user_context_key", "user_context", ["key"], unique=True)
    with op.batch_alter_table("user_context", schema=None) as batch_op:
        batch_op.drop_column("slice")
        batch_op.drop_column("experiment_id")
