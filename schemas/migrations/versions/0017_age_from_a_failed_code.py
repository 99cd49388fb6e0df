"""An age read from an identity code that fails its check, born this century, is not a known
adult age: the marketing list leaves the customer out (issue 8).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06

Measured at 1M records (issue 8): the one minor left on the marketing list was a child
born in 2009 whose only record carried a code with one wrong digit. The code fails its
check, so it is never stored as a code, but its date part stays readable and becomes
the birth date (flag `birth_date_from_invalid_code`): 2001 instead of 2009, an adult.
The check character covers the date digits but not the century sign, so a wrong digit
in a code of this century (sign `A` to `F`) can turn a child into an adult; in a code
of the 1900s it cannot (the century stays; ages past belief are 0008's). Such an age
is treated as an unknown one: the customer is left out, as one of unknown birth date
is, until a record with a valid code or a correct one arrives. At 1M records (default
noise) that leaves out 558 of 396,294 customers.

- View `marketing_contacts` redefined: 0008's rows, less the customers without a valid
  code whose golden birth date (the identity unit's record, `golden_provenance`) is on
  or after 2000-01-01 and came from a record flagged `personal_id_invalid`.
  `CREATE OR REPLACE VIEW` keeps the marketing role's grant.

Frozen: the view definitions are spelled out here, not imported.
"""
from typing import Sequence, Union

from alembic import op

revision: str = "0017"
down_revision: Union[str, Sequence[str], None] = "0016"
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


def _marketing_contacts(dialect: str, *, failed_code_age: bool) -> str:
    # 0008's view; failed_code_age adds the one new condition.
    too_old = f"\n  AND {_believable(dialect, 'c')}"
    if failed_code_age:
        too_old += f"\n  AND NOT {_age_from_a_failed_code(dialect, 'c')}"
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
  AND c.customer_id NOT IN (SELECT customer_id FROM marketing_doubt){too_old}
"""


def _replace_contacts(dialect: str, *, failed_code_age: bool) -> None:
    if dialect != "postgresql":
        op.execute("DROP VIEW marketing_contacts")
    op.execute(_marketing_contacts(dialect, failed_code_age=failed_code_age))


def upgrade() -> None:
    _replace_contacts(op.get_bind().dialect.name, failed_code_age=True)


def downgrade() -> None:
    _replace_contacts(op.get_bind().dialect.name, failed_code_age=False)
