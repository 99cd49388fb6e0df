"""The matcher's ninth blocking rule, every name part in any order or field at one postal code:
keys for held records.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

The matcher pairs records equal on one of its blocking rules, and the register finds a
new batch's candidates among the held records by the keys of `match_key` (one per
record and rule; the rule's position is part of the key's hash). Issue 8 adds a rule
at position 8, (`name_sorted`, `postal_code`): every name part in alphabetical order
and the postal code, so a name written surname first or typed into the wrong field is
still compared with the person's other records in the same area. Records loaded before it have no key for
it: without them a new record would meet such a held record only if both came in one
batch, and loading day by day would group records otherwise than loading them all at
once (rule 3). This migration writes the rule's key for every held record.

Idempotent: a key already present is not written again (the table's primary key is
the key and the record), so running it over a register that has some or all of them
changes nothing. Downgrade deletes the rule's keys; the other rules' keys stay. In
chunks of source records, so a register of millions does not sit in memory at once.

The keys are the matcher's own hash (`pipeline.matching.blocking`), so this one
imports it; the rule list is spelled out here as it stood at this revision.

"""
from typing import Sequence, Union

import pandas as pd
import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: Union[str, Sequence[str], None] = "0013"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The blocking rules at this revision, in order (the position is part of each key).
RULES: tuple[tuple[str, ...], ...] = (
    ("phone",), ("email",), ("iban",), ("name_key", "postal_code"), ("last_name", "street_key"),
    ("first_name", "street_key"), ("first_name", "birth_date"), ("last_name", "birth_date"), ("name_sorted", "postal_code"),
)
ADDED = (8,)
CHUNK = 200_000
STAGE = "migration_0014_keys"


def _keys_in_chunks(connection: sa.Connection):
    """The added rules' keys of every held record, a chunk of records at a time."""
    from pipeline.matching.blocking import blocking_keys
    from pipeline.matching.features import match_features
    from pipeline.register.resolve import _read_records

    low = connection.exec_driver_sql("SELECT MIN(source_record_pk) FROM source_record").scalar()
    high = connection.exec_driver_sql("SELECT MAX(source_record_pk) FROM source_record").scalar()
    if low is None:
        return
    start = int(low)
    while start <= int(high):
        end = start + CHUNK
        records = _read_records(connection, f"WHERE s.source_record_pk >= {start} AND s.source_record_pk < {end}")
        if len(records):
            keys = blocking_keys(match_features(records), RULES, numbers=ADDED)
            if len(keys):
                yield keys.rename(columns={"record_key": "source_record_pk"})
        start = end


def _stage(connection: sa.Connection, keys: pd.DataFrame) -> None:
    from pipeline.register.bulk import bulk_writer

    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {STAGE}")
    table = sa.Table(STAGE, sa.MetaData(), sa.Column("blocking_key", sa.BigInteger),
                     sa.Column("source_record_pk", sa.BigInteger), prefixes=["TEMPORARY"])
    table.create(connection)
    bulk_writer(connection).insert(table, keys, ["blocking_key", "source_record_pk"])


def upgrade() -> None:
    connection = op.get_bind()
    for keys in _keys_in_chunks(connection):
        _stage(connection, keys)
        connection.exec_driver_sql(
            f"INSERT INTO match_key (blocking_key, source_record_pk) "
            f"SELECT DISTINCT s.blocking_key, s.source_record_pk FROM {STAGE} AS s "
            f"WHERE NOT EXISTS (SELECT 1 FROM match_key AS m WHERE m.blocking_key = s.blocking_key "
            f"AND m.source_record_pk = s.source_record_pk)")
        connection.exec_driver_sql(f"DROP TABLE {STAGE}")


def downgrade() -> None:
    connection = op.get_bind()
    for keys in _keys_in_chunks(connection):
        _stage(connection, keys)
        connection.exec_driver_sql(
            f"DELETE FROM match_key WHERE EXISTS (SELECT 1 FROM {STAGE} AS s "
            f"WHERE s.blocking_key = match_key.blocking_key AND s.source_record_pk = match_key.source_record_pk)")
        connection.exec_driver_sql(f"DROP TABLE {STAGE}")
