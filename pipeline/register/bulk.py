"""Bulk writes into register tables, inside the caller's transaction.

`bulk_writer(connection)` gives the writer for the connection's database: SQLite
takes rows by `executemany`, PostgreSQL by `COPY ... FROM STDIN` (CSV). Frames go
in chunks of `CHUNK_ROWS`, converted column-wise to the database's wire form. The
loader and the resolver write through it; `temp_values` (database.py) is its
counterpart for lookups.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa

from pipeline.register.database import scrub_postgresql_error
from schemas.register import UTCDateTime, source_record

try:  # psycopg is a dependency, but SQLite-only use must not need it importable
    import psycopg
    PSYCOPG_ERROR: type[BaseException] = psycopg.Error
except ImportError:  # pragma: no cover
    PSYCOPG_ERROR = ()  # type: ignore[assignment]

# Rows handed to the database per executemany call / COPY chunk: bounds the
# Python objects alive at once (SQLite) and the CSV buffer (PostgreSQL).
CHUNK_ROWS = 50_000


def utc_series(series: pd.Series, name: str) -> pd.Series:
    """The series as datetime64[ns, UTC]; a zone-less time is refused (ambiguous)."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(series.dtype):
        raise ValueError(f"load_intake: {name} must be timezone-aware")
    return pd.to_datetime(series, utc=True)


@contextmanager
def indexes_and_keys_built_after(connection: sa.Connection, table: sa.Table) -> Iterator[None]:
    """Into an empty table (a first load), insert without its secondary indexes and build
    them after: one sort per index instead of a million insertions at random places in
    each (writing a million records' 555,000 customers: 10-12.6 s -> 3.1-4.1 s).

    On PostgreSQL its foreign keys are dropped too and added back after, which checks
    every row in one join per key instead of a trigger per row and key (a million records:
    9.3 s -> 2.8 s + 0.6 s of checking; PostgreSQL's own advice for populating a database).
    SQLite cannot drop a constraint inside a transaction: its rows are checked as they come.

    The indexes and keys are recreated from the database's own definitions, in the same
    transaction: an error, a row whose key points nowhere among them, rolls the drop back
    with everything else. Primary keys and unique constraints stay, so every row is still
    checked for them as it comes.
    """
    if (connection.exec_driver_sql(f"SELECT 1 FROM {table.name} LIMIT 1").first() is not None
            or not _may_drop_indexes_and_keys(connection, table.name)):
        yield
        return
    definitions = _secondary_indexes(connection, table.name)
    foreign_keys = _foreign_keys(connection, table.name)
    for name, _ in foreign_keys:
        connection.exec_driver_sql(f'ALTER TABLE {table.name} DROP CONSTRAINT "{name}"')
    for name, _ in definitions:
        connection.exec_driver_sql(f'DROP INDEX "{name}"')
    yield
    for _, definition in definitions:
        connection.exec_driver_sql(definition)
    for name, definition in foreign_keys:
        connection.exec_driver_sql(f'ALTER TABLE {table.name} ADD CONSTRAINT "{name}" {definition}')


def _may_drop_indexes_and_keys(connection: sa.Connection, table: str) -> bool:
    """Whether this role may drop the table's indexes and foreign keys: on PostgreSQL only its
    owner may (the least-privileged `register_loader` role may not, and inserts into them as
    they are)."""
    if connection.dialect.name != "postgresql":
        return True
    return bool(connection.exec_driver_sql(
        "SELECT pg_has_role(current_user, tableowner, 'MEMBER') FROM pg_tables "
        "WHERE schemaname = current_schema() AND tablename = %(table)s", {"table": table}).scalar())


def _foreign_keys(connection: sa.Connection, table: str) -> list[tuple[str, str]]:
    """(name, definition) of the table's foreign keys on PostgreSQL; none elsewhere."""
    if connection.dialect.name != "postgresql":
        return []
    rows = connection.exec_driver_sql(
        "SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint AS c WHERE c.contype = 'f' "
        "AND c.conrelid = (quote_ident(current_schema()) || '.' || quote_ident(%(table)s))::regclass "
        "ORDER BY c.conname", {"table": table}).all()
    return [(str(name), str(definition)) for name, definition in rows]


def _secondary_indexes(connection: sa.Connection, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the table's indexes that back no key or constraint."""
    if connection.dialect.name == "postgresql":
        rows = connection.exec_driver_sql(
            "SELECT i.indexname, i.indexdef FROM pg_indexes AS i WHERE i.schemaname = current_schema() "
            "AND i.tablename = %(table)s AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c "
            "WHERE c.conrelid = (quote_ident(current_schema()) || '.' || quote_ident(%(table)s))::regclass "
            "AND c.conname = i.indexname) ORDER BY i.indexname", {"table": table}).all()
    else:  # SQLite: an index behind a key or UNIQUE constraint has no statement of its own
        rows = connection.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL "
            "ORDER BY name", (table,)).all()
    return [(str(name), str(definition)) for name, definition in rows]


def bulk_writer(connection: sa.Connection) -> BulkWriter:
    """The bulk writer for the connection's database (executemany on SQLite, COPY on PostgreSQL)."""
    name = connection.dialect.name
    if name == "sqlite":
        return _SQLiteWriter(connection)
    if name == "postgresql":
        return _PostgreSQLWriter(connection)
    raise NotImplementedError(f"bulk_writer: no bulk path for the {name} dialect")


def _column_kind(column: sa.Column) -> str:
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return "timestamp"
    if isinstance(kind, sa.Date):
        return "date"
    if isinstance(kind, sa.Boolean):
        return "bool"
    if isinstance(kind, (sa.Integer, sa.BigInteger)):
        return "int"
    if isinstance(kind, sa.Float):
        return "float"
    return "text"


class BulkWriter:
    """Writes frames into register tables on the transaction's own DBAPI connection."""

    timestamp_as_text = False

    def __init__(self, connection: sa.Connection):
        self.connection = connection
        self.dbapi = connection.connection.dbapi_connection

    def arrow_columns(self, frame: pd.DataFrame, table: sa.Table, columns: list[str]) -> pa.Table:
        """The frame's columns in the database's wire form, as one arrow table."""
        arrays = {}
        for name in columns:
            kind = _column_kind(table.c[name])
            series = frame[name]
            if kind == "timestamp":
                values = pa.array(utc_series(series, name), type=pa.timestamp("ns", tz="UTC"))
                values = values.cast(pa.timestamp("us", tz="UTC"), safe=False)
                if self.timestamp_as_text:
                    # SQLAlchemy's SQLite DATETIME text: naive UTC, always with microseconds.
                    values = values.cast(pa.timestamp("us")).cast(pa.string())
            elif kind == "date":
                values = pa.array(series, type=pa.timestamp("ns")).cast(pa.date32(), safe=False)
                if self.timestamp_as_text:
                    values = values.cast(pa.string())
            elif kind == "bool":
                values = pa.array(series.astype("boolean"), type=pa.bool_())
            elif kind == "int":
                values = pa.array(series.astype("Int64"), type=pa.int64())
            elif kind == "float":
                values = pa.array(series.astype("Float64"), type=pa.float64())
            else:
                values = pa.array(series.astype("string[pyarrow]"), type=pa.large_string())
            arrays[name] = values
        return pa.table(arrays)

    def held_records(self, keys: pd.DataFrame) -> np.ndarray:
        """For each (channel, source_record_id) row: its `source_record_pk` if the
        register holds it, else -1. (Erased records hold none: see `rights.erasure.buried`.)"""
        held = np.full(len(keys), -1, dtype=np.int64)
        if len(keys) == 0:
            return held
        if self._any_records(keys["channel"].unique().tolist()):
            found = self._held_positions(keys)
            if found:
                positions, pks = zip(*found)
                held[np.asarray(positions, dtype=np.int64)] = np.asarray(pks, dtype=np.int64)
        return held

    def _any_records(self, channels: list[str]) -> bool:
        # The common first load (empty register) needs no key lookup at all.
        return self.connection.execute(sa.select(sa.exists().where(
            source_record.c.channel.in_(channels)))).scalar_one()

    def _held_positions(self, keys: pd.DataFrame) -> list[tuple[int, int]]:
        """(position in keys, source_record_pk) of each key the register holds."""
        raise NotImplementedError

    def allocate_record_keys(self, n: int) -> np.ndarray:
        """`n` new `source_record_pk` values, for rows inserted with their key given."""
        raise NotImplementedError

    def insert(self, table: sa.Table, frame: pd.DataFrame, columns: list[str]) -> None:
        raise NotImplementedError


def sequence_values(connection: sa.Connection, table: str, column: str, n: int) -> np.ndarray:
    """`n` new values of the PostgreSQL sequence behind `table.column`, drawn in one statement.

    Only their range crosses the wire when they come out consecutive, as they do unless
    another session draws from the sequence at the same moment: a million keys then cost
    0.3 s instead of 3.7 s of rows fetched. Otherwise they are drawn again one by one, each
    value fetched (a sequence's values are never given twice; the gap is harmless).
    """
    if n == 0:
        return np.empty(0, dtype=np.int64)
    drawn = (f"SELECT nextval(pg_get_serial_sequence('{table}', '{column}')) AS value "  # our own names
             f"FROM generate_series(1, {int(n)})")
    low, high, count = connection.exec_driver_sql(
        f"SELECT min(value), max(value), count(*) FROM ({drawn}) AS drawn").one()
    if count == n and high - low + 1 == n:
        return np.arange(low, high + 1, dtype=np.int64)
    rows = connection.exec_driver_sql(drawn).all()
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)


class _SQLiteWriter(BulkWriter):
    timestamp_as_text = True

    def _held_positions(self, keys: pd.DataFrame) -> list[tuple[int, int]]:
        cursor = self.dbapi.cursor()
        try:
            cursor.execute("CREATE TEMP TABLE load_keys "
                           "(position INTEGER PRIMARY KEY, channel TEXT NOT NULL, source_record_id TEXT NOT NULL)")
            rows = zip(range(len(keys)), keys["channel"].tolist(), keys["source_record_id"].tolist())
            cursor.executemany("INSERT INTO temp.load_keys VALUES (?, ?, ?)", rows)
            cursor.execute("SELECT k.position, s.source_record_pk FROM temp.load_keys AS k "
                           "JOIN main.source_record AS s "
                           "ON s.channel = k.channel AND s.source_record_id = k.source_record_id")
            positions = [(row[0], row[1]) for row in cursor.fetchall()]
            cursor.execute("DROP TABLE temp.load_keys")
            return positions
        finally:
            cursor.close()

    def allocate_record_keys(self, n: int) -> np.ndarray:
        # What SQLite would give rows inserted without one: above the highest rowid. The
        # writer's transaction (BEGIN IMMEDIATE) keeps them ours until it inserts them.
        top = self.connection.exec_driver_sql("SELECT MAX(source_record_pk) FROM source_record").scalar()
        return np.arange(int(top or 0) + 1, int(top or 0) + 1 + n, dtype=np.int64)

    def insert(self, table: sa.Table, frame: pd.DataFrame, columns: list[str]) -> None:
        sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
               f"VALUES ({', '.join('?' for _ in columns)})")
        cursor = self.dbapi.cursor()
        try:
            for start in range(0, len(frame), CHUNK_ROWS):
                chunk = self.arrow_columns(frame.iloc[start:start + CHUNK_ROWS], table, columns)
                cursor.executemany(sql, zip(*(chunk.column(i).to_pylist() for i in range(chunk.num_columns))))
        finally:
            cursor.close()


class _PostgreSQLWriter(BulkWriter):
    @staticmethod
    def _copy_csv(cursor, sql: str, chunks) -> None:
        """COPY arrow tables, chunk by chunk, as CSV. Non-null values are quoted and
        nulls left empty: COPY CSV reads "" as an empty string, an empty field as NULL."""
        options = pa_csv.WriteOptions(include_header=False, quoting_style="all_valid")
        try:
            with cursor.copy(sql) as copy:
                for chunk in chunks:
                    buffer = io.BytesIO()
                    pa_csv.write_csv(chunk, buffer, options)
                    copy.write(buffer.getbuffer())
        except PSYCOPG_ERROR as error:
            # COPY's CONTEXT quotes the failing row: scrub it here, whoever called.
            scrub_postgresql_error(error)
            raise

    def _held_positions(self, keys: pd.DataFrame) -> list[tuple[int, int]]:
        table = pa.table({
            "position": pa.array(np.arange(len(keys), dtype=np.int64)),
            "channel": pa.array(keys["channel"].astype("string[pyarrow]"), type=pa.large_string()),
            "source_record_id": pa.array(keys["source_record_id"].astype("string[pyarrow]"), type=pa.large_string()),
        })
        with self.dbapi.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE load_keys "
                           "(position bigint, channel text NOT NULL, source_record_id text NOT NULL) "
                           "ON COMMIT DROP")
            self._copy_csv(cursor, "COPY load_keys (position, channel, source_record_id) "
                                   "FROM STDIN WITH (FORMAT csv, ENCODING 'UTF8')",
                           (table.slice(start, CHUNK_ROWS) for start in range(0, table.num_rows, CHUNK_ROWS)))
            cursor.execute("ANALYZE load_keys")
            cursor.execute("SELECT k.position, s.source_record_pk FROM load_keys AS k JOIN source_record AS s "
                           "ON s.channel = k.channel AND s.source_record_id = k.source_record_id")
            positions = [(row[0], row[1]) for row in cursor.fetchall()]
            cursor.execute("DROP TABLE load_keys")
            return positions

    def allocate_record_keys(self, n: int) -> np.ndarray:
        # From the column's own sequence, as a default would.
        return sequence_values(self.connection, "source_record", "source_record_pk", n)

    def insert(self, table: sa.Table, frame: pd.DataFrame, columns: list[str]) -> None:
        chunks = (self.arrow_columns(frame.iloc[start:start + CHUNK_ROWS], table, columns)
                  for start in range(0, len(frame), CHUNK_ROWS))
        with self.dbapi.cursor() as cursor:
            self._copy_csv(cursor, f"COPY {table.name} ({', '.join(columns)}) "
                                   "FROM STDIN WITH (FORMAT csv, ENCODING 'UTF8')", chunks)
