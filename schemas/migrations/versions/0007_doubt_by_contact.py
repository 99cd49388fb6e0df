"""Doubt by contact point and by a prohibition no one withdrew: two more reasons the
marketing list leaves a customer out.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

Measured on held-out data (issue 8): most prohibited people still on the list are
splits whose "no marketing" record was not linked and tied by no review, and false
merges whose later consent came from someone else. The view `marketing_doubt`
gets two more reasons (its columns unchanged; `review_id` null for both):

- `prohibited_contact`: the customer's e-mail address or phone number, or its names
  (either way round) at its postal code, are those of a record held by another
  customer who prohibited direct marketing. A prohibition reaches the contact
  point it came from: whoever else is listed there, the message reaches the person
  who said no. `tied_customer_id` is that other customer.
- `prohibition_not_withdrawn`: one of the customer's own records prohibited direct
  marketing, no record at or after it with the same valid identity code withdrew
  it, and the machine linked some of the customer's records by probability (not a
  code, not a steward). The golden record keeps the latest statement (rule 6); when
  that statement is another record's, it may be another person's.
  `tied_customer_id` is the customer itself.

Neither is a review: a steward cannot dismiss them, only the data can (a record of
the prohibiting person withdrawing under its identity code, an erasure, a
rectification of the contact). Indexes make the view's lookups index probes:
`customer` by e-mail, by phone and by (last name, postal code), and the records
that prohibit by customer.

Frozen: the view definitions are spelled out here, not imported.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: Union[str, Sequence[str], None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _true(dialect: str) -> str:
    return "TRUE" if dialect == "postgresql" else "1"


def _false(dialect: str) -> str:
    return "FALSE" if dialect == "postgresql" else "0"


def _adult(dialect: str, alias: str) -> str:
    # The rule of migration 0003, for any alias (as in 0006).
    if dialect == "postgresql":
        return f"{alias}.birth_date <= CAST(CURRENT_TIMESTAMP AT TIME ZONE 'Europe/Helsinki' AS DATE) - INTERVAL '18 years'"
    return (f"CAST(strftime('%Y', 'now') AS INTEGER) - CAST(strftime('%Y', {alias}.birth_date) AS INTEGER)"
            f" - (strftime('%m-%d', 'now') < strftime('%m-%d', {alias}.birth_date)) >= 18")


def _prohibited(dialect: str, alias: str) -> str:
    return (f"({alias}.marketing_prohibited = {_true(dialect)}"
            f" OR EXISTS (SELECT 1 FROM customer e WHERE e.personal_id = {alias}.personal_id"
            f" AND e.erased_at IS NOT NULL AND e.marketing_prohibited = {_true(dialect)}))")


def _marketing_doubt(dialect: str, *, by_contact: bool) -> str:
    """0006's view; `by_contact` adds the two reasons of this revision."""
    create = "CREATE OR REPLACE VIEW" if dialect == "postgresql" else "CREATE VIEW"
    prohibiting = f""",
prohibiting AS MATERIALIZED (
    SELECT r.customer_id, r.email, r.phone, r.first_names, r.last_name, r.postal_code
    FROM source_record r
    JOIN customer x ON x.customer_id = r.customer_id
    WHERE r.marketing_prohibited = {_true(dialect)} AND r.customer_id IS NOT NULL
      AND x.merged_into IS NULL AND {_prohibited(dialect, 'x')}
)""" if by_contact else ""
    live = "c.merged_into IS NULL AND c.erased_at IS NULL AND p.customer_id <> c.customer_id"
    contact_arms = "".join(f"""
UNION
SELECT c.customer_id, p.customer_id, CAST(NULL AS INTEGER), 'prohibited_contact'
FROM prohibiting p JOIN customer c ON {on}
WHERE {live}""" for on in (
        "c.email = p.email",
        "c.phone = p.phone",
        "c.last_name = p.last_name AND c.postal_code = p.postal_code AND c.first_names = p.first_names",
        "c.last_name = p.first_names AND c.postal_code = p.postal_code AND c.first_names = p.last_name",
    )) if by_contact else ""
    not_withdrawn = f"""
UNION
SELECT p.customer_id, p.customer_id, CAST(NULL AS INTEGER), 'prohibition_not_withdrawn'
FROM source_record p
JOIN customer c ON c.customer_id = p.customer_id
WHERE p.marketing_prohibited = {_true(dialect)} AND p.customer_id IS NOT NULL
  AND c.merged_into IS NULL AND c.erased_at IS NULL AND NOT {_prohibited(dialect, 'c')}
  AND EXISTS (SELECT 1 FROM source_record m
              WHERE m.customer_id = p.customer_id AND m.match_method = 'probabilistic')
  AND NOT EXISTS (SELECT 1 FROM source_record q
                  WHERE q.customer_id = p.customer_id AND q.personal_id = p.personal_id
                    AND q.marketing_prohibited = {_false(dialect)} AND q.observed_at >= p.observed_at)""" \
        if by_contact else ""
    return f"""
{create} marketing_doubt AS
WITH review_ends AS (
    SELECT r.review_id,
           COALESCE(sl.customer_id, r.left_customer_id) AS left_id,
           COALESCE(sr.customer_id, r.right_customer_id) AS right_id
    FROM review_queue r
    LEFT JOIN source_record sl ON sl.source_record_pk = r.left_source_record_pk
    LEFT JOIN source_record sr ON sr.source_record_pk = r.right_source_record_pk
    WHERE r.status = 'open'
), tie AS (
    SELECT review_id, left_id AS customer_id, right_id AS tied_customer_id FROM review_ends
    WHERE left_id IS NOT NULL AND right_id IS NOT NULL AND left_id <> right_id
    UNION ALL
    SELECT review_id, right_id AS customer_id, left_id AS tied_customer_id FROM review_ends
    WHERE left_id IS NOT NULL AND right_id IS NOT NULL AND left_id <> right_id
), minor AS (
    SELECT m.customer_id, m.personal_id FROM customer m
    WHERE m.birth_date IS NOT NULL AND NOT ({_adult(dialect, 'm')})
){prohibiting}
SELECT t.customer_id, t.tied_customer_id, t.review_id, 'prohibited' AS reason
FROM tie t
JOIN customer d ON d.customer_id = t.tied_customer_id
WHERE {_prohibited(dialect, 'd')}
UNION
SELECT t.customer_id, t.tied_customer_id, t.review_id, 'possible_minor' AS reason
FROM tie t
JOIN minor m ON m.customer_id = t.tied_customer_id
UNION
SELECT t.customer_id, t.tied_customer_id, t.review_id, 'possible_minor' AS reason
FROM tie t
JOIN customer u ON u.customer_id = t.tied_customer_id
JOIN tie t2 ON t2.customer_id = t.tied_customer_id
JOIN minor m ON m.customer_id = t2.tied_customer_id
JOIN customer a ON a.customer_id = t.customer_id
WHERE u.birth_date IS NULL
  AND m.customer_id <> t.customer_id
  AND NOT (a.personal_id IS NOT NULL AND m.personal_id IS NOT NULL AND a.personal_id <> m.personal_id){contact_arms}{not_withdrawn}
"""


def _replace_doubt(dialect: str, *, by_contact: bool) -> None:
    # On PostgreSQL `CREATE OR REPLACE VIEW` keeps the view's grants and the dependent
    # `marketing_contacts` (same columns and types); SQLite resolves views when read.
    if dialect != "postgresql":
        op.execute("DROP VIEW marketing_doubt")
    op.execute(_marketing_doubt(dialect, by_contact=by_contact))


def _present(name: str, table: str, columns: list[str], where: str) -> None:
    op.create_index(name, table, columns, sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _present("ix_customer_email", "customer", ["email"], "email IS NOT NULL")
    _present("ix_customer_phone", "customer", ["phone"], "phone IS NOT NULL")
    _present("ix_customer_last_name_postal_code", "customer", ["last_name", "postal_code"],
             "last_name IS NOT NULL")
    _present("ix_source_record_prohibiting", "source_record", ["customer_id"],
             f"marketing_prohibited = {_true(dialect)}")
    _replace_doubt(dialect, by_contact=True)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    _replace_doubt(dialect, by_contact=False)
    op.drop_index("ix_source_record_prohibiting", table_name="source_record")
    op.drop_index("ix_customer_last_name_postal_code", table_name="customer")
    op.drop_index("ix_customer_phone", table_name="customer")
    op.drop_index("ix_customer_email", table_name="customer")
