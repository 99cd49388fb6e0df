"""The golden record of each cluster, attribute by attribute (docs/register_rules.md rule 6).

Every value is picked from one record of the cluster by a fixed ranking, so the
golden record is a function of the cluster's records alone, whatever order they
were loaded in. *Latest* means: latest `observed_at`; on a tie, the channel first
in the fixed order web, phone, mail, email, in_person (`CHANNEL_ORDER`), then the
smallest `source_record_id` (then record_key, should a caller pass a pair twice).

- first_names, last_name: one unit, from the latest identity-verified record
  (service desk with ID checked, strongly authenticated web) that has both names,
  else the latest record that has both; if no record has both, the best-ranked
  record with either (the other stays NA).
- personal_id, birth_date: from the latest record holding a valid code (one code
  per cluster by construction). A cluster without a code takes birth_date from
  the latest record that has one (read from an invalid code: flagged there).
- street_address, postal_code, city: one unit, from the latest record with all
  three; if none has all three, from the latest record with any of them. (A
  complete older address is preferred to a partial newer one: a letter needs
  all three parts.)
- phone, email: each from the latest record that has it.
- iban, bic: one unit, from the latest record with an IBAN (bic may be NA).
- marketing_prohibited: from the latest record that states it either way; NA
  states nothing, so a later empty answer does not erase an earlier one.
- identity_verified: true if any record is verified (provenance: the latest
  verified record); otherwise false (provenance: the latest record).

`golden` is indexed by cluster key (index name `cluster`: the smallest record_key
of the cluster, as `Resolution.cluster_of` gives it), one column per attribute.
`provenance` has one row per cluster and attribute whose golden value is not NA:
(cluster, attribute, record_key, channel, observed_at); attribute and channel
are categoricals (4-5 million rows for a million records: strings would cost).

>>> import pandas as pd
>>> ts = lambda s: pd.Timestamp(s, tz="UTC")
>>> records = pd.DataFrame({"record_key": [1, 2], "channel": ["web", "phone"],
...     "source_record_id": ["W-1", "P-1"], "observed_at": [ts("2026-01-01"), ts("2026-02-01")],
...     "phone": ["+358401234567", None], "email": [None, "a@example.fi"],
...     "marketing_prohibited": pd.array([True, None], dtype="boolean"),
...     "identity_verified": [False, False]})
>>> golden, provenance = golden_records(records, pd.Series([1, 1], index=[1, 2]))
>>> golden[["phone", "email", "marketing_prohibited"]].to_dict("index")
{1: {'phone': '+358401234567', 'email': 'a@example.fi', 'marketing_prohibited': True}}
>>> provenance.set_index("attribute")["record_key"].to_dict()
{'phone': 1, 'email': 2, 'marketing_prohibited': 1, 'identity_verified': 2}
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from schemas.canonical import CHANNEL_ORDER, CHANNELS

__all__ = ["GOLDEN_ATTRIBUTES", "PROVENANCE_COLUMNS", "SERVICE_COLUMNS", "golden_records", "ranked_record_keys",
           "services"]

GOLDEN_ATTRIBUTES: tuple[str, ...] = (
    "personal_id", "birth_date", "first_names", "last_name",
    "street_address", "postal_code", "city", "phone", "email", "iban", "bic",
    "marketing_prohibited", "identity_verified",
)
PROVENANCE_COLUMNS: tuple[str, ...] = ("cluster", "attribute", "record_key", "channel", "observed_at")
SERVICE_COLUMNS: tuple[str, ...] = ("cluster", "product", "metering_point", "first_seen", "last_seen")

_NAMES = ("first_names", "last_name")
_ADDRESS = ("street_address", "postal_code", "city")
_ACCOUNT = ("iban", "bic")


class _Ranking:
    """Record positions ranked within each cluster; picks each cluster's best record with a property."""

    def __init__(self, records: pd.DataFrame, cluster_of: pd.Series):
        keys = records["record_key"].to_numpy(np.int64)
        cluster = cluster_of.reindex(keys)
        if cluster.isna().any():
            raise ValueError(f"cluster_of: {int(cluster.isna().sum())} records have no cluster")
        self.cluster_codes, self.cluster_keys = pd.factorize(cluster.to_numpy(np.int64), sort=True)
        channel = records["channel"].map(CHANNEL_ORDER)
        if channel.isna().any():
            raise ValueError(f"records.channel: {int(channel.isna().sum())} values not a known channel")
        self.channel_rank = channel.to_numpy(np.int64)
        observed = pd.to_datetime(records["observed_at"], utc=True).to_numpy("datetime64[ns]").view(np.int64)
        # ~observed sorts latest first (NaT, the int64 minimum, last) without overflowing
        record_id = self._record_id_rank(records["source_record_id"], self.cluster_codes, observed, self.channel_rank)
        self.latest_first = np.lexsort((keys, record_id, self.channel_rank, ~observed, self.cluster_codes))
        unverified = ~records["identity_verified"].to_numpy(bool)
        self.verified_first = self.latest_first[
            np.lexsort((unverified[self.latest_first], self.cluster_codes[self.latest_first]))]

    @staticmethod
    def _record_id_rank(record_ids: pd.Series, *tie_keys: np.ndarray) -> np.ndarray:
        """Rank of source_record_id among records tied on all of `tie_keys`, 0 elsewhere.

        Ties are rare; sorting only the tied ids spares a sort of a million strings.
        """
        tied = pd.DataFrame(dict(enumerate(tie_keys))).duplicated(keep=False).to_numpy()
        rank = np.zeros(len(record_ids), dtype=np.int64)
        if tied.any():
            rank[tied] = pd.factorize(record_ids[tied], sort=True)[0]
        return rank

    @property
    def cluster_count(self) -> int:
        return len(self.cluster_keys)

    def best(self, has: np.ndarray, *, order: np.ndarray | None = None,
             otherwise: np.ndarray | None = None) -> np.ndarray:
        """Per cluster: the position of its first record in `order` with `has`, else -1.

        Clusters without such a record take their first with `otherwise`, if given.
        """
        order = self.latest_first if order is None else order
        positions = order[np.asarray(has, dtype=bool)[order]]
        clusters = self.cluster_codes[positions]
        first = np.ones(len(positions), dtype=bool)
        first[1:] = clusters[1:] != clusters[:-1]
        chosen = np.full(self.cluster_count, -1, dtype=np.int64)
        chosen[clusters[first]] = positions[first]
        if otherwise is not None:
            fallback = self.best(otherwise, order=order)
            chosen = np.where(chosen >= 0, chosen, fallback)
        return chosen


def ranked_record_keys(records: pd.DataFrame, *, verified_first: bool = False) -> list[int]:
    """The record_keys of one person's records, best first by this module's ranking.

    `verified_first` ranks as the names are picked (identity-verified records
    first, latest first within each part); otherwise as every other attribute
    (latest first). For a caller that must choose a record itself, as a
    rectification does when no record stands behind the golden value. Columns:
    record_key, channel, source_record_id, observed_at, identity_verified.

    >>> ts = lambda s: pd.Timestamp(s, tz="UTC")
    >>> records = pd.DataFrame({"record_key": [1, 2, 3], "channel": ["phone", "web", "mail"],
    ...     "source_record_id": ["P-1", "W-1", "M-1"],
    ...     "observed_at": [ts("2026-02-01"), ts("2026-02-01"), ts("2026-01-01")],
    ...     "identity_verified": [False, False, True]})
    >>> ranked_record_keys(records), ranked_record_keys(records, verified_first=True)
    ([2, 1, 3], [3, 2, 1])
    """
    keys = records["record_key"].to_numpy(np.int64)
    ranking = _Ranking(records, pd.Series(0, index=keys))  # one cluster: the person
    return keys[ranking.verified_first if verified_first else ranking.latest_first].tolist()


def _present(records: pd.DataFrame, column: str) -> np.ndarray:
    return records[column].notna().to_numpy(bool) if column in records.columns else np.zeros(len(records), bool)


def _all_present(records: pd.DataFrame, columns) -> np.ndarray:
    return np.logical_and.reduce([_present(records, c) for c in columns])


def _any_present(records: pd.DataFrame, columns) -> np.ndarray:
    return np.logical_or.reduce([_present(records, c) for c in columns])


def _take(values: pd.Series, chosen: np.ndarray) -> pd.Series:
    """values[chosen] by position, NA where chosen is -1, keeping the dtype."""
    return pd.Series(values.array.take(chosen, allow_fill=True))


def golden_records(records: pd.DataFrame, cluster_of: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One golden row per cluster (index: cluster key; columns: GOLDEN_ATTRIBUTES) and its provenance.

    `cluster_of` maps every record_key to its cluster key (`Resolution.cluster_of`).
    Both frames are sorted by cluster key (provenance then in GOLDEN_ATTRIBUTES
    order); see the module docstring for the rules.
    """
    ranking = _Ranking(records, cluster_of)

    coded = _present(records, "personal_id")
    source: dict[str, np.ndarray] = {}  # attribute -> chosen record position per cluster
    for column in _NAMES:
        source[column] = ranking.best(_all_present(records, _NAMES), order=ranking.verified_first,
                                      otherwise=_any_present(records, _NAMES))
    source["personal_id"] = ranking.best(coded)
    source["birth_date"] = ranking.best(coded & _present(records, "birth_date"),
                                        otherwise=_present(records, "birth_date"))
    address = ranking.best(_all_present(records, _ADDRESS), otherwise=_any_present(records, _ADDRESS))
    account = ranking.best(_present(records, "iban"))
    for column in _ADDRESS:
        source[column] = address
    for column in _ACCOUNT:
        source[column] = account
    for column in ("phone", "email", "marketing_prohibited"):
        source[column] = ranking.best(_present(records, column))
    source["identity_verified"] = ranking.best(records["identity_verified"].to_numpy(bool),
                                               otherwise=np.ones(len(records), dtype=bool))

    golden: dict[str, pd.Series] = {}
    kept = np.empty((ranking.cluster_count, len(GOLDEN_ATTRIBUTES)), dtype=bool)
    for number, attribute in enumerate(GOLDEN_ATTRIBUTES):
        chosen = source[attribute]
        if attribute == "identity_verified":  # every cluster has a record: chosen is never -1
            value = pd.Series(records["identity_verified"].to_numpy(bool)[chosen])
        elif attribute in records.columns:
            value = _take(records[attribute], chosen)
        else:
            value = pd.Series([pd.NA] * ranking.cluster_count, dtype=object)
        golden[attribute] = value
        kept[:, number] = value.notna().to_numpy() & (chosen >= 0)

    # Provenance built cluster by cluster, attributes in order: already sorted, no sort needed.
    chosen_all = np.column_stack([source[a] for a in GOLDEN_ATTRIBUTES]).ravel()
    kept_all = kept.ravel()
    picked = chosen_all[kept_all]
    provenance_frame = pd.DataFrame({
        "cluster": np.repeat(ranking.cluster_keys.astype(np.int64), len(GOLDEN_ATTRIBUTES))[kept_all],
        "attribute": pd.Categorical.from_codes(
            np.tile(np.arange(len(GOLDEN_ATTRIBUTES), dtype=np.int8), ranking.cluster_count)[kept_all],
            categories=list(GOLDEN_ATTRIBUTES)),
        "record_key": records["record_key"].to_numpy(np.int64)[picked],
        "channel": pd.Categorical.from_codes(ranking.channel_rank[picked], categories=list(CHANNELS)),
        "observed_at": pd.to_datetime(records["observed_at"], utc=True).array.take(picked),
    })
    index = pd.Index(ranking.cluster_keys.astype(np.int64), name="cluster")
    golden_frame = pd.DataFrame({attribute: value.set_axis(index) for attribute, value in golden.items()}, index=index)
    return golden_frame, provenance_frame


def services(records: pd.DataFrame, cluster_of: pd.Series) -> pd.DataFrame:
    """Products per cluster: (cluster, product, metering_point, first_seen, last_seen).

    One row per cluster, product and metering point (NA is a value of its own)
    over the records that name a product; sorted by those three.
    """
    with_product = records["product"].notna().to_numpy(bool)
    cluster = cluster_of.reindex(records["record_key"].to_numpy(np.int64)[with_product])
    if cluster.isna().any():
        raise ValueError(f"cluster_of: {int(cluster.isna().sum())} records have no cluster")
    if not with_product.any():
        return pd.DataFrame({"cluster": pd.Series(dtype="int64"), "product": pd.Series(dtype=object),
                             "metering_point": pd.Series(dtype=object),
                             "first_seen": pd.Series(dtype="datetime64[ns, UTC]"),
                             "last_seen": pd.Series(dtype="datetime64[ns, UTC]")})
    # Group on integer codes (sorted factorisation, NA as -1 sorts first): no string sort.
    cluster_codes, cluster_keys = pd.factorize(cluster.to_numpy(np.int64), sort=True)
    product_codes, products = pd.factorize(records["product"][with_product], sort=True)
    point_codes, points = pd.factorize(records["metering_point"][with_product], sort=True, use_na_sentinel=True)
    observed = pd.to_datetime(records["observed_at"][with_product], utc=True).to_numpy("datetime64[ns]").view(np.int64)
    order = np.lexsort((point_codes, product_codes, cluster_codes))
    group = np.column_stack([cluster_codes, product_codes, point_codes])[order]
    starts = np.flatnonzero(np.r_[True, (group[1:] != group[:-1]).any(axis=1)])
    observed = observed[order]
    first = group[starts]
    point_values = np.append(np.asarray(points, dtype=object), None)  # code -1 picks the None
    return pd.DataFrame({
        "cluster": np.asarray(cluster_keys, dtype=np.int64)[first[:, 0]],
        "product": np.asarray(products, dtype=object)[first[:, 1]],
        "metering_point": point_values[first[:, 2]],
        "first_seen": pd.to_datetime(np.minimum.reduceat(observed, starts), utc=True),
        "last_seen": pd.to_datetime(np.maximum.reduceat(observed, starts), utc=True),
    })
