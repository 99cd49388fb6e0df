"""The disclosure log: what the register gave to whom, when, why and on what basis.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

- Table `disclosure`: one row per disclosure (a marketing extract published, a
  subject access answered), with its recipient, purpose, legal basis, time and maker,
  how many customers it named, which (a compressed list of customer ids: a nightly
  extract names hundreds of thousands, so not a row each), and details: products,
  rows per product and the files' checksums. Never a personal value.
  Read and written by the loader and the steward (the default privileges of 0003);
  not by the analyst or the marketing role.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: Union[str, Sequence[str], None] = "0009"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

KIND_CHECK = "(kind = 'marketing_extract' OR kind = 'subject_access' OR kind = 'erasure_report')"


def upgrade() -> None:
    op.create_table(
        "disclosure",
        sa.Column("disclosure_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("disclosed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disclosed_by", sa.String(length=100), nullable=False, comment="the run id, or the steward"),
        sa.Column("customer_count", sa.Integer(), nullable=False),
        sa.Column("customer_ids", sa.LargeBinary(), nullable=False,
                  comment="the customer ids disclosed: sorted, delta-encoded int64, zlib (disclosures.encode_ids)"),
        sa.Column("details", sa.JSON(), nullable=False,
                  comment="products, rows per product, file checksums; counts only"),
        sa.CheckConstraint(KIND_CHECK, name="kind"),
        sa.PrimaryKeyConstraint("disclosure_id", name="pk_disclosure"),
    )
    op.create_index("ix_disclosure_disclosed_at", "disclosure", ["disclosed_at"])


def downgrade() -> None:
    op.drop_index("ix_disclosure_disclosed_at", table_name="disclosure")
    op.drop_table("disclosure")
