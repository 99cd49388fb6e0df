"""Doubt by full names anywhere: a prohibition reaches a customer with its full names who
may have moved (issue 8).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06

Measured on held-out noise (issue 8): most people still on the marketing list after
saying no are splits. Their "no marketing" record was not linked to their other
customer and ties it by no review and no contact point: after a move it shares
neither the postal code, nor the phone, nor the e-mail address. What it often does
share is the person's full names. At 200,000 records (varied noise) 4 of the 11
people listed had given the same full names, in the same fields or swapped, in
another postal code area.

The view `marketing_doubt` gets two more arms of reason `prohibited_contact`: a
customer whose first names hold two or more given names and whose full names, either
way round, are those of a record held by a customer who prohibited direct marketing,
anywhere, unless the two cannot be one person: both customers hold valid identity
codes and they differ, or both know a birth date and it differs. With one given name
the names are a namesake's too often (measured: 988 customers held back instead of
112, without the compatibility test); with two or more and compatible identities, 14
more customers of 73,101 were held back and those 4 people left the list.

Its columns are unchanged. The index on `customer` (last name, postal code), which
served 0007's arm of names at a postal code, becomes (last name, first names, postal
code): it serves that arm and these two.

Frozen: the view definitions are spelled out here, not imported.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: Union[str, Sequence[str], None] = "0015"
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


def _marketing_doubt(dialect: str, *, full_names: bool) -> str:
    """0007's view; `full_names` adds the arm of this revision."""
    create = "CREATE OR REPLACE VIEW" if dialect == "postgresql" else "CREATE VIEW"
    prohibiting = f""",
prohibiting AS MATERIALIZED (
    SELECT r.customer_id, r.email, r.phone, r.first_names, r.last_name, r.postal_code,
           x.personal_id AS owner_personal_id, x.birth_date AS owner_birth_date
    FROM source_record r
    JOIN customer x ON x.customer_id = r.customer_id
    WHERE r.marketing_prohibited = {_true(dialect)} AND r.customer_id IS NOT NULL
      AND x.merged_into IS NULL AND {_prohibited(dialect, 'x')}
)"""
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
    ))
    # This revision: the full names anywhere, of someone who could be the same person.
    full_name_arms = "".join(f"""
UNION
SELECT c.customer_id, p.customer_id, CAST(NULL AS INTEGER), 'prohibited_contact'
FROM prohibiting p JOIN customer c ON {on}
WHERE {live} AND c.first_names LIKE '% %'
  AND NOT (c.personal_id IS NOT NULL AND p.owner_personal_id IS NOT NULL AND c.personal_id <> p.owner_personal_id)
  AND NOT (c.birth_date IS NOT NULL AND p.owner_birth_date IS NOT NULL AND c.birth_date <> p.owner_birth_date)""" for on in (
        "c.last_name = p.last_name AND c.first_names = p.first_names",
        "c.last_name = p.first_names AND c.first_names = p.last_name",
    )) if full_names else ""
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
                    AND q.marketing_prohibited = {_false(dialect)} AND q.observed_at >= p.observed_at)"""
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
  AND NOT (a.personal_id IS NOT NULL AND m.personal_id IS NOT NULL AND a.personal_id <> m.personal_id){contact_arms}{full_name_arms}{not_withdrawn}
"""


def _replace_doubt(dialect: str, *, full_names: bool) -> None:
    # On PostgreSQL `CREATE OR REPLACE VIEW` keeps the view's grants and the dependent
    # `marketing_contacts` (same columns and types); SQLite resolves views when read.
    if dialect != "postgresql":
        op.execute("DROP VIEW marketing_doubt")
    op.execute(_marketing_doubt(dialect, full_names=full_names))


# Idempotent: a register stamped back to an earlier revision and migrated again (as the
# tests of 0014 do) meets the index already there.
def _index(name: str, columns: list[str]) -> None:
    op.create_index(name, "customer", columns, sqlite_where=sa.text("last_name IS NOT NULL"),
                    postgresql_where=sa.text("last_name IS NOT NULL"), if_not_exists=True)


def upgrade() -> None:
    _index("ix_customer_full_name", ["last_name", "first_names", "postal_code"])
    op.drop_index("ix_customer_last_name_postal_code", table_name="customer", if_exists=True)
    _replace_doubt(op.get_bind().dialect.name, full_names=True)


def downgrade() -> None:
    _replace_doubt(op.get_bind().dialect.name, full_names=False)
    _index("ix_customer_last_name_postal_code", ["last_name", "postal_code"])
    op.drop_index("ix_customer_full_name", table_name="customer", if_exists=True)
