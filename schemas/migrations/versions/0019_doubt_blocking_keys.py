"""The doubt-only blocking rule, a code-less prohibiting record against its namesakes: keys
for held records.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07

Issue 8 ("doubt protects the person"): a record without a valid code that prohibits direct
marketing (a *doubt anchor*) is also compared with every record of its first given name and
surname, either way round and in whichever field they were typed (`doubt_name`), wherever it
lives (`pipeline.matching.model.DOUBT_BLOCKING_KEYS`);
such a pair may be reviewed, never linked. The register finds a new batch's candidates by
`match_key`, so the rule has two keys there, after the nine blocking rules: at position 9 its
*reach* key, held for every record (a new anchor meets every held namesake), and at position 10
its *anchor* key, held for anchors only (any other new record meets the held anchors among its
namesakes). Without them a held record would meet a new one by this rule only in one batch,
and loading day by day would group and review otherwise than loading all at once (rule 3).

Idempotent, in chunks, and downgraded by deleting the two positions' keys, as 0014 is. The
keys are the matcher's own hash (`pipeline.matching.blocking`); the rules are spelled out
here as they stood at this revision.
"""
from typing import Sequence, Union

import pandas as pd
import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: Union[str, Sequence[str], None] = "0018"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The rules by key position at this revision: the nine blocking rules, then the doubt rule's
# reach key (9) and anchor key (10).
RULES: tuple[tuple[str, ...], ...] = (
    ("phone",), ("email",), ("iban",), ("name_key", "postal_code"), ("last_name", "street_key"),
    ("first_name", "street_key"), ("first_name", "birth_date"), ("last_name", "birth_date"),
    ("name_sorted", "postal_code"), ("doubt_name",), ("doubt_name",),
)
REACH, ANCHOR = 9, 10
CHUNK = 200_000
STAGE = "migration_0019_keys"


def _keys_in_chunks(connection: sa.Connection):
    """The doubt rule's keys of every held record, a chunk of records at a time."""
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
            features = match_features(records)
            keys = blocking_keys(features, RULES, numbers={REACH, ANCHOR},
                                 masks={ANCHOR: features["doubt_anchor"].to_numpy(bool)})
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
