"""gpu_energy: what the GPU did during a probe batch or a sweep level (energy, J per output
token and per request, mean watts, utilization, memory), read from NVML or dcgm-exporter

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-07 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gpu_energy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("phase", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column("joules", sa.Float(), nullable=True),
        sa.Column("joules_per_output_token", sa.Float(), nullable=True),
        sa.Column("joules_per_request", sa.Float(), nullable=True),
        sa.Column("mean_watts", sa.Float(), nullable=True),
        sa.Column("util_pct", sa.Float(), nullable=True),
        sa.Column("memory_used_mib", sa.Float(), nullable=True),
        sa.Column("counter_resets", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["model.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_gpu_energy_model_id", "gpu_energy", ["model_id"])
    op.create_index("ix_gpu_energy_run_id", "gpu_energy", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_gpu_energy_run_id", table_name="gpu_energy")
    op.drop_index("ix_gpu_energy_model_id", table_name="gpu_energy")
    op.drop_table("gpu_energy")
