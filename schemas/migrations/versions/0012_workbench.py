"""The stewards' workbench: personal accounts, the access log, unmerges and quarantine decisions.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

- `app_user`: personal accounts of `register web` (name, role steward|analyst|admin,
  an argon2id hash, disabled, created, failed-login bookkeeping for throttling).
- `access_log`: who looked at or acted on which customer, record, review or
  quarantine entry, when, how (web or cli) and with what reason. Ids only, never a
  value. Append-only: on PostgreSQL a trigger refuses every UPDATE and DELETE (for
  every role, the owner included) and the group roles get SELECT and INSERT only.
- `merge_record`: the records a merged customer held when it was merged (an unmerge
  gives them their old id back).
- `unmerge`: each steward's unmerge (records split back out of a customer).
- `quarantine_decision`: a quarantine entry released (corrected, through the
  normalisers and the matcher) or dismissed by a steward.

On PostgreSQL, `app_user` (password hashes) is the steward's alone: the loader does
not read it. The loader neither reads nor writes `access_log`.

Frozen: types spelled out here, not imported.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: Union[str, Sequence[str], None] = "0011"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ROLE_CHECK = "(role = 'steward' OR role = 'analyst' OR role = 'admin')"
ACTIONS = ("view_customer", "view_review", "view_quarantine", "reveal", "decide_review", "defer_review", "unmerge",
           "release", "dismiss", "export", "rectify", "erase", "erase_dry_run", "cli_unmask")
ACTION_CHECK = "(" + " OR ".join(f"action = '{a}'" for a in ACTIONS) + ")"
DECISION_CHECK = "(action = 'release' OR action = 'dismiss')"
BigKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'access_log is append-only: % refused', TG_OP;
END $$;
"""
APPEND_ONLY_TRIGGER = """
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
FOR EACH ROW EXECUTE FUNCTION access_log_append_only()
"""


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("user_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False,
                  comment="argon2id hash (argon2-cffi); never the password"),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0",
                  comment="wrong passwords since the last successful login"),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True,
                  comment="no login is tried before this time (throttling)"),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(ROLE_CHECK, name=op.f("ck_app_user_role")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("name", name=op.f("uq_app_user_name")),
    )
    op.create_table(
        "access_log",
        sa.Column("access_id", BigKey, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_name", sa.String(length=100), nullable=False,
                  comment="the web user, or the OS user (or --as) of the CLI"),
        sa.Column("via", sa.String(length=8), nullable=False, comment="web or cli"),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True,
                  comment="no foreign key: the log outlives an erased customer row"),
        sa.Column("source_record_pk", BigKey, nullable=True),
        sa.Column("review_id", sa.Integer(), nullable=True),
        sa.Column("quarantine_id", BigKey, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True,
                  comment="the reason given (at a reveal, a decision); never a personal value"),
        sa.CheckConstraint(ACTION_CHECK, name=op.f("ck_access_log_action")),
        sa.CheckConstraint("via = 'web' OR via = 'cli'", name=op.f("ck_access_log_via")),
        sa.PrimaryKeyConstraint("access_id", name=op.f("pk_access_log")),
    )
    op.create_index("ix_access_log_customer_id", "access_log", ["customer_id"])
    op.create_index("ix_access_log_user_name_at", "access_log", ["user_name", "at"])
    op.create_table(
        "merge_record",
        sa.Column("merge_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("source_record_pk", BigKey, autoincrement=False, nullable=False,
                  comment="no foreign key: an erasure deletes the record; the row then names nothing held"),
        sa.ForeignKeyConstraint(["merge_id"], ["customer_merge.merge_id"],
                                name=op.f("fk_merge_record_merge_id_customer_merge")),
        sa.PrimaryKeyConstraint("merge_id", "source_record_pk", name=op.f("pk_merge_record")),
    )
    op.create_table(
        "unmerge",
        sa.Column("unmerge_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False, comment="the customer the records were split from"),
        sa.Column("split_customer_id", sa.Integer(), nullable=False, comment="the customer the records went to"),
        sa.Column("restored", sa.Boolean(), nullable=False, comment="the split customer got its old id back"),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True,
                  comment="when the undone merge was made (a restored customer)"),
        sa.Column("records", sa.Integer(), nullable=False, comment="how many records were split out"),
        sa.Column("reason", sa.Text(), nullable=False, comment="the steward's reason; never a personal value"),
        sa.Column("decided_by", sa.String(length=100), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("unmerge_id", name=op.f("pk_unmerge")),
    )
    op.create_index("ix_unmerge_customer_id", "unmerge", ["customer_id"])
    op.create_index("ix_unmerge_split_customer_id", "unmerge", ["split_customer_id"])
    op.create_table(
        "quarantine_decision",
        sa.Column("quarantine_id", BigKey, autoincrement=False, nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("corrected_fields", sa.Text(), nullable=False,
                  comment="space-separated names of the raw fields the steward corrected; never the values"),
        sa.Column("intake_file_id", sa.Integer(), nullable=True,
                  comment="the steward's one-record intake file of a release"),
        sa.Column("reason", sa.Text(), nullable=False, comment="the steward's reason; never a personal value"),
        sa.Column("decided_by", sa.String(length=100), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(DECISION_CHECK, name=op.f("ck_quarantine_decision_action")),
        sa.ForeignKeyConstraint(["quarantine_id"], ["quarantine.quarantine_id"],
                                name=op.f("fk_quarantine_decision_quarantine_id_quarantine")),
        sa.ForeignKeyConstraint(["intake_file_id"], ["intake_file.intake_file_id"],
                                name=op.f("fk_quarantine_decision_intake_file_id_intake_file")),
        sa.PrimaryKeyConstraint("quarantine_id", name=op.f("pk_quarantine_decision")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Default privileges (0003) gave the new tables to the loader and the steward in full; say it outright.
        op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON merge_record, unmerge, quarantine_decision "
                   "TO register_loader, register_steward")
        op.execute("GRANT USAGE, SELECT ON SEQUENCE unmerge_unmerge_id_seq TO register_loader, register_steward")
        # Password hashes: the steward's (the web app's login role) alone.
        op.execute("REVOKE ALL ON app_user FROM register_loader")
        op.execute("REVOKE ALL ON SEQUENCE app_user_user_id_seq FROM register_loader")
        op.execute("REVOKE TRUNCATE, DELETE ON app_user FROM register_steward")
        op.execute("GRANT SELECT, INSERT, UPDATE ON app_user TO register_steward")
        op.execute("GRANT USAGE, SELECT ON SEQUENCE app_user_user_id_seq TO register_steward")
        # The access log: appended to, never changed. The loader has no business with it.
        op.execute("REVOKE ALL ON access_log FROM register_loader")
        op.execute("REVOKE ALL ON SEQUENCE access_log_access_id_seq FROM register_loader")
        op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON access_log FROM register_steward")
        op.execute("GRANT SELECT, INSERT ON access_log TO register_steward")
        op.execute("GRANT USAGE, SELECT ON SEQUENCE access_log_access_id_seq TO register_steward")
        op.execute(APPEND_ONLY)
        op.execute(APPEND_ONLY_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS access_log_append_only ON access_log")
        op.execute("DROP FUNCTION IF EXISTS access_log_append_only()")
    op.drop_table("quarantine_decision")
    op.drop_index("ix_unmerge_split_customer_id", table_name="unmerge")
    op.drop_index("ix_unmerge_customer_id", table_name="unmerge")
    op.drop_table("unmerge")
    op.drop_table("merge_record")
    op.drop_index("ix_access_log_user_name_at", table_name="access_log")
    op.drop_index("ix_access_log_customer_id", table_name="access_log")
    op.drop_table("access_log")
    op.drop_table("app_user")
