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
from schemas.register import (customer, customer_merge, intake_file, merge_record, quarantine, quarantine_decision,
                              review_deferral, review_queue, source_record, unmerge as unmerge_table)

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


REVIEW_LIST_STATUSES = ("open", "deferred", "accepted", "rejected", "withdrawn")


def last_deferral():
    """A subquery: each review's latest deferral (`review_id`, `deferred_by`, `deferred_at`, `defer_reason`)."""
    latest = (sa.select(sa.func.max(review_deferral.c.deferral_id).label("deferral_id"))
              .group_by(review_deferral.c.review_id).subquery("latest_deferral"))
    return (sa.select(review_deferral.c.review_id, review_deferral.c.deferred_by, review_deferral.c.deferred_at,
                      review_deferral.c.reason.label("defer_reason"))
            .join(latest, latest.c.deferral_id == review_deferral.c.deferral_id).subquery("last_deferral"))


def review_status_filter(status: str, deferred) -> list:
    """Conditions on `review_queue` (outer-joined to `deferred`, a `last_deferral()`) for a listed status:
    `open` every undecided review (deferred ones too), `deferred` the undecided ones a steward deferred,
    `accepted` and `rejected` the decided ones (a deferral before the decision is only history),
    `withdrawn` those the matcher stopped proposing (a later load resolved the pair)."""
    if status not in REVIEW_LIST_STATUSES:
        raise StewardError(f"no review status {status!r}")
    if status == "deferred":
        return [review_queue.c.status == "open", deferred.c.review_id.is_not(None)]
    return [review_queue.c.status == status]


def _reviews_with_deferral(*columns, deferred):
    return sa.select(*columns).select_from(
        review_queue.outerjoin(deferred, deferred.c.review_id == review_queue.c.review_id))


def count_reviews(connection: sa.Connection, status: str = "open") -> int:
    """How many reviews have this status (what `list_reviews` pages through)."""
    deferred = last_deferral()
    return int(connection.execute(_reviews_with_deferral(sa.func.count(), deferred=deferred)
                                  .where(*review_status_filter(status, deferred))).scalar_one())


def list_reviews(connection: sa.Connection, status: str = "open", limit: int = 50, offset: int = 0) -> list[dict]:
    """Reviews with this status (`REVIEW_LIST_STATUSES`), most likely matches first: `limit` of them
    from `offset` on (`count_reviews` says how many there are in all). An open review a steward
    deferred says so (`deferred`: who, when, why)."""
    deferred = last_deferral()
    rows = connection.execute(
        _reviews_with_deferral(review_queue.c.review_id, review_queue.c.probability, review_queue.c.evidence,
                               review_queue.c.left_customer_id, review_queue.c.right_customer_id,
                               review_queue.c.status, review_queue.c.created_at, deferred.c.deferred_by,
                               deferred.c.deferred_at, deferred.c.defer_reason, deferred=deferred)
        .where(*review_status_filter(status, deferred))
        .order_by(review_queue.c.probability.desc(), review_queue.c.review_id)
        .limit(limit).offset(offset)).mappings().all()
    # Which open reviews keep someone off the marketing list: worth deciding first.
    from pipeline.finland import today_in_finland
    from pipeline.register.marketing import doubt, open_review_ties

    holding: dict[int, set[str]] = {}
    if status in ("open", "deferred") and rows:
        listed = {r["review_id"] for r in rows}
        # Only the listed reviews' customers (as they are now): not the whole register's doubt.
        concerned = {c for review_id, a, b in open_review_ties(connection) if review_id in listed for c in (a, b)}
        for _, _, review_id, reason in doubt(connection, today_in_finland(), reviews_only=True,
                                             among=concerned).ties:
            if review_id in listed:
                holding.setdefault(review_id, set()).add(reason)
    return [{"review_id": r["review_id"], "probability": round(float(r["probability"]), 4),
             "reason": (r["evidence"] or {}).get("reason"), "left_customer_id": r["left_customer_id"],
             "right_customer_id": r["right_customer_id"], "created_at": r["created_at"].isoformat(),
             "status": r["status"],
             "deferred": _deferral_view(r) if r["status"] == "open" else None,
             "holds_back_from_marketing": sorted(holding.get(r["review_id"], ()))}
            for r in rows]


def _deferral_view(row) -> dict | None:
    if row["deferred_at"] is None:
        return None
    return {"by": row["deferred_by"], "at": row["deferred_at"].isoformat(), "reason": row["defer_reason"]}


def deferrals(connection: sa.Connection, review_id: int) -> list[dict]:
    """Every deferral of a review, oldest first: who, when, why."""
    return [{"by": r.deferred_by, "at": r.deferred_at.isoformat(), "reason": r.reason}
            for r in connection.execute(sa.select(review_deferral.c.deferred_by, review_deferral.c.deferred_at,
                                                  review_deferral.c.reason)
                                        .where(review_deferral.c.review_id == review_id)
                                        .order_by(review_deferral.c.deferral_id))]


def show_review(connection: sa.Connection, review_id: int, *, unmask: bool = False) -> dict:
    row = connection.execute(sa.select(review_queue).where(review_queue.c.review_id == review_id)).mappings().first()
    if row is None:
        raise StewardError(f"no review {review_id}")
    return {
        "review_id": row["review_id"], "status": row["status"], "probability": float(row["probability"]),
        "evidence": row["evidence"], "decided_by": row["decided_by"],
        "decided_at": row["decided_at"].isoformat() if row["decided_at"] else None,
        "deferrals": deferrals(connection, review_id),
        "left": _record(connection, row["left_source_record_pk"], unmask),
        "right": _record(connection, row["right_source_record_pk"], unmask),
    }


@dataclass
class Decision:
    review_id: int
    status: str
    resolution: ResolveSummary


def decide_review(engine: sa.Engine, review_id: int, *, accept: bool, by: str,
                  now: dt.datetime | None = None, settings: MatchSettings = MatchSettings(),
                  reason: str | None = None, via: str = "cli") -> Decision:
    """Accept (the two records are one person) or reject (never the same person) a review.
    The decision is written to the access log with its reason (`via`: web or cli)."""
    if not by:
        raise StewardError("a decision needs the steward's name (--by)")
    now = now or dt.datetime.now(dt.timezone.utc)
    # The register lock before the review row: an erasure holding the lock deletes
    # review rows, so locking the row first could deadlock with it (locks.py).
    with register_transaction(engine) as connection:
        owners = review_customers(connection, review_id)  # both sides, as they were before the decision
        decision = _decide(connection, review_id, accept=accept, by=by, now=now, settings=settings)
        _log_review(connection, review_id, by=by, via=via, action="decide_review", now=now,
                    reason=f"{decision.status}: {reason}" if reason else decision.status, owners=owners)
        return decision


def review_customers(connection: sa.Connection, review_id: int) -> list[int]:
    """The customers holding the review's two records now."""
    row = connection.execute(sa.select(review_queue.c.left_source_record_pk, review_queue.c.right_source_record_pk)
                             .where(review_queue.c.review_id == review_id)).first()
    if row is None:
        return []
    return sorted({int(c) for c in connection.execute(sa.select(source_record.c.customer_id).where(
        source_record.c.source_record_pk.in_([pk for pk in row if pk is not None]))).scalars() if c is not None})


def _log_review(connection: sa.Connection, review_id: int, *, by: str, via: str, action: str, now: dt.datetime,
                reason: str | None, owners: list[int] | None = None) -> None:
    from pipeline.register.access_log import log_access

    owners = review_customers(connection, review_id) if owners is None else owners
    for customer_id in owners or [None]:
        log_access(connection, user=by, via=via, action=action, customer_id=customer_id, review_id=review_id,
                   reason=reason, now=now)


def defer_review(engine: sa.Engine, review_id: int, *, by: str, reason: str, via: str = "web",
                 now: dt.datetime | None = None) -> None:
    """Leave a review open for later, saying why: a `review_deferral` row (who, when, why) shows it
    as deferred in the queue, and the access log keeps it. The review stays `open`: undecided, it
    still holds its customers off the marketing list, and a steward can accept or reject it later."""
    if not by:
        raise StewardError("deferring a review needs the steward's name")
    if not reason or not reason.strip():
        raise StewardError("deferring a review needs a reason")
    from pipeline.register.rights.reasons import check_reason

    check_reason(reason)
    now = now or dt.datetime.now(dt.timezone.utc)
    with engine.begin() as connection:
        status = connection.execute(sa.select(review_queue.c.status)
                                    .where(review_queue.c.review_id == review_id)).scalar()
        if status is None:
            raise StewardError(f"no review {review_id}")
        if status == "withdrawn":
            raise StewardError(f"review {review_id} was withdrawn: a later load no longer proposes this pair")
        if status != "open":
            raise StewardError(f"review {review_id} was already decided ({status})")
        connection.execute(review_deferral.insert().values(review_id=review_id, deferred_by=by, deferred_at=now,
                                                           reason=reason.strip()))
        _log_review(connection, review_id, by=by, via=via, action="defer_review", now=now, reason=reason)


def _decide(connection: sa.Connection, review_id: int, *, accept: bool, by: str, now: dt.datetime,
            settings: MatchSettings) -> Decision:
    row = connection.execute(sa.select(review_queue).where(review_queue.c.review_id == review_id)
                             .with_for_update()).mappings().first()
    if row is None:
        raise StewardError(f"no review {review_id}")
    if row["status"] == "withdrawn":
        raise StewardError(f"review {review_id} was withdrawn: a later load no longer proposes this pair")
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


def _quarantine_filter(reason: str | None, include_resolved: bool, channel: str | None = None,
                       intake_file_id: int | None = None) -> list:
    conditions = []
    if reason:
        conditions.append(quarantine.c.reasons.contains(reason, autoescape=True))
    if channel:
        conditions.append(quarantine.c.channel == channel)
    if intake_file_id is not None:
        conditions.append(quarantine.c.intake_file_id == intake_file_id)
    if not include_resolved:
        # Open: not accepted later, and no steward released or dismissed it.
        conditions.append(quarantine.c.resolved_at.is_(None))
        conditions.append(~sa.exists().where(quarantine_decision.c.quarantine_id == quarantine.c.quarantine_id))
    return conditions


def count_quarantine(connection: sa.Connection, reason: str | None = None, *, include_resolved: bool = False,
                     channel: str | None = None, intake_file_id: int | None = None) -> int:
    """How many entries `list_quarantine` pages through with these filters."""
    return int(connection.execute(sa.select(sa.func.count()).select_from(quarantine).where(
        *_quarantine_filter(reason, include_resolved, channel, intake_file_id))).scalar_one())


def list_quarantine(connection: sa.Connection, reason: str | None = None, limit: int = 50, *, offset: int = 0,
                    include_resolved: bool = False, channel: str | None = None,
                    intake_file_id: int | None = None) -> list[dict]:
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
             .where(*_quarantine_filter(reason, include_resolved, channel, intake_file_id))
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
            "resolved_file_name": _file_name(connection, row["resolved_intake_file_id"]),
            "decision": _quarantine_decision(connection, quarantine_id)}


def _quarantine_decision(connection: sa.Connection, quarantine_id: int) -> dict | None:
    row = connection.execute(sa.select(quarantine_decision).where(
        quarantine_decision.c.quarantine_id == quarantine_id)).mappings().first()
    if row is None:
        return None
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()}


# --- unmerge --------------------------------------------------------------------------------------

@dataclass
class Unmerge:
    customer_id: int          # the customer the records were split from (keeps its id)
    split_customer_id: int    # the customer they went to: the merged customer's old id, or a new one
    restored: bool
    records: int
    resolution: ResolveSummary


def unmerge(engine: sa.Engine, customer_id: int, *, by: str, reason: str, record_pks: list[int] | None = None,
            merged_customer_id: int | None = None, via: str = "cli", now: dt.datetime | None = None,
            settings: MatchSettings = MatchSettings()) -> Unmerge:
    """Split records back out of a customer: the records `record_pks` (a wrongly linked record: a new
    customer of their own), or the records the customer `merged_customer_id` held when it was merged
    into this one (a wrongly merged customer: its old id back).

    Stable ids hold: this customer keeps its id. The decision sticks: every record split out and
    every record left is a steward's rejection in `review_queue` (an accepted review across the
    split becomes rejected), which the resolver honours at every later load. Records sharing a
    valid identity code are one person (rule 4) and are never split apart.
    """
    if not by:
        raise StewardError("an unmerge needs the steward's name")
    if not reason or not reason.strip():
        raise StewardError("an unmerge needs a reason")
    if (record_pks is None) == (merged_customer_id is None):
        raise StewardError("an unmerge splits either records or a merged customer")
    now = now or dt.datetime.now(dt.timezone.utc)
    from pipeline.register.access_log import log_access
    from pipeline.register.rights.reasons import check_reason

    check_reason(reason)
    with register_transaction(engine) as connection:
        row = connection.execute(sa.select(customer.c.merged_into, customer.c.erased_at)
                                 .where(customer.c.customer_id == customer_id)).first()
        if row is None or row[0] is not None:
            raise StewardError(f"customer {customer_id} is not a live customer")
        held = {int(pk): code for pk, code in connection.execute(
            sa.select(source_record.c.source_record_pk, source_record.c.personal_id)
            .where(source_record.c.customer_id == customer_id)).all()}
        merge_row = None
        if merged_customer_id is not None:
            merge_row = connection.execute(sa.select(customer_merge).where(
                customer_merge.c.merged_customer_id == merged_customer_id,
                customer_merge.c.surviving_customer_id == customer_id)).mappings().first()
            if merge_row is None:
                raise StewardError(f"customer {merged_customer_id} was not merged into {customer_id}")
            moved = {int(pk) for pk in connection.execute(sa.select(merge_record.c.source_record_pk).where(
                merge_record.c.merge_id == merge_row["merge_id"])).scalars()}
            split = sorted(moved & set(held))
            if not split:
                raise StewardError(f"no record of customer {merged_customer_id} at its merge is held by "
                                   f"{customer_id} (merged before the register kept them): split its records instead")
        else:
            split = sorted({int(pk) for pk in record_pks})
            if not split or not set(split) <= set(held):
                raise StewardError(f"the records to split are not all customer {customer_id}'s")
        rest = sorted(set(held) - set(split))
        if not rest:
            raise StewardError("an unmerge leaves at least one record with the customer")
        codes_split = {held[pk] for pk in split if held[pk]}
        codes_rest = {held[pk] for pk in rest if held[pk]}
        if codes_split & codes_rest:
            raise StewardError("records with the same valid identity code are one person: they cannot be split "
                               "(rectify the code if it is wrong)")
        _keep_apart(connection, split, rest, customer_id=customer_id, by=by, now=now)
        if merge_row is not None:
            target, restored = int(merged_customer_id), True
            connection.execute(merge_record.delete().where(merge_record.c.merge_id == merge_row["merge_id"]))
            connection.execute(customer_merge.delete().where(customer_merge.c.merge_id == merge_row["merge_id"]))
            connection.execute(customer.update().where(customer.c.customer_id == target)
                               .values(merged_into=None, updated_at=now))
        else:
            from pipeline.register.resolve import _allocate_customer_ids

            (target,) = _allocate_customer_ids(connection, 1)
            restored = False
            connection.execute(customer.insert().values(customer_id=target, identity_verified=False,
                                                        created_at=now, updated_at=now))
        connection.execute(source_record.update().where(source_record.c.source_record_pk.in_(split))
                           .values(customer_id=target))
        summary = resolve_identities(connection, now=now, run_id=None, settings=settings, seeds=split + rest,
                                     decided_by=by)
        connection.execute(unmerge_table.insert().values(
            customer_id=customer_id, split_customer_id=target, restored=restored,
            merged_at=merge_row["merged_at"] if merge_row is not None else None, records=len(split),
            reason=reason.strip(), decided_by=by, decided_at=now))
        for logged in (customer_id, target):
            log_access(connection, user=by, via=via, action="unmerge", customer_id=logged, reason=reason, now=now)
    return Unmerge(customer_id, target, restored, len(split), summary)


def _keep_apart(connection: sa.Connection, split: list[int], rest: list[int], *, customer_id: int, by: str,
                now: dt.datetime) -> None:
    """A steward's rejection between every record split out and every record left."""
    existing = {}
    for review_id, left, right in connection.execute(
            sa.select(review_queue.c.review_id, review_queue.c.left_source_record_pk,
                      review_queue.c.right_source_record_pk)
            .where(sa.or_(review_queue.c.left_source_record_pk.in_(split),
                          review_queue.c.right_source_record_pk.in_(split)))).all():
        if left is not None and right is not None:
            existing.setdefault((min(int(left), int(right)), max(int(left), int(right))), []).append(review_id)
    fresh = []
    for a in split:
        for b in rest:
            pair = (min(a, b), max(a, b))
            if pair in existing:
                connection.execute(review_queue.update().where(review_queue.c.review_id.in_(existing[pair]))
                                   .values(status="rejected", decided_by=by, decided_at=now))
            else:
                fresh.append({"left_source_record_pk": pair[0], "right_source_record_pk": pair[1],
                              "left_customer_id": customer_id, "right_customer_id": customer_id,
                              "probability": 0.0, "evidence": {"reason": "steward_unmerge", "comparisons": {}},
                              "status": "rejected", "decided_by": by, "decided_at": now, "created_at": now,
                              "run_id": None})
    if fresh:
        connection.execute(review_queue.insert(), fresh)
