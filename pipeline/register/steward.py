"""A data steward's work: the review queue and the quarantine.

Values are masked unless the steward asks for them (`unmask=True`), and every
decision is recorded with who made it and when. Accepting a review links the
two records (a must-link the matcher honours at every later load); rejecting it
keeps them apart for good and the pair is never proposed again.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import sqlalchemy as sa

from pipeline.matching.settings import MatchSettings
from pipeline.privacy import mask, mask_email
from pipeline.register.locks import register_transaction
from pipeline.register.resolve import ResolveSummary, resolve_identities
from schemas.register import intake_file, quarantine, review_queue, source_record

SHOWN_FIELDS = ("channel", "source_record_id", "observed_at", "first_names", "last_name", "personal_id",
                "birth_date", "street_address", "postal_code", "city", "phone", "email", "iban")


class StewardError(Exception):
    """A steward's request that cannot be carried out (message holds no personal value)."""


def masked_value(field: str, value: object) -> object:
    """A value as the steward sees it by default: masked (`pipeline.privacy`), dates to the year."""
    if value is None or field in ("channel", "source_record_id", "observed_at"):
        return value if not isinstance(value, (dt.date, dt.datetime)) else value.isoformat()
    text = value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else str(value)
    if field == "email":
        return mask_email(text)
    if field == "birth_date":
        return text[:4] + "-**-**"
    if field == "postal_code":
        return text
    return mask(text)


def _record(connection: sa.Connection, pk: int | None, unmask: bool) -> dict | None:
    if pk is None:
        return None
    row = connection.execute(sa.select(*[source_record.c[f] for f in SHOWN_FIELDS], source_record.c.customer_id)
                             .where(source_record.c.source_record_pk == pk)).mappings().first()
    if row is None:
        return None
    shown = {f: (row[f].isoformat() if isinstance(row[f], (dt.date, dt.datetime)) else row[f]) if unmask
             else masked_value(f, row[f]) for f in SHOWN_FIELDS}
    shown["customer_id"] = row["customer_id"]
    return shown


def _reviews(status: str):
    return review_queue.c.status == status


def count_reviews(connection: sa.Connection, status: str = "open") -> int:
    """How many reviews have this status (what `list_reviews` pages through)."""
    return int(connection.execute(sa.select(sa.func.count()).select_from(review_queue)
                                  .where(_reviews(status))).scalar_one())


def list_reviews(connection: sa.Connection, status: str = "open", limit: int = 50, offset: int = 0) -> list[dict]:
    """Reviews with this status, most likely matches first: `limit` of them from `offset` on
    (`count_reviews` says how many there are in all)."""
    rows = connection.execute(
        sa.select(review_queue.c.review_id, review_queue.c.probability, review_queue.c.evidence,
                  review_queue.c.left_customer_id, review_queue.c.right_customer_id, review_queue.c.status,
                  review_queue.c.created_at)
        .where(_reviews(status)).order_by(review_queue.c.probability.desc(), review_queue.c.review_id)
        .limit(limit).offset(offset)).mappings().all()
    # Which open reviews keep someone off the marketing list: worth deciding first.
    from pipeline.finland import today_in_finland
    from pipeline.register.marketing import doubt

    holding: dict[int, set[str]] = {}
    if status == "open" and rows:
        for _, _, review_id, reason in doubt(connection, today_in_finland(), reviews_only=True).ties:
            holding.setdefault(review_id, set()).add(reason)
    return [{"review_id": r["review_id"], "probability": round(float(r["probability"]), 4),
             "reason": (r["evidence"] or {}).get("reason"), "left_customer_id": r["left_customer_id"],
             "right_customer_id": r["right_customer_id"], "created_at": r["created_at"].isoformat(),
             "holds_back_from_marketing": sorted(holding.get(r["review_id"], ()))}
            for r in rows]


def show_review(connection: sa.Connection, review_id: int, *, unmask: bool = False) -> dict:
    row = connection.execute(sa.select(review_queue).where(review_queue.c.review_id == review_id)).mappings().first()
    if row is None:
        raise StewardError(f"no review {review_id}")
    return {
        "review_id": row["review_id"], "status": row["status"], "probability": float(row["probability"]),
        "evidence": row["evidence"], "decided_by": row["decided_by"],
        "decided_at": row["decided_at"].isoformat() if row["decided_at"] else None,
        "left": _record(connection, row["left_source_record_pk"], unmask),
        "right": _record(connection, row["right_source_record_pk"], unmask),
    }


@dataclass
class Decision:
    review_id: int
    status: str
    resolution: ResolveSummary


def decide_review(engine: sa.Engine, review_id: int, *, accept: bool, by: str,
                  now: dt.datetime | None = None, settings: MatchSettings = MatchSettings()) -> Decision:
    """Accept (the two records are one person) or reject (never the same person) a review."""
    if not by:
        raise StewardError("a decision needs the steward's name (--by)")
    now = now or dt.datetime.now(dt.timezone.utc)
    # The register lock before the review row: an erasure holding the lock deletes
    # review rows, so locking the row first could deadlock with it (locks.py).
    with register_transaction(engine) as connection:
        return _decide(connection, review_id, accept=accept, by=by, now=now, settings=settings)


def _decide(connection: sa.Connection, review_id: int, *, accept: bool, by: str, now: dt.datetime,
            settings: MatchSettings) -> Decision:
    row = connection.execute(sa.select(review_queue).where(review_queue.c.review_id == review_id)
                             .with_for_update()).mappings().first()
    if row is None:
        raise StewardError(f"no review {review_id}")
    if row["status"] != "open":
        raise StewardError(f"review {review_id} was already decided ({row['status']})")
    left, right = row["left_source_record_pk"], row["right_source_record_pk"]
    if left is None or right is None:
        raise StewardError(f"review {review_id} names no pair of records")
    if accept:
        # The codes held by both records' whole customers, not just by the two records.
        owners = sa.select(source_record.c.customer_id).where(
            source_record.c.source_record_pk.in_([left, right]))
        codes = connection.execute(sa.select(source_record.c.personal_id).where(
            source_record.c.source_record_pk.in_([left, right])
            | source_record.c.customer_id.in_(owners))).scalars().all()
        if len({c for c in codes if c}) > 1:
            raise StewardError("the two records' customers hold different valid identity codes: "
                               "never one person")
    status = "accepted" if accept else "rejected"
    connection.execute(review_queue.update().where(review_queue.c.review_id == review_id)
                       .values(status=status, decided_by=by, decided_at=now))
    summary = resolve_identities(connection, now=now, run_id=None, settings=settings,
                                 seeds=[left, right], decided_by=by)
    return Decision(review_id, status, summary)


def _quarantine_filter(reason: str | None, include_resolved: bool) -> list:
    conditions = []
    if reason:
        conditions.append(quarantine.c.reasons.contains(reason, autoescape=True))
    if not include_resolved:
        conditions.append(quarantine.c.resolved_at.is_(None))
    return conditions


def count_quarantine(connection: sa.Connection, reason: str | None = None, *, include_resolved: bool = False) -> int:
    """How many entries `list_quarantine` pages through with these filters."""
    return int(connection.execute(sa.select(sa.func.count()).select_from(quarantine)
                                  .where(*_quarantine_filter(reason, include_resolved))).scalar_one())


def list_quarantine(connection: sa.Connection, reason: str | None = None, limit: int = 50, *, offset: int = 0,
                    include_resolved: bool = False) -> list[dict]:
    """Quarantine entries, oldest first, with the file each came in (`file_name`): `limit`
    of them from `offset` on (`count_quarantine` says how many in all). Open ones only
    unless `include_resolved`: an entry is resolved when a record with its channel and id
    was accepted later (the complete copy of a file first read while still being
    written), and needs no steward."""
    query = (sa.select(quarantine.c.quarantine_id, quarantine.c.channel, quarantine.c.source_record_id,
                       quarantine.c.record_number, quarantine.c.reasons, quarantine.c.detail,
                       quarantine.c.quarantined_at, quarantine.c.resolved_at,
                       quarantine.c.resolved_intake_file_id, quarantine.c.intake_file_id, intake_file.c.file_name)
             .join(intake_file, intake_file.c.intake_file_id == quarantine.c.intake_file_id)
             .where(*_quarantine_filter(reason, include_resolved))
             .order_by(quarantine.c.quarantine_id).limit(limit).offset(offset))
    return [{k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in r.items()}
            for r in connection.execute(query).mappings().all()]


def _file_name(connection: sa.Connection, intake_file_id: int | None) -> str | None:
    if intake_file_id is None:
        return None
    return connection.execute(sa.select(intake_file.c.file_name)
                              .where(intake_file.c.intake_file_id == intake_file_id)).scalar()


def show_quarantine(connection: sa.Connection, quarantine_id: int, *, unmask: bool = False) -> dict:
    row = connection.execute(sa.select(quarantine).where(quarantine.c.quarantine_id == quarantine_id)) \
        .mappings().first()
    if row is None:
        raise StewardError(f"no quarantine entry {quarantine_id}")
    raw = json.loads(row["raw_values"]) if row["raw_values"] else None
    if raw is not None and not unmask:
        raw = {k: (v if k in ("observed_at", "name_order", "product", "identity_verified",
                              "marketing_prohibited", "record_number") else mask(str(v)))
               for k, v in raw.items()}
    return {"quarantine_id": row["quarantine_id"], "channel": row["channel"],
            "source_record_id": row["source_record_id"], "record_number": row["record_number"],
            "intake_file_id": row["intake_file_id"], "file_name": _file_name(connection, row["intake_file_id"]),
            "reasons": row["reasons"].split(), "detail": row["detail"], "raw_values": raw,
            "raw_purged": row["raw_purged_at"] is not None,
            "quarantined_at": row["quarantined_at"].isoformat(),
            "resolved_at": row["resolved_at"].isoformat() if row["resolved_at"] else None,
            "resolved_intake_file_id": row["resolved_intake_file_id"],
            "resolved_file_name": _file_name(connection, row["resolved_intake_file_id"])}
