"""comments: raters' own words on a pair (vote_comment, immutable; the newest per rater wins)

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-07 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vote_comment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("rater_id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("event_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["pair_id"], ["rating_pair.id"]),
        sa.ForeignKeyConstraint(["rater_id"], ["rater.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_key"),
    )
    op.create_index("ix_vote_comment_pair_id", "vote_comment", ["pair_id"])
    op.create_index("ix_vote_comment_rater_id", "vote_comment", ["rater_id"])
    op.create_index("ix_vote_comment_pair_rater", "vote_comment", ["pair_id", "rater_id"])


def downgrade() -> None:
    op.drop_index("ix_vote_comment_pair_rater", table_name="vote_comment")
    op.drop_index("ix_vote_comment_rater_id", table_name="vote_comment")
    op.drop_index("ix_vote_comment_pair_id", table_name="vote_comment")
    op.drop_table("vote_comment")
