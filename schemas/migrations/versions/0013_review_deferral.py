"""A deferred review is visible (who deferred it, when and why); a look-up by identity code is logged (issue 11).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08

Until now "defer" was written only to the access log, and a deferred review looked
like any other open one. `review_deferral` keeps each deferral: the review, the
steward, the time and the reason (never a personal value). The review itself stays
`open` in `review_queue`: a deferred review is undecided, so it still holds its
customers off the marketing list (`marketing_doubt` reads `status = 'open'`) and a
steward can accept or reject it later. Its deferral rows stay as its history.

The access log's actions gain `find_by_code`: a steward looked a person up by
personal identity code for a rights request (`/find`). The row holds the customer
ids found (or none) and the reason, never the code.

Two indexes on `customer` serve the overview page at a million customers: by
`created_at` (new customers per night: a range count each) and on the few erased
customers (`erased_at IS NOT NULL`; live customers = all - merged - erased + both).

Self-contained (one new table, the access log's action check, two indexes), so it
can be renumbered if another branch also adds a 0013: change `revision`/`down_revision`
only (if that branch also widens the action check, merge the two lists).

Frozen: types spelled out here, not imported.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: Union[str, Sequence[str], None] = "0012"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


ACTIONS_0012 = ("view_customer", "view_review", "view_quarantine", "reveal", "decide_review", "defer_review",
                "unmerge", "release", "dismiss", "export", "rectify", "erase", "erase_dry_run", "cli_unmask")
ACTIONS = ACTIONS_0012 + ("find_by_code",)


def _action_check(actions: tuple[str, ...]) -> str:
    return "(" + " OR ".join(f"action = '{a}'" for a in actions) + ")"


def _set_action_check(actions: tuple[str, ...], *, not_valid: bool = False) -> None:
    name = op.f("ck_access_log_action")
    if op.get_bind().dialect.name == "postgresql":
        # ALTER, not a copy: the append-only trigger never fires. NOT VALID on the way down keeps
        # rows of the newer action (the log is never rewritten) and checks every new row.
        op.execute(f"ALTER TABLE access_log DROP CONSTRAINT {name}")
        op.execute(f"ALTER TABLE access_log ADD CONSTRAINT {name} CHECK {_action_check(actions)}"
                   + (" NOT VALID" if not_valid else ""))
        return
    with op.batch_alter_table("access_log", recreate="always") as batch:  # SQLite: the table is copied
        batch.drop_constraint(name, type_="check")
        batch.create_check_constraint(name, sa.text(_action_check(actions)))


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
    _set_action_check(ACTIONS)
    op.create_index("ix_customer_created_at", "customer", ["created_at"])
    op.create_index("ix_customer_erased_at", "customer", ["erased_at"],
                    sqlite_where=sa.text("erased_at IS NOT NULL"), postgresql_where=sa.text("erased_at IS NOT NULL"))
    if op.get_bind().dialect.name == "postgresql":
        # Default privileges (0003) cover tables made by the role that ran it; say it outright.
        op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON review_deferral TO register_loader, register_steward")
        op.execute("GRANT USAGE, SELECT ON SEQUENCE review_deferral_deferral_id_seq "
                   "TO register_loader, register_steward")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        found = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM access_log WHERE action = 'find_by_code'"))
        if found.scalar_one():
            raise RuntimeError("access_log holds find_by_code rows: 0012's action check would refuse them "
                               "(the log is never rewritten); keep 0013")
    op.drop_index("ix_customer_erased_at", table_name="customer")
    op.drop_index("ix_customer_created_at", table_name="customer")
    _set_action_check(ACTIONS_0012, not_valid=True)
    op.drop_index("ix_review_deferral_review_id_deferred_at", table_name="review_deferral")
    op.drop_table("review_deferral")
