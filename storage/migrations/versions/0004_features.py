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
    with op.batch_alter_table("user_context", schema=None) as batch_op:
        batch_op.add_column(sa.Column("experiment_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("slice", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
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
    with op.batch_alter_table("user_context", schema=None) as batch_op:
        batch_op.drop_index("ix_user_context_key")
        batch_op.create_index(batch_op.f("ix_user_context_key"), ["key"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_user_context_experiment_id"), ["experiment_id"], unique=False
        )
        batch_op.create_foreign_key(
            "fk_user_context_experiment_id", "experiment", ["experiment_id"], ["id"]
        )
        batch_op.create_unique_constraint(
            "uq_user_context_experiment_key", ["experiment_id", "key"]
        )
    with op.batch_alter_table("generation", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "source",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="generated",
            )
        )
        batch_op.add_column(sa.Column("meta_json", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generation", schema=None) as batch_op:
        batch_op.drop_column("meta_json")
        batch_op.drop_column("source")
    with op.batch_alter_table("user_context", schema=None) as batch_op:
        batch_op.drop_constraint("uq_user_context_experiment_key", type_="unique")
        batch_op.drop_constraint("fk_user_context_experiment_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_user_context_experiment_id"))
        batch_op.drop_index(batch_op.f("ix_user_context_key"))
        batch_op.create_index("ix_user_context_key", ["key"], unique=True)
        batch_op.drop_column("slice")
        batch_op.drop_column("experiment_id")
