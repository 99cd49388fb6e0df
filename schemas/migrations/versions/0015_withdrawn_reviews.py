"""A review the matcher no longer proposes is withdrawn, not left open (issue 12).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

The open review queue is part of what loading the days one at a time must leave as
loading them all at once (rule 3). Until now an entry, once opened, stayed open
whatever later loads learnt: loading the days in calendar order could leave a pair
open that a whole load never proposes, because a later record tied the two sides
together or another pair of their records became the stronger doubt. The resolver
now keeps the queue to what it proposes for the records it resolves: an open entry
it no longer proposes becomes `withdrawn` (kept, with when, for the audit trail and
its deferrals), and a withdrawn entry it proposes again is reopened.

This migration widens the status check by one value. Frozen: the lists are spelled out.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: Union[str, Sequence[str], None] = "0014"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

STATUSES_0001 = ("open", "accepted", "rejected")
STATUSES = STATUSES_0001 + ("withdrawn",)


def _status_check(statuses: tuple[str, ...]) -> str:
    return "(" + " OR ".join(f"status = '{s}'" for s in statuses) + ")"


def _set_status_check(statuses: tuple[str, ...]) -> None:
    name = op.f("ck_review_queue_status")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE review_queue DROP CONSTRAINT {name}")
        op.execute(f"ALTER TABLE review_queue ADD CONSTRAINT {name} CHECK {_status_check(statuses)}")
        return
    # SQLite: the table is copied and renamed back. The views that read it (`marketing_doubt`)
    # would refuse the rename of a table they name; the legacy rename leaves them alone, and
    # they read the new table under the old name.
    op.execute("PRAGMA legacy_alter_table = ON")
    try:
        with op.batch_alter_table("review_queue", recreate="always") as batch:
            batch.drop_constraint(name, type_="check")
            batch.create_check_constraint(name, sa.text(_status_check(statuses)))
    finally:
        op.execute("PRAGMA legacy_alter_table = OFF")


def upgrade() -> None:
    _set_status_check(STATUSES)


def downgrade() -> None:
    # A withdrawn entry was an open one the matcher stopped proposing: open it again, as the
    # resolver before this revision would have left it.
    op.execute("UPDATE review_queue SET status = 'open', decided_at = NULL WHERE status = 'withdrawn'")
    _set_status_check(STATUSES_0001)
