"""subject result batches

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 00:55:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('compute_job_subject_batches',
    sa.Column('job_id', sa.String(length=255), nullable=False),
    sa.Column('results', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('job_id')
    )


def downgrade() -> None:
    op.drop_table('compute_job_subject_batches')
