"""Landed files skipped as duplicates are recorded.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

A file whose bytes its channel already loaded (a re-sent identical export under
another name) is skipped: its records are the earlier file's. Until now it left no
trace. `intake_file_duplicate` records it once per (channel, checksum, file name),
with the earlier file (`duplicate_of_intake_file_id`) and when a run first saw it
(issue 12). `intake_file` and its counts are unchanged: a duplicate is not read.

Frozen: types spelled out here, not imported.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: Union[str, Sequence[str], None] = "0010"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

CHANNEL_CHECK = ("(channel = 'web' OR channel = 'phone' OR channel = 'mail' OR channel = 'email'"
                 " OR channel = 'in_person')")


def upgrade() -> None:
    op.create_table(
        "intake_file_duplicate",
        sa.Column("duplicate_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False, comment="sha256 of the file's bytes, hex"),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("duplicate_of_intake_file_id", sa.Integer(), nullable=False,
                  comment="the earlier file with the same channel and checksum"),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False, comment="when a run first saw it"),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.CheckConstraint(CHANNEL_CHECK, name=op.f("ck_intake_file_duplicate_channel")),
        sa.ForeignKeyConstraint(["duplicate_of_intake_file_id"], ["intake_file.intake_file_id"],
                                name=op.f("fk_intake_file_duplicate_duplicate_of_intake_file_id_intake_file")),
        sa.PrimaryKeyConstraint("duplicate_id", name=op.f("pk_intake_file_duplicate")),
        sa.UniqueConstraint("channel", "checksum", "file_name",
                            name=op.f("uq_intake_file_duplicate_channel_checksum_file_name")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Default privileges cover tables made by the role that ran 0003; say it outright.
        op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON intake_file_duplicate "
                   "TO register_loader, register_steward")
        op.execute("GRANT USAGE, SELECT ON SEQUENCE intake_file_duplicate_duplicate_id_seq "
                   "TO register_loader, register_steward")


def downgrade() -> None:
    op.drop_table("intake_file_duplicate")
