"""Why each record sits in its customer: `register explain --customer ID | --record CHANNEL:ID`.

For every source record of a customer, one of:

- *the same valid identity code* as the customer's other records (docs/register_rules.md rule 4);
- *a steward's decision*: the accepted review that joined it, with who and when;
- *the match weights*, field by field and in words ("last name: exact match, +8.3";
  "phone: different, -3.7"), recomputed with the frozen model (`pipeline.matching.score`)
  against each of the customer's other records; the strongest pair is shown, with the
  prior and the total. The stored probability is what the resolver saw at the time;
  a record that came with a code is explained by the code, not by weights;
- *the first record*: nothing else matched it; the customer started with it.

A merged customer's old id resolves to its survivor (the chain of merges is part of
the answer), and the open reviews touching the customer are listed, with whether
they hold it back from direct marketing (`marketing.doubt`). Values are masked as
the steward's review screen masks them (`steward.masked_value`) unless `unmask` is
asked for. Pure domain code: the CLI only formats the result.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field

import pandas as pd
import sqlalchemy as sa

from pipeline.matching.model import MatchModel
from pipeline.matching.rescore import score_every_pair
from pipeline.finland import today_in_finland
from pipeline.register.marketing import doubt
from pipeline.register.resolve import read_records_by_key
from pipeline.register.steward import SHOWN_FIELDS, StewardError, masked_value
from schemas.register import customer, customer_merge, review_queue, source_record

FIELD_WORDS: dict[str, str] = {
    "first_name": "first name", "last_name": "last name", "birth_date": "birth date", "address": "address",
    "phone": "phone", "email": "e-mail", "iban": "bank account",
}
METHOD_WORDS: dict[str, str] = {
    "personal_id": "the same valid identity code",
    "steward": "a steward's decision",
    "probabilistic": "the match weights",
    "new": "the first record: nothing else matched it",
}


class ExplainError(StewardError):
    """Nothing to explain (no such customer or record); the message holds ids only."""


def level_in_words(label: str) -> str:
    """A Splink level label as a steward would say it.

    >>> level_in_words("Exact match on last_name"), level_in_words("All other comparisons")
    ('exact match', 'different')
    >>> level_in_words("phone is NULL"), level_in_words("Jaro-Winkler distance of first_name >= 0.92")
    ('unknown on one side', 'similar (Jaro-Winkler >= 0.92)')
    >>> level_in_words("same building, another apartment")
    'same building, another apartment'
    """
    if label.startswith("Exact match"):
        return "exact match"
    if label == "All other comparisons":
        return "different"
    if label.endswith(" is NULL") or label == "address unknown":
        return "unknown on one side"
    if label.startswith("Jaro-Winkler"):
        return "similar (Jaro-Winkler " + label.rsplit(" ", 2)[-2] + " " + label.rsplit(" ", 1)[-1] + ")"
    return label


@dataclass(frozen=True)
class FieldWeight:
    """One comparison of a pair: the field, its level in words, and its weight in bits."""

    field: str
    level: str
    weight: float

    def words(self) -> str:
        return f"{self.field}: {self.level}, {self.weight:+.1f}"


@dataclass(frozen=True)
class PairWeights:
    """The model's reading of a record against one other record of the customer."""

    other: str  # CHANNEL:ID of the other record
    prior: float
    fields: tuple[FieldWeight, ...]
    match_weight: float
    probability: float


@dataclass(frozen=True)
class StewardDecision:
    review_id: int
    status: str
    decided_by: str | None
    decided_at: str | None
    other: str | None  # the other record of the pair, CHANNEL:ID


@dataclass
class RecordExplanation:
    record: str  # CHANNEL:ID
    observed_at: str
    method: str | None
    because: str  # the kind of reason in words (METHOD_WORDS)
    stored_probability: float | None
    values: dict[str, object]
    same_code_records: int = 0
    decisions: list[StewardDecision] = field(default_factory=list)
    strongest: PairWeights | None = None


@dataclass
class CustomerExplanation:
    asked: str
    customer_id: int
    merges: list[dict[str, object]]
    records: list[RecordExplanation]
    open_reviews: list[dict[str, object]]
    held_from_marketing: list[str]
    model_version: str

    def as_dict(self) -> dict:
        return asdict(self)


# --- finding the customer -------------------------------------------------------------------------

def survivor_of(connection: sa.Connection, customer_id: int) -> tuple[int, list[dict[str, object]]]:
    """The live customer an id resolves to, and the merges followed to get there (oldest first)."""
    chain: list[dict[str, object]] = []
    current = int(customer_id)
    for _ in range(1000):  # a chain of merges is short; a cycle would be a broken register
        row = connection.execute(sa.select(customer.c.merged_into).where(customer.c.customer_id == current)).first()
        if row is None:
            raise ExplainError(f"no customer {customer_id}")
        if row[0] is None:
            return current, chain
        merge = connection.execute(sa.select(customer_merge).where(
            customer_merge.c.merged_customer_id == current)).mappings().first()
        chain.append({"merged_customer_id": current, "surviving_customer_id": int(row[0]),
                      "merged_at": merge["merged_at"].isoformat() if merge else None,
                      "reason": merge["reason"] if merge else None,
                      "decided_by": merge["decided_by"] if merge else None})
        current = int(row[0])
    raise ExplainError(f"customer {customer_id}: the chain of merges does not end")


def record_key(connection: sa.Connection, reference: str) -> int:
    """The source_record_pk of "CHANNEL:ID"."""
    channel, sep, source_id = reference.partition(":")
    if not sep or not channel or not source_id:
        raise ExplainError("a record is given as CHANNEL:ID, e.g. web:W-20261124-000001")
    row = connection.execute(sa.select(source_record.c.source_record_pk).where(
        source_record.c.channel == channel, source_record.c.source_record_id == source_id)).first()
    if row is None:
        raise ExplainError(f"no {channel} record with that id is held")
    return int(row[0])


# --- the explanation ------------------------------------------------------------------------------

def _label(row) -> str:
    return f"{row.channel}:{row.source_record_id}"


def _values(row, unmask: bool) -> dict[str, object]:
    out = {}
    for name in SHOWN_FIELDS:
        value = getattr(row, name)
        if value is pd.NaT or (not isinstance(value, str) and pd.isna(value)):
            value = None
        if isinstance(value, pd.Timestamp):
            value = value.date() if name == "birth_date" else value.to_pydatetime()
        if unmask:
            out[name] = value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value
        else:
            out[name] = masked_value(name, value)
    return out


def _strongest(key: int, pairs: pd.DataFrame, labels: dict[int, str], model: MatchModel) -> PairWeights | None:
    mine = pairs[(pairs["key_l"] == key) | (pairs["key_r"] == key)]
    if mine.empty:
        return None
    best = mine.sort_values(["match_weight", "key_l", "key_r"], ascending=[False, True, True]).iloc[0]
    other = int(best["key_r"] if int(best["key_l"]) == key else best["key_l"])
    evidence = json.loads(best["evidence"])
    fields = tuple(FieldWeight(FIELD_WORDS.get(name, name), level_in_words(label), float(weight))
                   for name, (label, weight) in evidence.items())
    # The evidence's weights add to the match weight from the general prior (at the same
    # home, or sharing a landline, an e-mail address or an account, the address weight carries
    # the household prior's difference: score.py).
    return PairWeights(other=labels[other], prior=model.prior_weight, fields=fields,
                       match_weight=float(best["match_weight"]), probability=float(best["match_probability"]))


def _decisions(connection: sa.Connection, keys: list[int], labels: dict[int, str]) -> dict[int, list[StewardDecision]]:
    rows = connection.execute(sa.select(review_queue).where(
        review_queue.c.status.in_(["accepted", "rejected"]),
        sa.or_(review_queue.c.left_source_record_pk.in_(keys), review_queue.c.right_source_record_pk.in_(keys)))
        .order_by(review_queue.c.review_id)).mappings().all()
    out: dict[int, list[StewardDecision]] = {}
    for row in rows:
        left, right = row["left_source_record_pk"], row["right_source_record_pk"]
        for mine, other in ((left, right), (right, left)):
            if mine in labels:
                out.setdefault(int(mine), []).append(StewardDecision(
                    review_id=int(row["review_id"]), status=row["status"], decided_by=row["decided_by"],
                    decided_at=row["decided_at"].isoformat() if row["decided_at"] else None,
                    other=labels.get(other) or (_other_label(connection, other) if other is not None else None)))
    return out


def _other_label(connection: sa.Connection, pk: int) -> str | None:
    row = connection.execute(sa.select(source_record.c.channel, source_record.c.source_record_id)
                             .where(source_record.c.source_record_pk == pk)).first()
    return f"{row[0]}:{row[1]}" if row else None


def explain_records(connection: sa.Connection, survivor: int, *, unmask: bool = False,
                    only_record: int | None = None, model: MatchModel | None = None,
                    scorer=None) -> list[RecordExplanation]:
    """Why each record (or only `only_record`) of the live customer `survivor` is in it: the
    record-by-record part of `explain_customer`, without the marketing doubt (the customer page
    shows it for every record; `explain_customer` adds the merges, reviews and doubt). `scorer`:
    a `score.Scorer` of `model` to reuse (`rescore.score_every_pair`)."""
    model = scorer.model if scorer is not None else model or MatchModel.load()
    keys = [int(k) for k in connection.execute(sa.select(source_record.c.source_record_pk).where(
        source_record.c.customer_id == survivor)).scalars()]
    if not keys:
        return []
    records = read_records_by_key(connection, keys).sort_values(["observed_at", "record_key"], kind="stable")
    labels = {int(r.record_key): _label(r) for r in records.itertuples(index=False)}
    pairs = score_every_pair(records, model, scorer=scorer)
    decisions = _decisions(connection, keys, labels)
    codes = records["personal_id"].dropna()
    explained: list[RecordExplanation] = []
    for row in records.itertuples(index=False):
        key = int(row.record_key)
        if only_record is not None and key != only_record:
            continue
        method = None if pd.isna(row.match_method) else str(row.match_method)
        probability = None if pd.isna(row.match_probability) else float(row.match_probability)
        item = RecordExplanation(record=labels[key], observed_at=row.observed_at.isoformat(), method=method,
                                 because=METHOD_WORDS.get(method or "", "not resolved yet"),
                                 stored_probability=probability, values=_values(row, unmask),
                                 decisions=decisions.get(key, []))
        if method == "personal_id" and not pd.isna(row.personal_id):
            item.same_code_records = int((codes == row.personal_id).sum()) - 1
        if method in ("probabilistic", "steward") or (method == "new" and len(records) > 1):
            item.strongest = _strongest(key, pairs, labels, model)
        explained.append(item)
    return explained


def explain_customer(connection: sa.Connection, customer_id: int, *, unmask: bool = False,
                     only_record: int | None = None, model: MatchModel | None = None,
                     asked: str | None = None, today: dt.date | None = None) -> CustomerExplanation:
    """Why each record (or only `only_record`) of the customer `customer_id` resolves to is in it."""
    model = model or MatchModel.load()
    survivor, chain = survivor_of(connection, customer_id)
    explained = explain_records(connection, survivor, unmask=unmask, only_record=only_record, model=model)
    held = doubt(connection, today or today_in_finland(), among=[survivor]).held.get(survivor, frozenset())
    return CustomerExplanation(asked=asked or f"customer {customer_id}", customer_id=survivor, merges=chain,
                               records=explained, open_reviews=_open_reviews(connection, survivor),
                               held_from_marketing=sorted(held), model_version=model.version)


def _open_reviews(connection: sa.Connection, customer_id: int) -> list[dict[str, object]]:
    left, right = source_record.alias("left_record"), source_record.alias("right_record")
    left_id = sa.func.coalesce(left.c.customer_id, review_queue.c.left_customer_id)
    right_id = sa.func.coalesce(right.c.customer_id, review_queue.c.right_customer_id)
    rows = connection.execute(
        sa.select(review_queue.c.review_id, review_queue.c.probability, review_queue.c.evidence,
                  left_id.label("left_id"), right_id.label("right_id"))
        .select_from(review_queue
                     .outerjoin(left, left.c.source_record_pk == review_queue.c.left_source_record_pk)
                     .outerjoin(right, right.c.source_record_pk == review_queue.c.right_source_record_pk))
        .where(review_queue.c.status == "open", sa.or_(left_id == customer_id, right_id == customer_id))
        .order_by(review_queue.c.review_id)).mappings().all()
    return [{"review_id": int(r["review_id"]), "probability": round(float(r["probability"]), 4),
             "reason": (r["evidence"] or {}).get("reason"),
             "other_customer_id": int(r["right_id"] if r["left_id"] == customer_id else r["left_id"]),
             "fields": _stored_fields(r["evidence"])}
            for r in rows]


def _stored_fields(evidence: object) -> list[str]:
    """The review's stored evidence (levels and weights when it was raised) in words."""
    comparisons = (evidence or {}).get("comparisons") if isinstance(evidence, dict) else None
    if not isinstance(comparisons, dict):
        return []
    out = []
    for name, value in comparisons.items():
        if isinstance(value, list) and len(value) == 2:
            out.append(FieldWeight(FIELD_WORDS.get(name, name), level_in_words(str(value[0])), float(value[1])).words())
        else:  # a same-code review names the fields, no weights
            out.append(f"{FIELD_WORDS.get(name, name.replace('_', ' '))}: {value}")
    return out


def explain_record(connection: sa.Connection, reference: str, *, unmask: bool = False,
                   model: MatchModel | None = None, today: dt.date | None = None) -> CustomerExplanation:
    """Why the record "CHANNEL:ID" sits in its customer."""
    key = record_key(connection, reference)
    owner = connection.execute(sa.select(source_record.c.customer_id).where(
        source_record.c.source_record_pk == key)).scalar()
    if owner is None:
        raise ExplainError("the record is not resolved to a customer yet")
    return explain_customer(connection, int(owner), unmask=unmask, only_record=key, model=model,
                            asked=f"record {reference}", today=today)
