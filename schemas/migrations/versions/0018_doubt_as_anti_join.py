"""The marketing list's doubt condition as an anti-join: `NOT EXISTS`, not `NOT IN`.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07

Measured at 1M records on PostgreSQL (issue 13): reading `marketing_contacts` took
133-139 s. The planner over-estimates `marketing_doubt` (a million rows estimated, about
19,000 there), so `customer_id NOT IN (SELECT customer_id FROM marketing_doubt)` could
not be a hashed subplan within `work_mem`: PostgreSQL scanned the materialised doubt once
per customer. `NOT IN` also cannot become an anti-join, because one NULL in the subquery
would make it false for everyone. `NOT EXISTS` is the same rule (the two differ only
for a doubt row without a customer id, which ties nobody) and plans as a hash anti-join:
8.2-8.9 s, the same 442,385 rows. On SQLite the view keeps `NOT IN`, which SQLite reads
once into a temporary index (4.9 s at 1M); its `NOT EXISTS` over the view ran as a
correlated subquery per customer and had not finished after 5 minutes.

- View `marketing_contacts` redefined on PostgreSQL: 0017's rows, the doubt condition
  spelled `NOT EXISTS (SELECT 1 FROM marketing_doubt d WHERE d.customer_id = c.customer_id)`.
  On SQLite it is recreated as 0017 defined it.
  `CREATE OR REPLACE VIEW` keeps the marketing role's grant.

Frozen: the view definitions are spelled out here, not imported.
"""
from typing import Sequence, Union

from alembic import op

revision: str = "0018"
down_revision: Union[str, Sequence[str], None] = "0017"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OLDEST_BELIEVABLE_AGE = 115


def _true(dialect: str) -> str:
    return "TRUE" if dialect == "postgresql" else "1"


def _false(dialect: str) -> str:
    return "FALSE" if dialect == "postgresql" else "0"


def _adult(dialect: str, alias: str) -> str:
    # The rule of migration 0003.
    if dialect == "postgresql":
        return f"{alias}.birth_date <= CAST(CURRENT_TIMESTAMP AT TIME ZONE 'Europe/Helsinki' AS DATE) - INTERVAL '18 years'"
    return (f"CAST(strftime('%Y', 'now') AS INTEGER) - CAST(strftime('%Y', {alias}.birth_date) AS INTEGER)"
            f" - (strftime('%m-%d', 'now') < strftime('%m-%d', {alias}.birth_date)) >= 18")


def _believable(dialect: str, alias: str) -> str:
    # Born on or after the day 115 years ago. On 29 February PostgreSQL's interval
    # gives 28 February, SQLite's modifier 1 March: never later than the extract's
    # own check (28 February), so the view is never the more lenient of the two.
    if dialect == "postgresql":
        return (f"{alias}.birth_date >= CAST(CURRENT_TIMESTAMP AT TIME ZONE 'Europe/Helsinki' AS DATE)"
                f" - INTERVAL '{OLDEST_BELIEVABLE_AGE} years'")
    return f"{alias}.birth_date >= date('now', '-{OLDEST_BELIEVABLE_AGE} years')"


def _age_from_a_failed_code(dialect: str, alias: str) -> str:
    # No valid code, born this century, and the birth date is that of a record whose code failed
    # its check (the identity unit: code and birth date come from one record).
    since = "DATE '2000-01-01'" if dialect == "postgresql" else "'2000-01-01'"
    return (f"({alias}.personal_id IS NULL AND {alias}.birth_date >= {since}"
            f" AND EXISTS (SELECT 1 FROM golden_provenance g JOIN source_record r"
            f" ON r.source_record_pk = g.identity_record_pk"
            f" WHERE g.customer_id = {alias}.customer_id AND r.quality_flags LIKE '%personal_id_invalid%'))")


def _marketing_contacts(dialect: str, *, anti_join: bool) -> str:
    # 0017's view; anti_join spells its doubt condition as NOT EXISTS.
    too_old = f"\n  AND {_believable(dialect, 'c')}"
    too_old += f"\n  AND NOT {_age_from_a_failed_code(dialect, 'c')}"
    # PostgreSQL only: SQLite runs a correlated NOT EXISTS over the view once per customer
    # (minutes at 1M), and its NOT IN reads the view once (5 s at 1M).
    doubt = ("NOT EXISTS (SELECT 1 FROM marketing_doubt d WHERE d.customer_id = c.customer_id)"
             if anti_join and dialect == "postgresql"
             else "c.customer_id NOT IN (SELECT customer_id FROM marketing_doubt)")
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
  AND {_adult(dialect, 'c')}
  AND {doubt}{too_old}
"""


def _replace_contacts(dialect: str, *, anti_join: bool) -> None:
    if dialect != "postgresql":
        op.execute("DROP VIEW marketing_contacts")
    op.execute(_marketing_contacts(dialect, anti_join=anti_join))


def upgrade() -> None:
    _replace_contacts(op.get_bind().dialect.name, anti_join=True)


def downgrade() -> None:
    _replace_contacts(op.get_bind().dialect.name, anti_join=False)
