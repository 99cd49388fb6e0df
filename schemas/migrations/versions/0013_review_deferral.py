"""A deferred review is visible: who deferred it, when and why (issue 11).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08

Until now "defer" was written only to the access log, and a deferred review looked
like any other open one. `review_deferral` keeps each deferral: the review, the
steward, the time and the reason (never a personal value). The review itself stays
`open` in `review_queue`: a deferred review is undecided, so it still holds its
customers off the marketing list (`marketing_doubt` reads `status = 'open'`) and a
steward can accept or reject it later. Its deferral rows stay as its history.

Self-contained (one new table, nothing else touched), so it can be renumbered if
another branch also adds a 0013: change `revision`/`down_revision` only.

Frozen: types spelled out here, not imported.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: Union[str, Sequence[str], None] = "0012"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "review_deferral",
        sa.Column("deferral_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("deferred_by", sa.String(length=100), nullable=False),
        sa.Column("deferred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, comment="the steward's reason; never a personal value"),
        sa.ForeignKeyConstraint(["review_id"], ["review_queue.review_id"],
                                name=op.f("fk_review_deferral_review_id_review_queue")),
        sa.PrimaryKeyConstraint("deferral_id", name=op.f("pk_review_deferral")),
    )
    op.create_index("ix_review_deferral_review_id_deferred_at", "review_deferral", ["review_id", "deferred_at"])
    if op.get_bind().dialect.name == "postgresql":
        # Default privileges (0003) cover tables made by the role that ran it; say it outright.
        op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON review_deferral TO register_loader, register_steward")
        op.execute("GRANT USAGE, SELECT ON SEQUENCE review_deferral_deferral_id_seq "
                   "TO register_loader, register_steward")


def downgrade() -> None:
    op.drop_index("ix_review_deferral_review_id_deferred_at", table_name="review_deferral")
    op.drop_table("review_deferral")
