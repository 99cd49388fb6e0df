"""Analysts' views, PostgreSQL roles, and the record of people's rights.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

- `customer.erased_at`: set when a steward erases a customer (docs/register_rules.md rule 8);
  an erased customer keeps only its billing identity and leaves every analyst view.
- `ix_customer_merged_into`: a partial index of merged customers, so the resolver
  follows chains of merges without scanning every customer.
- `intake_file.records_erased`: accepted records of the file since erased, so the
  file's counts still add up (rule 1) after an erasure.
- `rights_request`: who accessed, corrected or erased what, when and why, with
  counts only: never the personal values themselves.
- `erased_record`: tombstones (hashed keys) of erased source records, so a re-sent
  submission does not bring an erased person back.
- Views `customer_masked` and `marketing_contacts` (the analysts' contract).
- On PostgreSQL, group roles `register_loader`, `register_analyst` and
  `register_steward` (NOLOGIN: a DBA grants them to login roles). The analyst role
  reads the two masked views and nothing else; views run with their owner's
  rights, so it needs no grant on the tables beneath them.

Frozen: the view definitions are spelled out here, not imported.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ROLES = ("register_loader", "register_analyst", "register_steward")
ANALYST_VIEWS = ("customer_masked", "marketing_contacts")
RIGHTS_ACTIONS_CHECK = "(action = 'access' OR action = 'rectification' OR action = 'erasure')"


def _birth_year(dialect: str) -> str:
    if dialect == "postgresql":
        return "CAST(EXTRACT(YEAR FROM c.birth_date) AS INTEGER)"
    return "CAST(strftime('%Y', c.birth_date) AS INTEGER)"


def _adult(dialect: str) -> str:
    # Age on the day the view is read: a birthday makes a minor an adult overnight.
    # PostgreSQL counts the day in Finland whatever the session's time zone; SQLite
    # has no time zones and counts the UTC day, which lags Finland's by 2-3 hours
    # (a new adult joins a few hours late, never a minor early). SQLite compares
    # years and month-days: its date('now', '-18 years') turns 29 February into
    # 1 March and would let in, on that day, someone turning 18 tomorrow.
    if dialect == "postgresql":
        return "c.birth_date <= CAST(CURRENT_TIMESTAMP AT TIME ZONE 'Europe/Helsinki' AS DATE) - INTERVAL '18 years'"
    return ("CAST(strftime('%Y', 'now') AS INTEGER) - CAST(strftime('%Y', c.birth_date) AS INTEGER)"
            " - (strftime('%m-%d', 'now') < strftime('%m-%d', c.birth_date)) >= 18")


def _customer_masked(dialect: str) -> str:
    return f"""
CREATE VIEW customer_masked AS
SELECT c.customer_id,
       {_birth_year(dialect)} AS birth_year,
       c.first_names, c.last_name,
       c.street_address, c.postal_code, c.city,
       c.phone, c.email,
       c.marketing_prohibited, c.identity_verified,
       c.created_at, c.updated_at
FROM customer c
WHERE c.merged_into IS NULL AND c.erased_at IS NULL
"""


def _marketing_contacts(dialect: str) -> str:
    # One row per customer and product held; a customer without a product has one
    # row with a null product. Not prohibited = the latest statement does not
    # prohibit (null: never stated either way), and no erased customer with the same
    # code kept a prohibition (an objection outlives the erasure of the contract it
    # was given under). Unknown birth date = not known adult.
    return f"""
CREATE VIEW marketing_contacts AS
SELECT c.customer_id,
       c.first_names, c.last_name,
       c.street_address, c.postal_code, c.city,
       c.email, c.phone,
       s.product
FROM customer c
LEFT JOIN (SELECT DISTINCT customer_id, product FROM service) s ON s.customer_id = c.customer_id
WHERE c.merged_into IS NULL
  AND c.erased_at IS NULL
  AND (c.marketing_prohibited IS NULL OR c.marketing_prohibited = {'FALSE' if dialect == 'postgresql' else '0'})
  AND NOT EXISTS (SELECT 1 FROM customer e
                  WHERE e.personal_id = c.personal_id AND e.erased_at IS NOT NULL
                    AND e.marketing_prohibited = {'TRUE' if dialect == 'postgresql' else '1'})
  AND c.birth_date IS NOT NULL
  AND {_adult(dialect)}
"""


def _create_roles() -> None:
    for role in ROLES:
        op.execute(f"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
    CREATE ROLE {role} NOLOGIN;
  END IF;
END $$""")
    op.execute("GRANT USAGE ON SCHEMA public TO register_loader, register_analyst, register_steward")
    # Loader: writes the register (the nightly job).
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO register_loader")
    op.execute("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO register_loader")
    # Steward: reads everything; decides reviews, rectifies, erases, purges.
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO register_steward")
    op.execute("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO register_steward")
    # Neither writes the migration state or through a view (the views are read-only contracts).
    op.execute("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version, golden_value_provenance, "
               f"{', '.join(ANALYST_VIEWS)} FROM register_loader, register_steward")
    # Analyst: the masked views and nothing else.
    op.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM register_analyst")
    op.execute(f"GRANT SELECT ON {', '.join(ANALYST_VIEWS)} TO register_analyst")
    # Tables made by later migrations get the loader's and steward's rights too.
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA public "
               "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO register_loader, register_steward")
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA public "
               "GRANT USAGE, SELECT ON SEQUENCES TO register_loader, register_steward")


def _drop_grants() -> None:
    # Roles are shared by every database of the cluster: revoke here, never drop.
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA public "
               "REVOKE ALL ON TABLES FROM register_loader, register_steward")
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA public "
               "REVOKE ALL ON SEQUENCES FROM register_loader, register_steward")
    op.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM register_loader, register_analyst, register_steward")
    op.execute("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM register_loader, register_steward")
    op.execute("REVOKE USAGE ON SCHEMA public FROM register_loader, register_analyst, register_steward")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("customer") as batch:
        batch.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True,
                                   comment="set when erased on the person's request; only the billing identity remains"))
    with op.batch_alter_table("intake_file") as batch:
        batch.add_column(sa.Column("records_erased", sa.Integer(), nullable=False, server_default="0",
                                   comment="accepted records of this file since erased (rule 8); counted inside records_accepted"))
    where = sa.text("merged_into IS NOT NULL")
    op.create_index("ix_customer_merged_into", "customer", ["merged_into"],
                    sqlite_where=where, postgresql_where=where)
    op.create_table(
        "rights_request",
        sa.Column("request_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True,
                  comment="no foreign key: the record outlives an erased prospect's customer row"),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("attribute", sa.String(length=40), nullable=True, comment="the column rectified"),
        sa.Column("reason", sa.Text(), nullable=True, comment="the steward's reason; never a personal value"),
        sa.Column("outcome", sa.JSON(), nullable=False, comment="counts of what was read, changed or removed"),
        sa.Column("decided_by", sa.String(length=100), nullable=False),
        sa.Column("performed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(RIGHTS_ACTIONS_CHECK, name="action"),
        sa.PrimaryKeyConstraint("request_id", name="pk_rights_request"),
    )
    op.create_index("ix_rights_request_customer_id", "rights_request", ["customer_id"])
    op.create_table(
        "erased_record",
        sa.Column("key_hash", sa.String(length=64), nullable=False,
                  comment="hex SHA-256 of channel, U+001F, source_record_id"),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", name="pk_erased_record"),
    )
    op.execute(_customer_masked(dialect))
    op.execute(_marketing_contacts(dialect))
    if dialect == "postgresql":
        _create_roles()


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        _drop_grants()
    op.execute("DROP VIEW marketing_contacts")
    op.execute("DROP VIEW customer_masked")
    op.drop_table("erased_record")
    op.drop_index("ix_rights_request_customer_id", table_name="rights_request")
    op.drop_table("rights_request")
    with op.batch_alter_table("intake_file") as batch:
        batch.drop_column("records_erased")
    op.drop_index("ix_customer_merged_into", table_name="customer")
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("erased_at")
