"""Analysts see no direct identifiers: `customer_masked` becomes pseudonymous, and the
contact details of `marketing_contacts` go to a marketing role of their own.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

- View `customer_masked` redefined: the customer id, birth year, postal code and post
  office (`city`), the channel the customer first came through, how many products it
  holds, whether an e-mail address, a phone number and a street address are held (not
  what they are), the marketing statement, whether the identity was verified, whether
  the customer is on the marketing list today, and when it was created and last
  changed. No name, no street address, no phone, no e-mail (0003 had them all).
- View `service_masked`: the products live customers hold, with when each was first
  and last seen; no metering point.
- On PostgreSQL, the group role `register_marketing` (NOLOGIN, like the other three)
  reads `marketing_contacts` and nothing else; `register_analyst` no longer reads it,
  and reads `customer_masked` and `service_masked` only. Views run with their owner's
  rights: `customer_masked` can tell who is on the list without the analyst reading it.

Frozen: the view definitions are spelled out here, not imported.
"""
from typing import Sequence, Union

from alembic import op

revision: str = "0009"
down_revision: Union[str, Sequence[str], None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _birth_year(dialect: str) -> str:
    if dialect == "postgresql":
        return "CAST(EXTRACT(YEAR FROM c.birth_date) AS INTEGER)"
    return "CAST(strftime('%Y', c.birth_date) AS INTEGER)"


def _customer_masked_0003(dialect: str) -> str:
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


def _customer_masked(dialect: str) -> str:
    return f"""
CREATE VIEW customer_masked AS
SELECT c.customer_id,
       {_birth_year(dialect)} AS birth_year,
       c.postal_code, c.city,
       (SELECT r.channel FROM source_record r WHERE r.customer_id = c.customer_id
        ORDER BY r.observed_at, r.source_record_pk LIMIT 1) AS first_channel,
       (SELECT COUNT(DISTINCT s.product) FROM service s WHERE s.customer_id = c.customer_id) AS products,
       c.email IS NOT NULL AS has_email,
       c.phone IS NOT NULL AS has_phone,
       c.street_address IS NOT NULL AS has_street_address,
       c.marketing_prohibited, c.identity_verified,
       c.customer_id IN (SELECT m.customer_id FROM marketing_contacts m) AS on_marketing_list,
       c.created_at, c.updated_at
FROM customer c
WHERE c.merged_into IS NULL AND c.erased_at IS NULL
"""


SERVICE_MASKED = """
CREATE VIEW service_masked AS
SELECT s.customer_id, s.product, s.first_seen, s.last_seen
FROM service s
JOIN customer c ON c.customer_id = s.customer_id
WHERE c.merged_into IS NULL AND c.erased_at IS NULL
"""


def _create_marketing_role() -> None:
    op.execute("""
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'register_marketing') THEN
    CREATE ROLE register_marketing NOLOGIN;
  END IF;
END $$""")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute("DROP VIEW customer_masked")
    op.execute(_customer_masked(dialect))
    op.execute(SERVICE_MASKED)
    if dialect == "postgresql":
        _create_marketing_role()
        op.execute("GRANT USAGE ON SCHEMA public TO register_marketing")
        op.execute("GRANT SELECT ON marketing_contacts TO register_marketing")
        op.execute("REVOKE ALL ON marketing_contacts FROM register_analyst")
        # Default privileges (0003) gave the new views to the loader and steward with
        # write rights: a view is read-only.
        op.execute("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON customer_masked, service_masked "
                   "FROM register_loader, register_steward")
        op.execute("GRANT SELECT ON customer_masked, service_masked TO register_analyst")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute("DROP VIEW service_masked")
    op.execute("DROP VIEW customer_masked")
    op.execute(_customer_masked_0003(dialect))
    if dialect == "postgresql":
        # Roles are shared by every database of the cluster: revoke here, never drop.
        op.execute("REVOKE ALL ON marketing_contacts FROM register_marketing")
        op.execute("REVOKE USAGE ON SCHEMA public FROM register_marketing")
        op.execute("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON customer_masked FROM register_loader, register_steward")
        op.execute("GRANT SELECT ON customer_masked, marketing_contacts TO register_analyst")
