"""Identity resolution: the matcher's blocking index and merged customers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BIG_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.add_column(sa.Column(
            "merged_into", sa.Integer(), nullable=True,
            comment="the surviving customer_id once merged (customer_merge has the history); null while active"))
    op.create_table(
        "match_key",
        sa.Column("blocking_key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("source_record_pk", BIG_KEY, autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(["source_record_pk"], ["source_record.source_record_pk"],
                                name="fk_match_key_source_record_pk_source_record", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("blocking_key", "source_record_pk", name="pk_match_key"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_match_key_source_record_pk", "match_key", ["source_record_pk"])


def downgrade() -> None:
    op.drop_index("ix_match_key_source_record_pk", table_name="match_key")
    op.drop_table("match_key")
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("merged_into")
