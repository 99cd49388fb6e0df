"""A file's content is identified within its channel, not across channels.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

Two channels can land byte-identical files (two empty exports, or the same
content exported twice by different systems): each is its own channel's file.
`intake_file`'s uniqueness moves from `checksum` to (`channel`, `checksum`).
"""
from typing import Sequence, Union

from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("intake_file") as batch:
        batch.drop_constraint("uq_intake_file_checksum", type_="unique")
        batch.create_unique_constraint("uq_intake_file_channel_checksum", ["channel", "checksum"])


def downgrade() -> None:
    with op.batch_alter_table("intake_file") as batch:
        batch.drop_constraint("uq_intake_file_channel_checksum", type_="unique")
        batch.create_unique_constraint("uq_intake_file_checksum", ["checksum"])
