"""Doubt protects the person: the marketing list leaves out customers an open review ties to
someone who prohibited direct marketing or may be a minor.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

- View `marketing_doubt`: one row per customer held back from direct marketing
  until a steward decides, per open review and reason, when the review ties it to
  another customer who (a) prohibited direct marketing (or whose code an erased
  customer kept a prohibition for), or (b) may be a minor: under 18 on the day the
  view is read, or of unknown birth date and itself tied by an open review to
  someone under 18 who could be the held customer (not two different valid codes):
  the junior trap, a record that fits a father or his under-age son. The review's
  two records give the customers as they are now (a merge moves records, not
  reviews). Read by the loader and the steward; not by analysts.
- View `marketing_contacts` redefined: the same rows as in 0003, less the customers
  `marketing_doubt` holds back. On PostgreSQL `CREATE OR REPLACE VIEW` keeps the
  analyst role's grant (same columns).

Frozen: the view definitions are spelled out here, not imported.
"""
from typing import Sequence, Union

from alembic import op

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _true(dialect: str) -> str:
    return "TRUE" if dialect == "postgresql" else "1"


def _false(dialect: str) -> str:
    return "FALSE" if dialect == "postgresql" else "0"


def _adult(dialect: str, alias: str) -> str:
    # The rule of migration 0003 (age on the day the view is read; Finland's day on
    # PostgreSQL, UTC's on SQLite, compared by year and month-day), for any alias.
    if dialect == "postgresql":
        return f"{alias}.birth_date <= CAST(CURRENT_TIMESTAMP AT TIME ZONE 'Europe/Helsinki' AS DATE) - INTERVAL '18 years'"
    return (f"CAST(strftime('%Y', 'now') AS INTEGER) - CAST(strftime('%Y', {alias}.birth_date) AS INTEGER)"
            f" - (strftime('%m-%d', 'now') < strftime('%m-%d', {alias}.birth_date)) >= 18")


def _prohibited(dialect: str, alias: str) -> str:
    return (f"({alias}.marketing_prohibited = {_true(dialect)}"
            f" OR EXISTS (SELECT 1 FROM customer e WHERE e.personal_id = {alias}.personal_id"
            f" AND e.erased_at IS NOT NULL AND e.marketing_prohibited = {_true(dialect)}))")


def _marketing_doubt(dialect: str) -> str:
    # tie: each open review as a pair of live customers, both ways round. One row per
    # (held customer, review, reason); UNION drops repeats.
    return f"""
CREATE VIEW marketing_doubt AS
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
)
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
  AND NOT (a.personal_id IS NOT NULL AND m.personal_id IS NOT NULL AND a.personal_id <> m.personal_id)
"""


def _marketing_contacts(dialect: str, *, with_doubt: bool) -> str:
    # 0003's view; with_doubt adds the one new condition. NOT IN over a non-correlated
    # subquery: both backends evaluate it once (a hash), not once per customer.
    doubt = "\n  AND c.customer_id NOT IN (SELECT customer_id FROM marketing_doubt)" if with_doubt else ""
    create = "CREATE OR REPLACE VIEW" if dialect == "postgresql" else "CREATE VIEW"
    return f"""
{create} marketing_contacts AS
SELECT c.customer_id,
       c.first_names, c.last_name,
       c.street_address, c.postal_code, c.city,
       c.email, c.phone,
       s.product
FROM customer c
LEFT JOIN (SELECT DISTINCT customer_id, product FROM service) s ON s.customer_id = c.customer_id
WHERE c.merged_into IS NULL
  AND c.erased_at IS NULL
  AND (c.marketing_prohibited IS NULL OR c.marketing_prohibited = {_false(dialect)})
  AND NOT EXISTS (SELECT 1 FROM customer e
                  WHERE e.personal_id = c.personal_id AND e.erased_at IS NOT NULL
                    AND e.marketing_prohibited = {_true(dialect)})
  AND c.birth_date IS NOT NULL
  AND {_adult(dialect, 'c')}{doubt}
"""


def _replace_contacts(dialect: str, *, with_doubt: bool) -> None:
    if dialect != "postgresql":
        op.execute("DROP VIEW marketing_contacts")
    op.execute(_marketing_contacts(dialect, with_doubt=with_doubt))


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute(_marketing_doubt(dialect))
    _replace_contacts(dialect, with_doubt=True)
    if dialect == "postgresql":
        # Default privileges (0003) gave the new view to the loader and steward with
        # write rights: a view is read-only. Analysts get nothing on it.
        op.execute("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON marketing_doubt FROM register_loader, register_steward")
        op.execute("REVOKE ALL ON marketing_doubt FROM register_analyst")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    _replace_contacts(dialect, with_doubt=False)
    op.execute("DROP VIEW marketing_doubt")
