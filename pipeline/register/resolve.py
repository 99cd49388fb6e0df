"""Identity resolution in the register: one customer per person, incrementally.

Runs inside the load's transaction, once the load has keyed its new source records
(they wait unwritten, `pipeline.register.pending`, and are written here with their
customer), or after a steward's decision:

1. *Affected set.* Start from the unresolved records (new ones, and held ones whose
   current version a re-send replaced: `pipeline.register.versions`); repeatedly add the held
   records the matcher would pair with them (by the `match_key` blocking index),
   the records sharing their identity code, the records of the customers those
   belong to, and the pairs stewards decided — until nothing new is reached over
   an edge at or above the review threshold. The set is then a union of whole
   components of the match graph, so resolving it alone gives the same grouping
   as resolving every record ever loaded at once (docs/register_rules.md rule 3).
2. *Resolve.* Score the pairs (frozen model: a pair's probability does not depend
   on the batch), cluster under the rules (one code, one person; never two codes),
   and decide each cluster's golden record and services.
3. *Stable ids.* Each existing customer stays with the cluster holding most of its
   records; a cluster holding several customers keeps the oldest (smallest) id and
   merges the others into it (`customer_merge`); a cluster with none is a new
   customer. Ids are never reused.
4. *Write*, a part at a time (`write_parts`: about `MatchSettings.resolve_part_records`
   records, each part whole clusters, the records each customer held and both records of
   each review, so a part is written alone): each cluster's golden record, merges, the new
   source records with their customer, held records' customer and match method, provenance,
   services and review entries. Then the new records' versions and blocking keys. Ids are
   handed out for the whole set first, so the register is the same whatever the parts.

Counts only in the summary and logs; never a value.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Collection
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from pipeline.matching.blocking import held_keys, probe_keys
from pipeline.matching.cluster import Resolution, connected_components, resolve_clusters
from pipeline.matching.features import match_features
from pipeline.matching.model import BLOCKING_KEYS, DOUBT_BLOCKING_KEYS, MatchModel
from pipeline.matching.score import Scorer, open_scorer, score_pairs
from pipeline.matching.settings import MatchSettings
from pipeline.matching.survivorship import golden_records, services
from pipeline.register import pending
from pipeline.register.bulk import bulk_writer, indexes_and_keys_built_after, sequence_values
from pipeline.register.database import temp_values
from pipeline.register.locks import lock_register
from schemas.register import (PROVENANCE_UNITS, customer, customer_merge, golden_provenance, match_key,
                              merge_record, review_queue, service, source_record)

log = logging.getLogger(__name__)

RECORD_COLUMNS: tuple[str, ...] = (
    "channel", "source_record_id", "observed_at", "personal_id", "birth_date", "first_names", "last_name",
    "street_address", "postal_code", "city", "phone", "email", "iban", "bic", "product", "metering_point",
    "marketing_prohibited", "identity_verified", "customer_id", "match_method", "match_probability",
)
GOLDEN_COLUMNS: tuple[str, ...] = (
    "personal_id", "birth_date", "first_names", "last_name", "street_address", "postal_code", "city",
    "phone", "email", "iban", "bic", "marketing_prohibited", "identity_verified",
)
PERSONAL_COLUMNS: tuple[str, ...] = tuple(c for c in GOLDEN_COLUMNS if c != "identity_verified")
READ_CHUNK_ROWS = 100_000
PROVENANCE_COLUMNS: tuple[str, ...] = tuple(f"{unit}_record_pk" for unit in PROVENANCE_UNITS)
_UNIT_OF = {column: unit for unit, columns in PROVENANCE_UNITS.items() for column in columns}


def provenance_rows(provenance: pd.DataFrame, clusters: pd.Index) -> pd.DataFrame:
    """One row per cluster: for each unit of golden values, the record it came from.

    >>> prov = pd.DataFrame({"cluster": [1, 1, 1], "attribute": ["first_names", "last_name", "phone"],
    ...                      "record_key": [10, 10, 11]})
    >>> rows = provenance_rows(prov, pd.Index([1, 2]))
    >>> rows.loc[1, ["name_record_pk", "phone_record_pk"]].tolist(), bool(rows.loc[2].isna().all())
    ([10, 11], True)
    """
    # On integer codes, not strings: a million customers have some 13 million provenance rows.
    attribute = pd.Categorical(provenance["attribute"])
    unit_names = list(PROVENANCE_UNITS)
    unit_of_category = np.array([unit_names.index(_UNIT_OF[c]) if c in _UNIT_OF else -1
                                 for c in attribute.categories], dtype=np.int16)
    unit = unit_of_category[attribute.codes] if len(attribute) else np.empty(0, dtype=np.int16)
    keep = (attribute.codes >= 0) & (unit >= 0)
    units = pd.DataFrame({"cluster": provenance["cluster"].to_numpy()[keep], "unit": unit[keep],
                          "record_key": provenance["record_key"].to_numpy()[keep]})
    first = units.groupby(["cluster", "unit"])["record_key"].min()
    wide = first.unstack("unit").reindex(index=clusters, columns=range(len(unit_names)))
    wide.columns = list(PROVENANCE_COLUMNS)
    return wide.astype("Int64")


@dataclass
class ResolveSummary:
    records_resolved: int = 0
    versions_resolved: int = 0  # of records_resolved: held records whose current version changed
    affected_records: int = 0
    linked_personal_id: int = 0
    linked_probabilistic: int = 0
    linked_steward: int = 0
    new_customers: int = 0
    merges: int = 0
    reviews_opened: int = 0
    reviews_withdrawn: int = 0
    candidate_pairs: int = 0
    rounds: int = 0
    write_parts: int = 0

    def metadata(self) -> dict[str, int]:
        return {k: int(v) for k, v in asdict(self).items()}


# --- reading -------------------------------------------------------------------------------------

# The resolver's text columns: Arrow-backed strings.
_TEXT_COLUMNS: tuple[str, ...] = ("channel", "source_record_id", "personal_id", "first_names", "last_name",
                                  "street_address", "postal_code", "city", "phone", "email", "iban", "bic",
                                  "product", "metering_point", "match_method")


def _frame(cursor_rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    return _typed(pd.DataFrame.from_records(cursor_rows, columns=columns))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The resolver's dtypes, from the values as the database returns them."""
    frame["record_key"] = frame["record_key"].astype("int64")
    frame["observed_at"] = pd.to_datetime(frame["observed_at"], utc=True, format="mixed")
    frame["birth_date"] = pd.to_datetime(frame["birth_date"], errors="coerce")
    frame["marketing_prohibited"] = frame["marketing_prohibited"].astype("boolean")
    frame["identity_verified"] = frame["identity_verified"].astype(bool)
    frame["customer_id"] = frame["customer_id"].astype("Int64")
    frame["match_probability"] = frame["match_probability"].astype("Float64")
    for column in _TEXT_COLUMNS:
        frame[column] = frame[column].astype(pd.StringDtype("pyarrow"))
    return frame


def _read_records(connection: sa.Connection, where: str, params: tuple = ()) -> pd.DataFrame:
    columns = ["record_key", *RECORD_COLUMNS]
    sql = (f"SELECT s.source_record_pk, {', '.join('s.' + c for c in RECORD_COLUMNS)} "
           f"FROM source_record AS s {where}")
    result = connection.exec_driver_sql(sql, params) if params else connection.exec_driver_sql(sql)
    # In chunks: a million rows of Python tuples at once would double the load's peak memory.
    parts = []
    while chunk := result.fetchmany(READ_CHUNK_ROWS):
        parts.append(_frame([tuple(r) for r in chunk], columns))
    if not parts:
        return _frame([], columns)
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


# The values of a waiting record the resolver's frame holds, as the database would return them.
_WAITING_VALUES: tuple[str, ...] = tuple(c for c in RECORD_COLUMNS if c not in pending.RESOLUTION_COLUMNS)


def take_pending_values(connection: sa.Connection, waiting: pending.PendingRecords) -> pd.DataFrame:
    """The waiting records as `_read_records` would read them once written: each value in
    the database's own form (`BulkWriter.arrow_columns`), then typed the same way.

    The values move: `waiting` keeps only what the resolver's frame lacks, and is written
    from that frame (`pending.write`). Column by column, so that a first load's million
    records are not held three times over at once.
    """
    writer = bulk_writer(connection)
    frame = pd.DataFrame({"record_key": waiting.records["source_record_pk"].to_numpy(np.int64)})
    for name in _WAITING_VALUES:
        wire = writer.arrow_columns(waiting.records, source_record, [name]).column(0)
        if name in _TEXT_COLUMNS:  # kept in arrow: a million Python strings per column cost seconds
            frame[name] = pd.Series(pd.arrays.ArrowStringArray(wire.cast(pa.large_string())), copy=False)
        else:
            frame[name] = wire.to_pandas(date_as_object=True, coerce_temporal_nanoseconds=True)
        del wire
        waiting.records.drop(columns=[name], inplace=True)
    for name in pending.RESOLUTION_COLUMNS:
        frame[name] = None
    return _typed(frame[["record_key", *RECORD_COLUMNS]])


def read_records_by_key(connection: sa.Connection, ids: Collection[int]) -> pd.DataFrame:
    """The source records with these keys (`source_record_pk`), as the resolver reads them."""
    if not ids:
        return _frame([], ["record_key", *RECORD_COLUMNS])
    table = temp_values(connection, "resolve_ids", ids)
    return _read_records(connection, f"WHERE s.source_record_pk IN (SELECT value FROM {table})")


def _ids(connection: sa.Connection, sql: str) -> set[int]:
    return {int(r[0]) for r in connection.exec_driver_sql(sql).all()}


def _reviews_touching(connection: sa.Connection, keys: Collection[int], statuses: tuple[str, ...]) -> list[tuple]:
    """(left record, right record, status) of the reviews in these statuses naming one of these records."""
    wanted = ", ".join(f"'{status}'" for status in statuses)  # the module's own constants, never input
    if not len(keys) or connection.exec_driver_sql(
            f"SELECT 1 FROM review_queue WHERE status IN ({wanted}) LIMIT 1").first() is None:
        return []
    table = temp_values(connection, "resolve_reviews", keys)
    return [tuple(r) for r in connection.exec_driver_sql(
        "SELECT r.left_source_record_pk, r.right_source_record_pk, r.status FROM review_queue AS r "
        f"WHERE r.status IN ({wanted}) AND r.left_source_record_pk IS NOT NULL "
        f"AND r.right_source_record_pk IS NOT NULL AND (r.left_source_record_pk IN (SELECT value FROM {table}) "
        f"OR r.right_source_record_pk IN (SELECT value FROM {table}))").all()]


def _decided_pairs(connection: sa.Connection, keys: Collection[int]) -> pd.DataFrame:
    """Steward decisions touching these records: (key_l, key_r, status)."""
    frame = pd.DataFrame(_reviews_touching(connection, keys, ("accepted", "rejected")),
                         columns=["key_l", "key_r", "status"])
    if len(frame):
        low = frame[["key_l", "key_r"]].min(axis=1)
        high = frame[["key_l", "key_r"]].max(axis=1)
        frame["key_l"], frame["key_r"] = low.astype("int64"), high.astype("int64")
    return frame


# --- the affected set ------------------------------------------------------------------------------

def _affected(connection: sa.Connection, seeds: pd.DataFrame, seed_features: pd.DataFrame,
              settings: MatchSettings, scorer: Scorer, summary: ResolveSummary) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Grow the seed records to whole components; returns (records, edges).

    Each held record is read from the register, and its match features computed, once: in
    the first round that needs it as a candidate or a member of a reached customer.
    """
    records, features = seeds, seed_features
    # Candidates read in an earlier round and not added: a later round's candidates are
    # mostly these, and are not read and featured again.
    spare, spare_features = seeds.iloc[:0], seed_features.iloc[:0]

    def take(keys: set[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """These records and their features: from `spare`, the rest read and kept there."""
        nonlocal spare, spare_features
        values = np.fromiter(keys, dtype=np.int64, count=len(keys))
        unread = values[~np.isin(values, spare["record_key"].to_numpy(np.int64))]
        if len(unread):
            fetched = read_records_by_key(connection, unread.tolist())
            spare = pd.concat([spare, fetched], ignore_index=True)
            spare_features = pd.concat([spare_features, match_features(fetched)], ignore_index=True)
        wanted = spare["record_key"].isin(values).to_numpy()
        return spare[wanted], spare_features[wanted]

    # Nothing resolved before this run (the first load): no held record can be a candidate.
    held_before = _anything_resolved(connection)
    frontier = seeds
    frontier_keys = _probe_keys(seed_features) if held_before else _NO_KEYS
    edge_parts: list[pd.DataFrame] = []
    while len(frontier) and summary.rounds < settings.max_rounds:
        summary.rounds += 1
        # An index, not a set of Python ints: a first load's frontier is every record (5M: 400 MB).
        known = pd.Index(records["record_key"].to_numpy(np.int64))

        def unknown(ids: set[int]) -> set[int]:
            values = np.fromiter(ids, dtype=np.int64, count=len(ids))
            return set(values[known.get_indexer(values) < 0].tolist())

        candidates: set[int] = set()
        if len(frontier_keys) and held_before:
            table = temp_values(connection, "resolve_keys", frontier_keys["blocking_key"].tolist())
            candidates |= _ids(connection, f"SELECT DISTINCT m.source_record_pk FROM match_key AS m "
                                           f"WHERE m.blocking_key IN (SELECT value FROM {table})")
        codes = frontier["personal_id"].dropna().unique().tolist()
        same_code: set[int] = set()
        if codes and held_before:
            table = temp_values(connection, "resolve_codes", codes, "TEXT")
            same_code = _ids(connection, f"SELECT s.source_record_pk FROM source_record AS s "
                                         f"WHERE s.personal_id IN (SELECT value FROM {table})")
        # The records of the frontier's reviews: a steward's decision binds them, and an open
        # review is resolved whole, so one that a new version of a record no longer supports
        # is withdrawn rather than left holding a customer off the marketing list.
        reviewed = _reviews_touching(connection, frontier["record_key"].to_numpy(np.int64),
                                     ("accepted", "rejected", "open"))
        review_ends = {int(key) for left, right, _ in reviewed for key in (left, right)}
        candidates = unknown(candidates | same_code | review_ends)
        pool, pool_features = records, features
        if candidates:
            fetched, fetched_features = take(candidates)
            pool = pd.concat([records, fetched], ignore_index=True)
            pool_features = pd.concat([features, fetched_features], ignore_index=True)
        edges = score_pairs(pool, features=pool_features, scorer=scorer,
                            new_keys=frontier["record_key"].to_numpy(np.int64),
                            batch_rows=settings.score_batch_rows,
                            min_probability=min(settings.doubt_threshold, settings.review_threshold))
        edges = edges[_may_be_reviewed(edges, pool, settings)]
        edge_parts.append(edges)
        ends = np.unique(np.concatenate([edges["key_l"].to_numpy(np.int64), edges["key_r"].to_numpy(np.int64)]))
        reached = set(ends[known.get_indexer(ends) < 0].tolist()) | unknown(same_code | review_ends)
        # A customer is resolved whole: the seeds' own customers too, in the first round.
        owners = set(frontier["customer_id"].dropna().astype(int).tolist()) if summary.rounds == 1 else set()
        if reached or owners:
            customers = set(pool.loc[pool["record_key"].isin(reached), "customer_id"].dropna().astype(int).tolist())
            customers = sorted(customers | owners)
            if customers:
                table = temp_values(connection, "resolve_mates", [int(c) for c in customers])
                mates = _ids(connection, f"SELECT s.source_record_pk FROM source_record AS s "
                                         f"WHERE s.customer_id IN (SELECT value FROM {table})")
                reached |= unknown(mates)
        is_added = pool["record_key"].isin(reached).to_numpy()
        added, added_features = pool[is_added], pool_features[is_added]
        missing = reached - set(added["record_key"].tolist())
        if missing:
            late, late_features = take(missing)
            added = pd.concat([added, late], ignore_index=True)
            added_features = pd.concat([added_features, late_features], ignore_index=True)
        if len(added):  # (a first load adds none: its records are not copied)
            records = pd.concat([records, added], ignore_index=True)
            features = pd.concat([features, added_features], ignore_index=True)
            kept = ~spare["record_key"].isin(added["record_key"].to_numpy(np.int64)).to_numpy()
            spare, spare_features = spare[kept], spare_features[kept]
        frontier, frontier_keys = added, _probe_keys(added_features)
    if len(frontier):
        # Resolving part of a component would break rule 3 silently: stop the load instead.
        raise RuntimeError(f"identity resolution: the affected set was still growing after {settings.max_rounds} "
                           f"rounds ({len(records)} records); raise MatchSettings.max_rounds")
    edges = pd.concat(edge_parts, ignore_index=True) if edge_parts else score_pairs(records.iloc[:0], scorer=scorer)
    edges = edges.drop_duplicates(["key_l", "key_r"]).reset_index(drop=True)
    # Keep only edges inside the affected set (a scored candidate not reached is irrelevant).
    inside = records["record_key"].to_numpy(np.int64)
    edges = edges[np.isin(edges["key_l"].to_numpy(np.int64), inside)
                  & np.isin(edges["key_r"].to_numpy(np.int64), inside)].reset_index(drop=True)
    return records.set_axis(pd.RangeIndex(len(records)), copy=False), edges


_NO_KEYS = pd.DataFrame({"blocking_key": np.zeros(0, np.int64), "record_key": np.zeros(0, np.int64)})


def _probe_keys(features: pd.DataFrame) -> pd.DataFrame:
    """The keys by which these records find held candidates: the blocking rules', and the
    doubt-only rules' as `blocking.probe_keys` pairs them with what `match_key` holds."""
    return probe_keys(features, BLOCKING_KEYS, DOUBT_BLOCKING_KEYS)


def prohibiting_keys(records: pd.DataFrame) -> pd.Series:
    """The record keys of the records that prohibit direct marketing (rule 5's weaker reviews)."""
    return records.loc[records["marketing_prohibited"].fillna(False).to_numpy(bool), "record_key"]


def _may_be_reviewed(edges: pd.DataFrame, pool: pd.DataFrame, settings: MatchSettings) -> np.ndarray:
    """The edges a review could stand on: at or above the review threshold, or a weaker one
    (at or above `doubt_threshold`) with a record that prohibits direct marketing. Decided by
    the pair's own records, so the affected set grows over them whatever the load order."""
    probability = edges["match_probability"].to_numpy(float)
    keep = probability >= settings.review_threshold
    weak = ~keep & (probability >= settings.doubt_threshold)
    if weak.any():
        prohibiting = prohibiting_keys(pool).to_numpy(np.int64)
        keep |= weak & (np.isin(edges["key_l"].to_numpy(np.int64), prohibiting)
                        | np.isin(edges["key_r"].to_numpy(np.int64), prohibiting))
    return keep


def _anything_resolved(connection: sa.Connection) -> bool:
    """Whether any record was resolved before (the first load has nothing to match against)."""
    return connection.exec_driver_sql(
        "SELECT 1 FROM source_record WHERE customer_id IS NOT NULL LIMIT 1").first() is not None


def load_order_free_rank(records: pd.DataFrame) -> np.ndarray:
    """Each record's rank by (channel, source_record_id), for breaking the clustering's exact ties.

    Keys (`source_record_pk`) are handed out in load order, so ties broken by key would let
    the order of the days decide which of two equal pairs is put to a steward (rule 3).

    >>> load_order_free_rank(pd.DataFrame({"channel": ["web", "mail", "web"], "source_record_id": ["2", "9", "1"]}))
    array([2, 0, 1])
    """
    table = pa.table({column: pa.array(records[column], type=pa.string(), from_pandas=True)
                      for column in ("channel", "source_record_id")})
    # Arrow sorts a million pairs of strings in 0.7 s of CPU, pandas in 3.7 s.
    order = pc.sort_indices(table, sort_keys=[("channel", "ascending"), ("source_record_id", "ascending")]).to_numpy()
    rank = np.empty(len(records), dtype=np.int64)
    rank[order] = np.arange(len(records), dtype=np.int64)
    return rank


# --- stable ids ----------------------------------------------------------------------------------

def assign_customer_ids(current: pd.Series, cluster_of: pd.Series) -> tuple[dict[int, int | None], list[tuple[int, int]]]:
    """Which customer id each cluster carries, and which customers merge into which.

    `current`: record_key -> customer_id (NA for unresolved records);
    `cluster_of`: record_key -> cluster key. Returns ({cluster: customer_id or None for a
    new customer}, [(merged_customer_id, surviving_customer_id)]).

    >>> cur = pd.Series([1, 1, 2, pd.NA], index=[10, 11, 12, 13], dtype="Int64")
    >>> clusters = pd.Series([10, 10, 10, 13], index=[10, 11, 12, 13])
    >>> assign_customer_ids(cur, clusters)
    ({10: 1, 13: None}, [(2, 1)])
    """
    frame = pd.DataFrame({"customer_id": current.reindex(cluster_of.index), "cluster": cluster_of})
    held = frame.dropna(subset=["customer_id"])
    carried: dict[int, int | None] = {int(c): None for c in cluster_of.unique()}
    merges: list[tuple[int, int]] = []
    if len(held):
        counts = held.groupby(["customer_id", "cluster"]).size().rename("n").reset_index()
        # Each customer stays with the cluster holding most of its records; ties: smallest cluster key.
        keep = counts.sort_values(["customer_id", "n", "cluster"], ascending=[True, False, True]) \
            .drop_duplicates("customer_id")
        for cluster, ids in keep.groupby("cluster")["customer_id"]:
            ordered = sorted(int(i) for i in ids)
            carried[int(cluster)] = ordered[0]  # the oldest id survives
            merges.extend((other, ordered[0]) for other in ordered[1:])
    return carried, merges


# --- writing --------------------------------------------------------------------------------------

def _allocate_customer_ids(connection: sa.Connection, n: int) -> list[int]:
    if n == 0:
        return []
    if connection.dialect.name == "postgresql":
        return sequence_values(connection, "customer", "customer_id", n).tolist()
    # SQLite AUTOINCREMENT: above the highest id ever handed out (sqlite_sequence), never reused.
    seq = connection.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = 'customer'").scalar()
    top = connection.exec_driver_sql("SELECT MAX(customer_id) FROM customer").scalar()
    start = max(int(seq or 0), int(top or 0)) + 1
    return list(range(start, start + n))


def _update_rows(connection: sa.Connection, table: sa.Table, key: str, frame: pd.DataFrame,
                 columns: list[str]) -> None:
    """UPDATE table SET columns FROM frame by key, through a temporary staging table."""
    if frame.empty:
        return
    stage = f"stage_{table.name}"
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {stage}")
    staging = sa.Table(stage, sa.MetaData(), *[sa.Column(c, table.c[c].type) for c in [key, *columns]],
                       prefixes=["TEMPORARY"])
    staging.create(connection)
    bulk_writer(connection).insert(staging, frame, [key, *columns])
    assignments = ", ".join(f"{c} = {stage}.{c}" for c in columns)
    connection.exec_driver_sql(
        f"UPDATE {table.name} SET {assignments} FROM {stage} WHERE {table.name}.{key} = {stage}.{key}")
    connection.exec_driver_sql(f"DROP TABLE {stage}")


def _delete_for_customers(connection: sa.Connection, table: sa.Table, customer_ids: Collection[int]) -> None:
    if customer_ids and connection.exec_driver_sql(f"SELECT 1 FROM {table.name} LIMIT 1").first():
        ids = temp_values(connection, "resolve_customers", customer_ids)
        connection.exec_driver_sql(f"DELETE FROM {table.name} WHERE customer_id IN (SELECT value FROM {ids})")


def _merge_customers(connection: sa.Connection, current: pd.Series, merges: list[tuple[int, int]], *,
                     now: dt.datetime, run_id: str | None, decided_by: str | None) -> None:
    """Each merged customer resolves to its survivor and keeps no personal values; earlier
    merges into it now point at its survivor. `current`: record_key -> customer id before."""
    reason = "steward decision" if decided_by else "matched: same person"
    connection.execute(customer_merge.insert(), [
        {"merged_customer_id": m, "surviving_customer_id": s, "merged_at": now, "reason": reason,
         "decided_by": decided_by, "run_id": run_id} for m, s in merges])
    _record_merged_records(connection, current, [m for m, _ in merges])
    merged_frame = pd.DataFrame({"customer_id": [m for m, _ in merges], "merged_into": [s for _, s in merges]})
    for column in PERSONAL_COLUMNS:
        merged_frame[column] = None
    merged_frame["updated_at"] = pd.Timestamp(now)
    _update_rows(connection, customer, "customer_id", merged_frame, ["merged_into", *PERSONAL_COLUMNS, "updated_at"])
    # Earlier merges into a merged customer now point at its survivor (one statement: each
    # is a lookup in the partial index of merged customers).
    survivor_of = dict(merges)
    stage = temp_values(connection, "resolve_merged", list(survivor_of))
    pointing = _ids(connection, f"SELECT customer_id FROM customer WHERE merged_into IN (SELECT value FROM {stage})"
                    ) - set(survivor_of)
    if pointing:
        rows = connection.execute(sa.select(customer.c.customer_id, customer.c.merged_into)
                                  .where(customer.c.customer_id.in_(sorted(pointing)))).all()
        _update_rows(connection, customer, "customer_id",
                     pd.DataFrame({"customer_id": [int(c) for c, _ in rows],
                                   "merged_into": [int(survivor_of[int(m)]) for _, m in rows]}),
                     ["merged_into"])


def _changed(records: pd.DataFrame, assigned: pd.DataFrame) -> np.ndarray:
    """Which records' customer, match method or probability the resolution changes."""
    before = pd.DataFrame({"customer_id": records["customer_id"].to_numpy(),
                           "match_method": records["match_method"].to_numpy(dtype=object),
                           "match_probability": records["match_probability"].to_numpy()})
    changed = ((before["customer_id"].astype("Int64").to_numpy() != assigned["customer_id"].to_numpy())
               | (before["match_method"].astype(object).fillna("").to_numpy()
                  != assigned["match_method"].astype(object).fillna("").to_numpy())
               | (before["match_probability"].astype("Float64").fillna(-1.0).round(12).to_numpy()
                  != assigned["match_probability"].astype("Float64").fillna(-1.0).round(12).to_numpy()))
    return np.asarray(pd.array(changed, dtype="boolean").fillna(True), dtype=bool)


def _among_sorted(values: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """Which values are among the sorted ones (a binary search each: no set of them all built).

    >>> _among_sorted(np.array([3, 5, 9]), np.array([1, 3, 9])).tolist()
    [True, False, True]
    """
    if not len(sorted_values):
        return np.zeros(len(values), dtype=bool)
    found = np.searchsorted(sorted_values, values)
    return (found < len(sorted_values)) & (sorted_values[np.minimum(found, len(sorted_values) - 1)] == values)


def write_parts(records: pd.DataFrame, cluster_of: pd.Series, proposed: pd.DataFrame,
                existing: Collection[tuple[int, int]], part_records: int) -> list[np.ndarray]:
    """The records' positions in parts of about `part_records`, each a union of whole groups:
    a final cluster, the records a customer held before, the two records of a review proposed
    or already on the queue. A part can then be written alone: its customers, merges and
    reviews lie inside it. A part ends with the group that crosses its size, so a group bigger
    than `part_records` makes its part as big as it needs.

    >>> records = pd.DataFrame({"record_key": [10, 11, 12, 13], "customer_id": pd.array([7, pd.NA, 7, pd.NA])})
    >>> cluster_of = pd.Series([10, 11, 12, 13], index=[10, 11, 12, 13])
    >>> reviews = pd.DataFrame({"key_l": [11], "key_r": [13]})
    >>> [part.tolist() for part in write_parts(records, cluster_of, reviews, [], 1)]
    [[0, 2], [1, 3]]
    >>> [part.tolist() for part in write_parts(records, cluster_of, reviews, [], 4)]
    [[0, 1, 2, 3]]
    >>> len(write_parts(records, cluster_of, reviews, [], 0))
    2
    """
    keys = pd.Index(records["record_key"].to_numpy(np.int64))
    n = len(keys)
    part_records = max(1, part_records)  # (a setting of 0 means a part per group, not a division by zero)
    if n <= part_records:
        return [np.arange(n)]
    # Edges of the groups: each record to its cluster's first record, each held record to its
    # customer's first record, and the two records of each review.
    sources = [np.arange(n)]
    targets = [keys.get_indexer(cluster_of.reindex(keys).to_numpy(np.int64))]
    customer_ids = records["customer_id"].astype("Int64")
    held = customer_ids.notna().to_numpy()
    if held.any():
        sources.append(np.flatnonzero(held))
        targets.append(pd.Series(sources[-1]).groupby(customer_ids[held].to_numpy(np.int64)).transform("min")
                       .to_numpy(np.int64))
    pairs = [(int(a), int(b)) for a, b in zip(proposed["key_l"].tolist(), proposed["key_r"].tolist())]
    pairs += [(int(a), int(b)) for a, b in existing]
    if pairs:
        ends = keys.get_indexer(np.asarray(pairs, dtype=np.int64).ravel()).reshape(-1, 2)
        ends = ends[(ends >= 0).all(axis=1)]
        sources.append(ends[:, 0])
        targets.append(ends[:, 1])
    sources, targets = np.concatenate(sources), np.concatenate(targets)
    group = connected_components(n, sources, targets)
    order = np.argsort(group, kind="stable")
    starts = np.flatnonzero(np.r_[True, group[order][1:] != group[order][:-1]])
    # Each group goes to the part in which its first record falls, counting records in order.
    part_of_group = starts // part_records
    boundaries = starts[np.flatnonzero(np.diff(part_of_group)) + 1]
    return np.split(order, boundaries)


@dataclass
class _Writes:
    """The resolution's writes, a part of whole groups at a time (`write_parts`). What each part
    looks up is indexed once for all parts: a part's work is set by its own size."""

    connection: sa.Connection
    now: dt.datetime
    run_id: str | None
    decided_by: str | None
    records: pd.DataFrame                # the resolved records
    cluster_of: pd.Series                # their cluster keys, row for row
    resolution: Resolution
    carried: pd.Series                   # cluster key -> its customer id
    new_ids: np.ndarray                  # the customer ids this resolution handed out, sorted
    survivor_of: dict[int, int]          # merged customer id -> surviving customer id
    waiting: pending.PendingRecords | None
    is_waiting: np.ndarray               # row for row: a record the load left waiting
    is_unresolved: np.ndarray            # row for row: a record new or in a new version
    summary: ResolveSummary
    existing: dict                       # review entries among the resolved records

    def part(self, positions: np.ndarray | None = None) -> None:
        """Customers, merges, the part's source records, provenance, services and reviews
        (`positions`: the part's rows; None: every record)."""
        connection, now, carried = self.connection, self.now, self.carried
        every = positions is None
        records = self.records if every else self.records.iloc[positions]
        cluster_of = self.cluster_of if every else self.cluster_of.iloc[positions]
        is_waiting = self.is_waiting if every else self.is_waiting[positions]
        is_unresolved = self.is_unresolved if every else self.is_unresolved[positions]
        keys = records["record_key"].to_numpy(np.int64)
        golden, provenance = golden_records(records, cluster_of)
        prov = provenance_rows(provenance, golden.index) if len(golden) else None
        del provenance
        products = services(records, cluster_of)

        # Customers: golden values for every cluster's customer.
        golden["customer_id"] = golden.index.map(carried).astype("int64")
        golden["updated_at"] = pd.Timestamp(now)
        writer = bulk_writer(connection)
        is_new = pd.Series(_among_sorted(golden["customer_id"].to_numpy(np.int64), self.new_ids), index=golden.index)
        if is_new.any():
            writer.insert(customer, golden[is_new].assign(created_at=pd.Timestamp(now)),
                          ["customer_id", *GOLDEN_COLUMNS, "created_at", "updated_at"])
        _update_rows(connection, customer, "customer_id", golden[~is_new], [*GOLDEN_COLUMNS, "updated_at"])

        # Merges: the merged customer resolves to its survivor and keeps no personal values.
        current = pd.Series(records["customer_id"].to_numpy(), index=keys, dtype="Int64")
        held_ids = set(current.dropna().astype(int).tolist())
        merges = [(m, s) for m, s in self.survivor_of.items() if m in held_ids] if self.survivor_of else []
        if merges:
            _merge_customers(connection, current, merges, now=now, run_id=self.run_id, decided_by=self.decided_by)

        # Source records: their customer, how they were matched, and with what probability.
        resolution = self.resolution
        assigned = pd.DataFrame({
            "source_record_pk": keys,
            "customer_id": cluster_of.map(carried).to_numpy(dtype="int64"),
            "match_method": resolution.method.reindex(keys).to_numpy(dtype=object),
            "match_probability": pd.array(resolution.probability.reindex(keys).to_numpy(), dtype="Float64"),
        })
        changed = _changed(records, assigned)
        if self.waiting is not None and is_waiting.any():
            all_waiting = bool(is_waiting.all())  # a first load: no copy of its million rows
            resolved = pd.DataFrame({c: frame[c].array if all_waiting else frame[c].array[is_waiting]
                                     for frame, names in ((assigned, assigned.columns), (records, _WAITING_VALUES))
                                     for c in names}, copy=False)
            pending.write_part(connection, self.waiting, resolved)
            del resolved
            changed &= ~is_waiting
        _update_rows(connection, source_record, "source_record_pk", assigned[changed],
                     ["customer_id", "match_method", "match_probability"])
        counts = assigned.loc[is_unresolved, "match_method"].value_counts()
        self.summary.linked_personal_id += int(counts.get("personal_id", 0))
        self.summary.linked_probabilistic += int(counts.get("probabilistic", 0))
        self.summary.linked_steward += int(counts.get("steward", 0))

        # Provenance and services: replaced for every customer the part touches (a customer
        # this resolution created has none yet).
        touched = set(golden.loc[~is_new, "customer_id"].tolist()) | {m for m, _ in merges}
        _delete_for_customers(connection, golden_provenance, touched)
        if prov is not None:
            prov["customer_id"] = prov.index.map(carried).astype("int64")
            writer.insert(golden_provenance, prov, ["customer_id", *PROVENANCE_COLUMNS])
        _delete_for_customers(connection, service, touched)
        if len(products):
            prods = products.assign(customer_id=products["cluster"].map(carried).astype("int64"))
            writer.insert(service, prods, ["customer_id", "product", "metering_point", "first_seen", "last_seen"])

        # Review entries: the queue holds what this resolution proposes, whatever the order the
        # records came in (rule 3).
        proposed = resolution.reviews[resolution.reviews["key_l"].isin(keys).to_numpy()]
        inside = set(keys.tolist())
        existing = {pair: entry for pair, entry in self.existing.items() if pair[0] in inside} if self.existing else {}
        opened, withdrawn = _keep_reviews(connection, proposed, cluster_of.map(carried), existing,
                                          now=now, run_id=self.run_id)
        self.summary.reviews_opened += opened
        self.summary.reviews_withdrawn += withdrawn


def resolve_identities(connection: sa.Connection, *, now: dt.datetime, run_id: str | None,
                       settings: MatchSettings = MatchSettings(), model: MatchModel | None = None,
                       seeds: Collection[int] | None = None, decided_by: str | None = None) -> ResolveSummary:
    """Resolve the unresolved source records (or the given seed records) into customers."""
    model = model or MatchModel.load()
    summary = ResolveSummary()
    if connection.dialect.name == "postgresql":
        # One resolver at a time (a nightly load and a steward's decision), until commit.
        lock_register(connection)
        # The lookups probe big indexes for a few thousand keys. At the default cost of a
        # random page (4.0, spinning disks) the planner scans all of `match_key` (12M rows)
        # instead: 1.6 s against 0.4 s per round. 1.1 is the usual figure for SSDs; it
        # holds until this transaction ends.
        connection.exec_driver_sql("SET LOCAL random_page_cost = 1.1")
    # Unresolved: new records (no customer yet), and records whose current version the
    # load just replaced (match_method cleared): their customer is recomputed whole.
    unresolved = _read_records(connection, "WHERE s.customer_id IS NULL OR s.match_method IS NULL")
    # The load's new records, keyed but not yet written: written below, once, with their customer.
    waiting = pending.take(connection)
    if waiting is not None:
        values = take_pending_values(connection, waiting)
        unresolved = values if unresolved.empty else pd.concat([unresolved, values], ignore_index=True)
        del values
    start = unresolved if seeds is None else pd.concat(
        [unresolved, read_records_by_key(connection, set(seeds) - set(unresolved["record_key"].tolist()))],
        ignore_index=True)
    if start.empty:
        return summary
    summary.records_resolved = len(unresolved)
    summary.versions_resolved = int(unresolved["customer_id"].notna().sum())
    start_features = match_features(start)
    start_keys = held_keys(start_features, BLOCKING_KEYS, DOUBT_BLOCKING_KEYS)
    with open_scorer(model) as scorer:
        records, edges = _affected(connection, start, start_features, settings, scorer, summary)
    # `records` holds them all now: a first load's million, held twice, would set the peak.
    unresolved_keys = unresolved["record_key"].to_numpy(np.int64)
    keys_unresolved_only = seeds is None
    del start, start_features, unresolved
    summary.affected_records = len(records)
    summary.candidate_pairs = len(edges)

    decided = _decided_pairs(connection, records["record_key"].tolist())
    must = list(decided.loc[decided["status"] == "accepted", ["key_l", "key_r"]].itertuples(index=False, name=None))
    cannot = list(decided.loc[decided["status"] == "rejected", ["key_l", "key_r"]].itertuples(index=False, name=None))
    resolution = resolve_clusters(records.assign(order_key=load_order_free_rank(records)), edges,
                                  link_threshold=settings.link_threshold,
                                  review_threshold=settings.review_threshold, must_link=must,
                                  cannot_link=cannot, ambiguity_margin=settings.ambiguity_margin,
                                  doubt_threshold=min(settings.doubt_threshold, settings.review_threshold),
                                  doubt_keys=prohibiting_keys(records))
    del edges  # (the resolution holds what the writes need: a first load's pairs are millions)
    keys = records["record_key"].to_numpy(np.int64)
    cluster_of = resolution.cluster_of.reindex(keys)
    current = pd.Series(records["customer_id"].to_numpy(), index=keys, dtype="Int64")
    carried, merges = assign_customer_ids(current, cluster_of)
    fresh_clusters = sorted(c for c, cid in carried.items() if cid is None)
    new_ids = _allocate_customer_ids(connection, len(fresh_clusters))
    carried.update(dict(zip(fresh_clusters, new_ids)))
    summary.new_customers = len(new_ids)
    summary.merges = len(merges)

    existing = _entries_among(connection, pd.Index(keys))
    is_waiting = np.zeros(len(keys), dtype=bool) if waiting is None else pending.positions(waiting, keys) >= 0
    writes = _Writes(connection, now=now, run_id=run_id, decided_by=decided_by, records=records,
                     cluster_of=cluster_of, resolution=resolution,
                     # A Series, not the dict: each part maps its clusters through one hash index.
                     carried=pd.Series(carried, dtype="int64"), new_ids=np.sort(np.asarray(new_ids, dtype=np.int64)),
                     survivor_of=dict(merges), waiting=waiting, is_waiting=is_waiting,
                     is_unresolved=np.isin(keys, unresolved_keys), summary=summary, existing=existing)
    parts = write_parts(records, cluster_of, resolution.reviews, existing, settings.resolve_part_records)
    summary.write_parts = len(parts)
    # A first load's tables are empty: their indexes (and PostgreSQL's keys) are built once,
    # after the last part, not kept up row by row.
    with contextlib.ExitStack() as built_after:
        for table in (customer, source_record, golden_provenance, service):
            built_after.enter_context(indexes_and_keys_built_after(connection, table))
        for positions in parts:
            writes.part(positions if len(parts) > 1 else None)
    del writes, records, cluster_of, resolution  # (before the keys are written: a 5M load's are 600 MB)
    if waiting is not None:
        pending.write_versions(connection, waiting)

    # The new records join the blocking index.
    if len(unresolved_keys):
        # In the primary key's order already (`held_keys`), which a subset keeps.
        new_keys = start_keys if keys_unresolved_only else start_keys[start_keys["record_key"].isin(unresolved_keys)]
        del start_keys
        if len(new_keys):
            # Renamed without a copy: a 5M first load's 37M keys are 600 MB.
            renamed = pd.DataFrame({"blocking_key": new_keys["blocking_key"].to_numpy(),
                                    "source_record_pk": new_keys["record_key"].to_numpy()}, copy=False)
            del new_keys
            bulk_writer(connection).insert(match_key, renamed, ["blocking_key", "source_record_pk"])
    log.info("identity resolution: %d new records, %d affected, %d new customers, %d merges, %d reviews opened, "
             "%d withdrawn", summary.records_resolved, summary.affected_records, summary.new_customers,
             summary.merges, summary.reviews_opened, summary.reviews_withdrawn)
    return summary


def _record_merged_records(connection: sa.Connection, current: pd.Series, merged_ids: list[int]) -> None:
    """`merge_record`: the records each merged customer held when it was merged (an unmerge gives them
    their old id back, `pipeline.register.steward.unmerge`)."""
    held = current[current.isin(merged_ids)]
    if held.empty:
        return
    merge_ids = dict(connection.execute(sa.select(customer_merge.c.merged_customer_id, customer_merge.c.merge_id)
                                        .where(customer_merge.c.merged_customer_id.in_(sorted(merged_ids)))).all())
    connection.execute(merge_record.insert(), [
        {"merge_id": int(merge_ids[int(cid)]), "source_record_pk": int(pk)} for pk, cid in held.items()])


def _evidence(evidence: object, reason: str) -> dict:
    parsed = json.loads(evidence) if isinstance(evidence, str) and evidence else {}
    return {"reason": reason, "comparisons": parsed}


def _keep_reviews(connection: sa.Connection, proposed: pd.DataFrame, customer_of: pd.Series,
                  existing: dict[tuple[int, int], tuple[int, str, tuple]], *,
                  now: dt.datetime, run_id: str | None) -> tuple[int, int]:
    """Make the review queue of the resolved records what the resolution proposes; (opened, withdrawn).

    `customer_of`: record_key -> customer id, for every record resolved. The resolved records
    are whole components over every edge a review could stand on, so the reviews among them
    are exactly those one load of every record would propose. Any entry naming a pair of them:
    - a steward's decision (accepted, rejected) stands, and its pair is never proposed again;
    - an open entry still proposed stays open, with today's customers, probability and evidence;
    - an open entry no longer proposed is `withdrawn`: a later record tied its two sides
      together, or another pair of their records carries the doubt now. Loading the days in
      calendar order would otherwise leave open a pair that a whole load never proposes;
    - a withdrawn entry proposed again is reopened, so a pair has one entry whatever happens.
    """
    wanted = {(int(r.key_l), int(r.key_r)): r for r in proposed.itertuples(index=False)}

    def values(pair: tuple[int, int]) -> dict:
        review = wanted[pair]
        return {"left_customer_id": int(customer_of[pair[0]]), "right_customer_id": int(customer_of[pair[1]]),
                "probability": float(review.match_probability),
                "evidence": _evidence(review.evidence, review.reason)}

    fresh = [pair for pair in wanted if pair not in existing]
    if fresh:
        connection.execute(review_queue.insert(), [
            {"left_source_record_pk": l, "right_source_record_pk": r, **values((l, r)),
             "status": "open", "created_at": now, "run_id": run_id} for l, r in fresh])
    withdrawn = reopened = 0
    for pair, (review_id, status, now_shown) in existing.items():
        update = review_queue.update().where(review_queue.c.review_id == review_id)
        if pair in wanted and status in ("open", "withdrawn"):
            fields = values(pair)
            if status == "open" and now_shown == _shown(fields["left_customer_id"], fields["right_customer_id"],
                                                        fields["probability"]):
                continue
            reopened += status == "withdrawn"
            connection.execute(update.values(status="open", decided_at=None, **fields))
        elif pair not in wanted and status == "open":
            withdrawn += 1
            connection.execute(update.values(status="withdrawn", decided_at=now))
    return len(fresh) + reopened, withdrawn


def _shown(left_customer_id: int | None, right_customer_id: int | None, probability: float) -> tuple:
    """What an open entry shows that a later resolution may change (the evidence follows the probability)."""
    return left_customer_id, right_customer_id, round(float(probability), 12)


def _entries_among(connection: sa.Connection, keys: pd.Index) -> dict[tuple[int, int], tuple[int, str, tuple]]:
    """Review entries naming two of these records: (smaller key, larger key) -> (review_id, status, shown)."""
    if not len(keys) or connection.exec_driver_sql("SELECT 1 FROM review_queue LIMIT 1").first() is None:
        return {}
    table = temp_values(connection, "resolve_review", [int(k) for k in keys])
    rows = connection.exec_driver_sql(
        "SELECT review_id, left_source_record_pk, right_source_record_pk, status, left_customer_id, "
        "right_customer_id, probability FROM review_queue "
        f"WHERE left_source_record_pk IN (SELECT value FROM {table}) "
        f"AND right_source_record_pk IN (SELECT value FROM {table})").all()
    # Oldest first: of two entries for one pair (written before entries were kept once per
    # pair), a decision outranks an open one.
    entries: dict[tuple[int, int], tuple[int, str, tuple]] = {}
    for review_id, left, right, status, *shown in sorted(rows, key=lambda r: (r[3] in ("accepted", "rejected"), r[0])):
        entries[(min(int(left), int(right)), max(int(left), int(right)))] = (int(review_id), status, _shown(*shown))
    return entries
