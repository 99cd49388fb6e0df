"""People's rights over the register (docs/register_rules.md rule 8): access, rectification, erasure.

A *subject* is one person as the register holds them: asked by customer id, the
surviving customer the id resolves to (through `merged_into`) with every customer
merged into it; asked by personal identity code, every surviving customer that
holds the code or owns a record carrying it (an erased customer's billing row and
a later new customer of the same person are both the person's).

- `subject_access`: everything held on the subject, in the clear (it is the
  person's own data: the one place a steward sees values unmasked): customer rows,
  per-attribute provenance, source records (those under merged-away ids too),
  services, quarantine entries (the same channel and record id as a held record,
  or raw values containing the subject's code), merges, review decisions and
  earlier rights requests. `render_report` prints it for the person to read.
- `rectify`: one attribute corrected and normalised as the intake would, on the
  golden row *and* on the source record its provenance names, so that the next
  re-resolution picks the corrected value again.
- `erase`: a person without a contract (no `service` row) is removed entirely; a
  customer keeps only the billing identity for the accounting period.

Each request writes a `rights_request` row with the steward's name, the reason and
counts, never a personal value; messages and errors carry ids and counts only. The
reason is refused when it holds personal data: one of the subject's values (codes,
names, phone, e-mail, IBAN, street address) or anything shaped like an identity
code, an IBAN, an e-mail address or a phone number. A request runs in one
transaction that waits for loads and steward decisions (the register lock,
`pipeline.register.locks`, on PostgreSQL; an immediate write lock on SQLite).

Erasure deletes records through `pipeline.register.erasure`, which leaves a
tombstone of each record key, so a channel re-sending an old submission does not
bring the person back.

Quarantine entries are *purged* in place on erasure (raw values and record id
nulled, `raw_purged_at` set), not deleted: each file's `records_quarantined`
must keep matching its entries (rule 1), and the entry then holds only the file,
position and reason codes.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from pipeline.matching.blocking import blocking_keys
from pipeline.matching.features import match_features
from pipeline.matching.model import BLOCKING_KEYS
from pipeline.normalise import address, email, hetu, iban, names, phone
from pipeline.normalise.errors import NormaliseError
from pipeline.register.erasure import delete_match_keys, erase_source_records
from pipeline.register.locks import register_transaction
from pipeline.register.resolve import read_records_by_key
from pipeline.register.steward import StewardError
from pipeline.register.versions import content_hashes
from schemas.canonical import CHANNEL_ORDER, PERSONAL_ID_SHAPE
from schemas.register import (PROVENANCE_UNITS, UTCDateTime, customer, customer_merge, golden_provenance,
                              intake_file, match_key, quarantine, review_queue, rights_request, service,
                              source_record, source_record_version)

__all__ = ["BILLING_IDENTITY", "RECTIFIABLE", "RightsError", "Subject", "Rectification", "Erasure",
           "find_subject", "subject_access", "render_report", "rectify", "erase"]

# What a customer with a contract keeps after erasure: who is billed, where, from which account.
BILLING_IDENTITY: tuple[str, ...] = ("personal_id", "birth_date", "first_names", "last_name", "street_address",
                                     "postal_code", "city", "iban", "bic")

# Attributes a steward may rectify, with the provenance unit whose record carries them.
_UNIT_OF = {column: unit for unit, columns in PROVENANCE_UNITS.items() for column in columns}
RECTIFIABLE: tuple[str, ...] = ("first_names", "last_name", "street_address", "postal_code", "city", "phone",
                                "email", "iban", "birth_date", "marketing_prohibited")
_REFUSED = {
    "personal_id": "the personal identity code is the identity: a change goes through review, not rectification",
    "bic": "the BIC follows from the IBAN: rectify iban",
    "identity_verified": "identity verification is a fact of the intake, not a value to rectify",
}
_YES = {"true", "yes", "1", "kyllä", "ja"}
_NO = {"false", "no", "0", "ei", "nej"}

# Source record columns shown in a subject access, in this order.
_RECORD_FIELDS: tuple[str, ...] = (
    "source_record_pk", "channel", "source_record_id", "intake_file_id", "record_number", "customer_id",
    "observed_at", "match_method", "match_probability", "personal_id", "birth_date", "first_names", "last_name",
    "street_address", "postal_code", "city", "phone", "email", "iban", "bic", "product", "metering_point",
    "marketing_prohibited", "identity_verified", "quality_flags", "loaded_at", "run_id")
_CUSTOMER_FIELDS: tuple[str, ...] = tuple(customer.c.keys())
_VERSION_FIELDS: tuple[str, ...] = tuple(c for c in source_record_version.c.keys() if c != "content_hash")


class RightsError(StewardError):
    """A rights request that cannot be carried out (the message holds no personal value)."""


def _plain(value: object) -> object:
    """A JSON-native value: dates and times as ISO 8601 text."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def _now(now: dt.datetime | None) -> dt.datetime:
    now = now or dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("`now` must be timezone-aware")
    return now.astimezone(dt.timezone.utc)


def _require(text: str | None, what: str) -> str:
    if not text or not text.strip():
        raise RightsError(f"a rights request needs {what}")
    return text.strip()


# --- the subject --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Subject:
    """One person: surviving customers (active or erased), the ids merged into them, their codes."""

    customer_ids: tuple[int, ...]
    merged_ids: tuple[int, ...]
    personal_ids: tuple[str, ...]
    # Surviving customer -> every id merged into it, however long the chain of merges.
    merged_by_survivor: dict[int, tuple[int, ...]] = field(default_factory=dict)

    @property
    def all_customer_ids(self) -> tuple[int, ...]:
        return tuple(sorted({*self.customer_ids, *self.merged_ids}))

    def ids_of(self, survivor: int) -> tuple[int, ...]:
        """One surviving customer with every id merged into it."""
        return tuple(sorted({survivor, *self.merged_by_survivor.get(survivor, ())}))


def _survivor(connection: sa.Connection, customer_id: int) -> int | None:
    """The surviving customer an id resolves to; None if no such customer."""
    seen: set[int] = set()
    current = customer_id
    while current not in seen:
        seen.add(current)
        row = connection.execute(sa.select(customer.c.merged_into).where(customer.c.customer_id == current)).first()
        if row is None:
            return None
        if row[0] is None:
            return current
        current = int(row[0])
    raise RightsError(f"customer {customer_id}: its merges form a cycle")


def _merged_into(connection: sa.Connection, survivor: int) -> tuple[int, ...]:
    """Every id merged into `survivor`: `merged_into` names the final survivor, but a chain
    (A into B, then B into C) is followed all the same."""
    merged: set[int] = set()
    reached = {survivor}
    while reached:
        reached = set(connection.execute(sa.select(customer.c.customer_id).where(
            customer.c.merged_into.in_(sorted(reached)))).scalars().all()) - merged - {survivor}
        merged |= reached
    return tuple(sorted(merged))


def valid_code(personal_id: str, today: dt.date) -> str:
    """The canonical permanent code, or a RightsError that does not echo the value."""
    try:
        return hetu.validate(personal_id, today)
    except NormaliseError as error:
        raise RightsError(f"the personal identity code is not valid ({error})") from None


def find_subject(connection: sa.Connection, *, customer_id: int | None = None, personal_id: str | None = None,
                 today: dt.date | None = None) -> Subject:
    """The subject asked for by customer id or by personal identity code (exactly one of them).

    By id, an unknown id is an error. By code, a code held by no one gives a subject
    without customers (its quarantine entries may still hold the code).
    """
    if (customer_id is None) == (personal_id is None):
        raise RightsError("give either a customer id or a personal identity code")
    today = today or dt.datetime.now(dt.timezone.utc).date()
    codes: set[str] = set()
    if customer_id is not None:
        survivor = _survivor(connection, int(customer_id))
        if survivor is None:
            raise RightsError(f"no customer {customer_id}")
        survivors = {survivor}
    else:
        code = valid_code(personal_id, today)
        codes.add(code)
        holders = connection.execute(sa.select(customer.c.customer_id).where(customer.c.personal_id == code)
                                     ).scalars().all()
        owners = connection.execute(sa.select(source_record.c.customer_id).distinct().where(
            source_record.c.personal_id == code, source_record.c.customer_id.is_not(None))).scalars().all()
        survivors = {s for s in (_survivor(connection, int(c)) for c in {*holders, *owners}) if s is not None}
    merged_by_survivor = {survivor: _merged_into(connection, survivor) for survivor in sorted(survivors)}
    merged = {m for ids in merged_by_survivor.values() for m in ids}
    everyone = sorted(survivors | merged)
    if everyone:
        codes |= {c for c in connection.execute(sa.select(customer.c.personal_id).where(
            customer.c.customer_id.in_(everyone), customer.c.personal_id.is_not(None))).scalars().all()}
        codes |= {c for c in connection.execute(sa.select(source_record.c.personal_id).distinct().where(
            source_record.c.customer_id.in_(everyone), source_record.c.personal_id.is_not(None))).scalars().all()}
    return Subject(tuple(sorted(survivors)), tuple(sorted(merged)), tuple(sorted(codes)), merged_by_survivor)


def _quarantine_ids(connection: sa.Connection, subject: Subject) -> list[int]:
    """Entries of the subject: the same (channel, record id) as a held record, or the code in the raw values."""
    found: set[int] = set()
    if subject.all_customer_ids:
        keys = connection.execute(sa.select(source_record.c.channel, source_record.c.source_record_id).where(
            source_record.c.customer_id.in_(subject.all_customer_ids))).all()
        for channel, record_id in keys:  # one indexed lookup each: a person has a handful of records
            found |= set(connection.execute(sa.select(quarantine.c.quarantine_id).where(
                quarantine.c.channel == channel, quarantine.c.source_record_id == record_id)).scalars().all())
    for code in subject.personal_ids:
        found |= set(connection.execute(sa.select(quarantine.c.quarantine_id).where(
            quarantine.c.raw_values.is_not(None),
            sa.func.upper(quarantine.c.raw_values).contains(code.upper(), autoescape=True))).scalars().all())
    return sorted(found)


def _review_filter(ids: Collection[int], pks: Collection[int]):
    conditions = []
    if ids:
        conditions += [review_queue.c.left_customer_id.in_(sorted(ids)),
                       review_queue.c.right_customer_id.in_(sorted(ids))]
    if pks:
        conditions += [review_queue.c.left_source_record_pk.in_(sorted(pks)),
                       review_queue.c.right_source_record_pk.in_(sorted(pks))]
    return sa.or_(*conditions) if conditions else sa.false()


def _merge_filter(ids: Collection[int]):
    if not ids:
        return sa.false()
    return sa.or_(customer_merge.c.merged_customer_id.in_(sorted(ids)),
                  customer_merge.c.surviving_customer_id.in_(sorted(ids)))


# --- subject access -----------------------------------------------------------------------------

ACCESS_SECTIONS: tuple[str, ...] = ("customers", "provenance", "source_records", "record_versions", "services",
                                    "quarantine", "merges", "reviews", "rights_requests")

_PROVENANCE_VIEW = sa.text(
    "SELECT customer_id, attribute, source_record_pk, channel, observed_at FROM golden_value_provenance "
    "WHERE customer_id IN :ids ORDER BY customer_id, attribute"
).bindparams(sa.bindparam("ids", expanding=True)).columns(
    customer_id=sa.Integer, attribute=sa.String, source_record_pk=sa.BigInteger, channel=sa.String,
    observed_at=UTCDateTime)


def _collect(connection: sa.Connection, subject: Subject) -> dict[str, list[dict]]:
    ids = subject.all_customer_ids
    customers = [{f: _plain(r[f]) for f in _CUSTOMER_FIELDS} for r in connection.execute(
        sa.select(customer).where(customer.c.customer_id.in_(ids)).order_by(customer.c.customer_id)
    ).mappings().all()] if ids else []
    for row in customers:
        row["status"] = ("merged" if row["merged_into"] is not None
                         else "erased" if row["erased_at"] is not None else "active")

    records = [{**{f: _plain(r[f]) for f in _RECORD_FIELDS}, "file_name": r["file_name"]} for r in connection.execute(
        sa.select(source_record, intake_file.c.file_name)
        .join(intake_file, intake_file.c.intake_file_id == source_record.c.intake_file_id)
        .where(source_record.c.customer_id.in_(ids))
        .order_by(source_record.c.observed_at, source_record.c.channel, source_record.c.source_record_id)
    ).mappings().all()] if ids else []
    record_ids = {r["source_record_pk"]: r["source_record_id"] for r in records}
    # Earlier versions of the records (a re-sent record with other content): held, so shown.
    versions = [{**{f: _plain(r[f]) for f in _VERSION_FIELDS}, "channel": r["channel"],
                 "source_record_id": r["source_record_id"], "file_name": r["file_name"]}
                for r in connection.execute(
                    sa.select(source_record_version, source_record.c.channel, source_record.c.source_record_id,
                              intake_file.c.file_name)
                    .join(source_record, source_record.c.source_record_pk == source_record_version.c.source_record_pk)
                    .join(intake_file, intake_file.c.intake_file_id == source_record_version.c.intake_file_id)
                    .where(source_record.c.customer_id.in_(ids))
                    .order_by(source_record_version.c.source_record_pk, source_record_version.c.observed_at,
                              source_record_version.c.version_pk)).mappings().all()] if ids else []

    provenance = [{"customer_id": r["customer_id"], "attribute": r["attribute"],
                   "source_record_pk": r["source_record_pk"], "channel": r["channel"],
                   "source_record_id": record_ids.get(r["source_record_pk"]), "observed_at": _plain(r["observed_at"])}
                  for r in connection.execute(_PROVENANCE_VIEW, {"ids": list(subject.customer_ids)}).mappings()
                  ] if subject.customer_ids else []

    services = [{f: _plain(r[f]) for f in ("service_id", "customer_id", "product", "metering_point", "first_seen",
                                           "last_seen")}
                for r in connection.execute(sa.select(service).where(service.c.customer_id.in_(ids))
                                            .order_by(service.c.service_id)).mappings().all()] if ids else []

    held = _quarantine_ids(connection, subject)
    entries = []
    for r in connection.execute(sa.select(quarantine, intake_file.c.file_name)
                                .join(intake_file, intake_file.c.intake_file_id == quarantine.c.intake_file_id)
                                .where(quarantine.c.quarantine_id.in_(held))
                                .order_by(quarantine.c.quarantine_id)).mappings().all() if held else []:
        entries.append({
            "quarantine_id": r["quarantine_id"], "channel": r["channel"], "source_record_id": r["source_record_id"],
            "intake_file_id": r["intake_file_id"], "file_name": r["file_name"], "record_number": r["record_number"],
            "reasons": r["reasons"].split(), "detail": r["detail"],
            "raw_values": json.loads(r["raw_values"]) if r["raw_values"] else None,
            "quarantined_at": _plain(r["quarantined_at"]), "raw_purged_at": _plain(r["raw_purged_at"])})

    merges = [{f: _plain(r[f]) for f in ("merge_id", "merged_customer_id", "surviving_customer_id", "merged_at",
                                         "reason", "decided_by", "run_id")}
              for r in connection.execute(sa.select(customer_merge).where(_merge_filter(ids))
                                          .order_by(customer_merge.c.merge_id)).mappings().all()]

    pks = set(record_ids)
    reviews = [_review_view(r, set(ids), pks) for r in connection.execute(
        sa.select(review_queue).where(_review_filter(ids, pks)).order_by(review_queue.c.review_id)).mappings().all()]

    requests = [{f: _plain(r[f]) for f in ("request_id", "customer_id", "action", "attribute", "reason", "outcome",
                                           "decided_by", "performed_at")}
                for r in connection.execute(sa.select(rights_request).where(rights_request.c.customer_id.in_(ids))
                                            .order_by(rights_request.c.request_id)).mappings().all()] if ids else []
    return {"customers": customers, "provenance": provenance, "source_records": records,
            "record_versions": versions, "services": services,
            "quarantine": entries, "merges": merges, "reviews": reviews, "rights_requests": requests}


def _review_view(row, ids: set[int], pks: set[int]) -> dict:
    """A review as the subject may see it: the other person's side is not theirs to see.

    A side belongs to the subject when its record (or, lacking one, its customer) is
    theirs; the comparison levels are shown only when both sides are the subject's,
    as they describe the other person's values too.
    """
    def own(side: str) -> bool:
        pk = row[f"{side}_source_record_pk"]
        return pk in pks if pk is not None else row[f"{side}_customer_id"] in ids

    sides = {}
    for side in ("left", "right"):
        mine = own(side)
        sides[side] = {"own": mine,
                       "customer_id": row[f"{side}_customer_id"] if mine else None,
                       "source_record_pk": row[f"{side}_source_record_pk"] if mine else None}
    evidence = row["evidence"] or {}
    both = sides["left"]["own"] and sides["right"]["own"]
    return {"review_id": row["review_id"], "status": row["status"], "probability": float(row["probability"]),
            "reason": evidence.get("reason"), "comparisons": evidence.get("comparisons") if both else None,
            "left": sides["left"], "right": sides["right"], "created_at": _plain(row["created_at"]),
            "decided_by": row["decided_by"], "decided_at": _plain(row["decided_at"])}


def _record_request(connection: sa.Connection, subject: Subject, *, action: str, outcome: dict, by: str,
                    now: dt.datetime, reason: str | None = None, attribute: str | None = None) -> list[int]:
    """One rights_request row per surviving customer (one without a customer when there is none)."""
    rows = [{"customer_id": cid, "action": action, "attribute": attribute, "reason": reason, "outcome": outcome,
             "decided_by": by, "performed_at": now} for cid in (subject.customer_ids or (None,))]
    return [connection.execute(rights_request.insert().returning(rights_request.c.request_id), row).scalar_one()
            for row in rows]


def subject_access(engine: sa.Engine, *, customer_id: int | None = None, personal_id: str | None = None,
                   by: str, reason: str | None = None, now: dt.datetime | None = None) -> dict:
    """Everything held on the subject, as JSON-native data with stable keys and ISO 8601 times.

    The request is recorded (`rights_request`, action `access`) with counts per section;
    a reason, if given, must hold no personal data (`check_reason`).
    """
    by = _require(by, "the steward's name (--by)")
    reason = reason.strip() if reason and reason.strip() else None
    check_reason(reason)
    now = _now(now)
    with register_transaction(engine) as connection:  # one consistent answer, not half of a load
        subject = find_subject(connection, customer_id=customer_id, personal_id=personal_id, today=now.date())
        check_reason(reason, _subject_values(connection, subject))
        sections = _collect(connection, subject)
        counts = {name: len(sections[name]) for name in ACCESS_SECTIONS}
        request_ids = _record_request(connection, subject, action="access", outcome=counts, by=by, now=now,
                                      reason=reason)
    return {
        "request": {"request_ids": request_ids,
                    "looked_up_by": "customer_id" if customer_id is not None else "personal_id",
                    "customer_ids": list(subject.customer_ids), "merged_customer_ids": list(subject.merged_ids),
                    "performed_at": now.isoformat(), "decided_by": by, "counts": counts},
        **sections,
    }


# --- the readable report ------------------------------------------------------------------------

_LABELS = {
    "personal_id": "Personal identity code", "birth_date": "Date of birth", "first_names": "First names",
    "last_name": "Last name", "street_address": "Street address", "postal_code": "Postal code", "city": "City",
    "phone": "Phone", "email": "E-mail", "iban": "Bank account (IBAN)", "bic": "BIC",
    "marketing_prohibited": "Direct marketing prohibited", "identity_verified": "Identity verified",
    "product": "Product", "metering_point": "Metering point",
}
_PERSONAL = tuple(_LABELS)[:13]


def _shown(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def render_report(access: dict) -> str:
    """The subject access as text a person can read (English; values in the clear)."""
    request = access["request"]
    out: list[str] = ["SUBJECT ACCESS REPORT", "=====================",
                      f"Prepared {request['performed_at']} by {request['decided_by']}.",
                      "This is everything the customer register holds on you.", ""]
    if not access["customers"]:
        out += ["You are not a customer in the register.", ""]
    provenance: dict[tuple[int, str], dict] = {(p["customer_id"], p["attribute"]): p for p in access["provenance"]}
    for row in access["customers"]:
        if row["status"] == "merged":
            out.append(f"Customer number {row['customer_id']} was found to be you and merged into "
                       f"{row['merged_into']}; it holds no details of its own.")
            continue
        state = " (erased on your request; the billing identity is kept)" if row["status"] == "erased" else ""
        out += [f"Customer number {row['customer_id']}{state}",
                f"  customer since {row['created_at']}, last updated {row['updated_at']}"]
        for attribute in _PERSONAL:
            source = provenance.get((row["customer_id"], attribute))
            came = f"   (from {source['channel']} record {source['source_record_id']}, {source['observed_at']})" \
                if source else ""
            out.append(f"  {_LABELS[attribute]:<30} {_shown(row[attribute])}{came}")
        out.append("")
    out.append(f"Services ({len(access['services'])})")
    for s in access["services"]:
        out.append(f"  {s['product']:<17} metering point {_shown(s['metering_point'])}, "
                   f"customer {s['customer_id']}, first seen {s['first_seen']}, last seen {s['last_seen']}")
    out.append("")
    out.append(f"What you sent us ({len(access['source_records'])} records)")
    for r in access["source_records"]:
        out.append(f"  {r['channel']} record {r['source_record_id']}, received {r['observed_at']} "
                   f"(file {r['file_name']}, customer {r['customer_id']}, matched by {_shown(r['match_method'])})")
        for attribute in (*_PERSONAL, "product", "metering_point"):
            if r[attribute] is not None:
                out.append(f"      {_LABELS[attribute]:<28} {_shown(r[attribute])}")
        if r["quality_flags"]:
            out.append(f"      {'Data-quality notes':<28} {r['quality_flags']}")
    if access.get("record_versions"):
        out.append("")
        out.append(f"Earlier versions of those records ({len(access['record_versions'])})")
        for v in access["record_versions"]:
            out.append(f"  {v['channel']} record {v['source_record_id']}, received {v['observed_at']} "
                       f"(file {v['file_name']}, replaced {v['superseded_at']})")
            for attribute in (*_PERSONAL, "product", "metering_point"):
                if v[attribute] is not None:
                    out.append(f"      {_LABELS[attribute]:<28} {_shown(v[attribute])}")
    out.append("")
    out.append(f"Records we could not accept ({len(access['quarantine'])})")
    for q in access["quarantine"]:
        out.append(f"  {q['channel']} file {q['file_name']}, position {_shown(q['record_number'])}: "
                   f"{', '.join(q['reasons'])} (held since {q['quarantined_at']})")
        for key, value in (q["raw_values"] or {}).items():
            out.append(f"      {key:<28} {_shown(value)}")
        if q["raw_purged_at"]:
            out.append(f"      values removed {q['raw_purged_at']}")
    out.append("")
    out.append(f"Customer numbers merged ({len(access['merges'])})")
    for m in access["merges"]:
        decided = f" by {m['decided_by']}" if m["decided_by"] else " automatically"
        out.append(f"  {m['merged_customer_id']} into {m['surviving_customer_id']} on {m['merged_at']}{decided}: "
                   f"{m['reason']}")
    out.append("")
    out.append(f"Possible matches reviewed by our staff ({len(access['reviews'])})")
    for v in access["reviews"]:
        other = "" if v["left"]["own"] and v["right"]["own"] else " with another customer"
        decided = f", decided by {v['decided_by']} on {v['decided_at']}" if v["decided_by"] else ""
        out.append(f"  review {v['review_id']}{other}: {v['status']} (probability {v['probability']:.2f}){decided}")
    out.append("")
    out.append(f"Earlier requests about your data ({len(access['rights_requests'])})")
    for q in access["rights_requests"]:
        what = f" of {q['attribute']}" if q["attribute"] else ""
        out.append(f"  {q['performed_at']}: {q['action']}{what} by {q['decided_by']}"
                   + (f" ({q['reason']})" if q["reason"] else ""))
    out.append("")
    return "\n".join(out)


# --- rectification ------------------------------------------------------------------------------

def normalised_value(attribute: str, value: str, today: dt.date) -> dict[str, object]:
    """The columns a rectified `attribute` sets, normalised as the intake does; errors hold no value."""
    if attribute in _REFUSED:
        raise RightsError(f"{attribute} cannot be rectified: {_REFUSED[attribute]}")
    if attribute not in RECTIFIABLE:
        raise RightsError(f"{attribute} is not an attribute that can be rectified "
                          f"(one of: {', '.join(RECTIFIABLE)})")
    text = (value or "").strip()
    if not text:
        raise RightsError(f"a rectification of {attribute} needs the correct value")
    try:
        if attribute == "first_names":
            return {attribute: names.normalise_given_names(text)}
        if attribute == "last_name":
            return {attribute: names.normalise_surname(text)}
        if attribute == "street_address":
            return {attribute: address.normalise_street(text)}
        if attribute == "postal_code":
            return {attribute: address.validate_postal_code(text)}
        if attribute == "city":
            return {attribute: address.normalise_city(text)}
        if attribute == "phone":
            return {attribute: phone.validate(text)}
        if attribute == "email":
            return {attribute: email.validate(text)}
        if attribute == "iban":
            account, _ = iban.to_iban(text)
            return {"iban": account, "bic": iban.bic(account)}
        if attribute == "birth_date":
            try:
                born = dt.date.fromisoformat(text)
            except ValueError:
                raise RightsError("the birth date must be a date as YYYY-MM-DD") from None
            if born > today:
                raise RightsError("the birth date lies in the future")
            return {attribute: born}
        answer = text.lower()  # marketing_prohibited
        if answer in _YES | _NO:
            return {attribute: answer in _YES}
        raise RightsError("marketing_prohibited takes yes or no")
    except NormaliseError as error:
        raise RightsError(f"the new {attribute} is not valid ({error})") from None


def _mentions(text: str, values: Iterable[object]) -> bool:
    """Whether `text` quotes one of the values (booleans and very short values aside).

    >>> _mentions("customer called: new number +358401234567", ["+358401234567"]), _mentions("moved", [True])
    (True, False)
    """
    folded = text.casefold()
    return any(len(str(v).strip()) > 3 and str(_plain(v)).casefold().strip() in folded
               for v in values if v is not None and not isinstance(v, bool))


# Shapes of personal data a recorded reason must never hold, whoever's it is. Shapes, not
# valid values: a mistyped code or number is personal data all the same. Dates (2026-11-25)
# and ticket numbers (4711, INC-20261125-0042) are not phone numbers: a national number
# starts with 0, an international one with + or 00.
_BOUNDED = r"(?<![0-9A-Za-z]){}(?![0-9A-Za-z])"
PERSONAL_SHAPES: dict[str, re.Pattern[str]] = {
    "an identity code": re.compile(_BOUNDED.format(PERSONAL_ID_SHAPE), re.IGNORECASE),
    "an IBAN": re.compile(_BOUNDED.format(r"[A-Z]{2}\d{2} ?(?:[A-Z0-9]{4} ?){2,7}[A-Z0-9]{1,4}"), re.IGNORECASE),
    "an e-mail address": re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+"),
    "a phone number": re.compile(r"(?<![\w+])(?:(?:\+|00)\d(?:[ -]?\d){6,14}|0\d(?:[ -]?\d){5,11})(?!\w)"),
}
_PERSON_COLUMNS = ("personal_id", "first_names", "last_name", "street_address", "phone", "email", "iban")


def personal_shape(text: str) -> str | None:
    """What kind of personal data `text` holds by its shape, or None.

    >>> [personal_shape(t) for t in ("ticket 4711 of 2026-11-25", "call 040 123 4567", "mail a.b@example.fi",
    ...                              "account FI21 1234 5600 0007 85", "code 010101-123N", "moved house")]
    [None, 'a phone number', 'an e-mail address', 'an IBAN', 'an identity code', None]
    """
    return next((kind for kind, shape in PERSONAL_SHAPES.items() if shape.search(text)), None)


def _subject_values(connection: sa.Connection, subject: Subject) -> set[object]:
    """The subject's codes, names (each name too), phones, e-mails, IBANs and street addresses."""
    values: set[object] = set(subject.personal_ids)
    ids = subject.all_customer_ids
    if ids:
        for table in (customer, source_record):
            ours = table.c.customer_id.in_(ids)
            for row in connection.execute(sa.select(*[table.c[c] for c in _PERSON_COLUMNS]).where(ours)):
                values.update(v for v in row if v)
    names = [v for v in values if isinstance(v, str)]
    values.update(part for v in names for part in re.split(r"[\s-]+", v) if part)
    return values


def check_reason(reason: str | None, values: Iterable[object] = ()) -> None:
    """Refuse a reason holding personal data: one of `values`, or a code, IBAN, e-mail or phone by shape.

    The reason is recorded and shown in later subject access reports; the refusal
    names the kind of data, never the text.
    """
    if not reason:
        return
    kind = personal_shape(reason) or ("a value of the person" if _mentions(reason, values) else None)
    if kind:
        raise RightsError(f"the reason must not contain personal data (it holds {kind}): it is recorded; "
                          "give a ticket number or a plain description")


@dataclass
class Rectification:
    customer_id: int
    attribute: str
    source_records_updated: int
    match_keys_replaced: int
    request_id: int


def _ranked_records(connection: sa.Connection, ids: Collection[int], *, verified_first: bool) -> list[int]:
    """The subject's records, best first as survivorship ranks them (latest; then channel order, id)."""
    rows = connection.execute(sa.select(source_record.c.source_record_pk, source_record.c.channel,
                                        source_record.c.source_record_id, source_record.c.observed_at,
                                        source_record.c.identity_verified)
                              .where(source_record.c.customer_id.in_(sorted(ids)))).all()
    rows = sorted(rows, key=lambda r: r.source_record_id)
    rows = sorted(rows, key=lambda r: CHANNEL_ORDER[r.channel])
    rows = sorted(rows, key=lambda r: r.observed_at, reverse=True)
    if verified_first:
        rows = sorted(rows, key=lambda r: not r.identity_verified)
    return [int(r.source_record_pk) for r in rows]


def _replace_match_keys(connection: sa.Connection, pks: Collection[int]) -> int:
    """Recompute the blocking keys of records whose values changed; returns the keys written."""
    delete_match_keys(connection, pks)
    records = read_records_by_key(connection, pks)
    keys = blocking_keys(match_features(records), BLOCKING_KEYS)
    rows = [{"blocking_key": int(k), "source_record_pk": int(r)}
            for k, r in zip(keys["blocking_key"], keys["record_key"])]
    if rows:
        connection.execute(match_key.insert(), rows)
    return len(rows)


def _keep_received_hash(connection: sa.Connection, pk: int) -> None:
    """Store the record's content hash as received before a rectification changes its values,
    so a later identical re-send stays a re-send and does not undo the correction."""
    if connection.execute(sa.select(source_record.c.content_hash)
                          .where(source_record.c.source_record_pk == pk)).scalar() is not None:
        return
    held = read_records_by_key(connection, [pk])
    held["quality_flags"] = connection.execute(sa.select(source_record.c.quality_flags)
                                               .where(source_record.c.source_record_pk == pk)).scalar_one()
    connection.execute(source_record.update().where(source_record.c.source_record_pk == pk)
                       .values(content_hash=str(content_hashes(held)[0])))


def rectify(engine: sa.Engine, customer_id: int, attribute: str, value: str, *, reason: str, by: str,
            now: dt.datetime | None = None) -> Rectification:
    """Correct one attribute of a customer, on the golden row and on its provenance record.

    With no record behind the attribute (the value is missing), the best-ranked
    record of the person takes it, so survivorship picks it at the next re-resolution.
    """
    reason = _require(reason, "a reason (--reason)")
    by = _require(by, "the steward's name (--by)")
    now = _now(now)
    values = normalised_value(attribute, value, now.date())
    check_reason(reason, [value, *values.values()])
    with register_transaction(engine) as connection:
        subject = find_subject(connection, customer_id=customer_id, today=now.date())
        check_reason(reason, _subject_values(connection, subject))
        survivor = subject.customer_ids[0]
        golden = connection.execute(sa.select(customer).where(customer.c.customer_id == survivor)).mappings().one()
        if attribute == "birth_date" and golden["personal_id"]:
            raise RightsError("the birth date follows from the personal identity code: it cannot be rectified alone")
        erased = golden["erased_at"] is not None
        if erased and attribute not in BILLING_IDENTITY:
            raise RightsError(f"customer {survivor} was erased: only the billing identity is held")
        pk = None
        if not erased:
            unit = _UNIT_OF[attribute]
            pk = connection.execute(sa.select(golden_provenance.c[f"{unit}_record_pk"])
                                    .where(golden_provenance.c.customer_id == survivor)).scalar()
            owned = _ranked_records(connection, subject.all_customer_ids, verified_first=unit == "name")
            if pk is None or int(pk) not in owned:
                pk = owned[0] if owned else None
        connection.execute(customer.update().where(customer.c.customer_id == survivor)
                           .values(**values, updated_at=now))
        keys = 0
        if pk is not None:
            _keep_received_hash(connection, int(pk))
            connection.execute(source_record.update().where(source_record.c.source_record_pk == int(pk))
                               .values(**values))
            keys = _replace_match_keys(connection, [int(pk)])
        outcome = {"customer": 1, "source_record": int(pk is not None), "match_key": keys}
        request_id = _record_request(connection, subject, action="rectification", outcome=outcome, by=by, now=now,
                                     reason=reason, attribute=attribute)[0]
    return Rectification(survivor, attribute, int(pk is not None), keys, request_id)


# --- erasure ------------------------------------------------------------------------------------

@dataclass
class Erasure:
    customer_ids: tuple[int, ...]
    kinds: dict[int, str]  # customer id -> "prospect" (removed) or "customer" (billing identity kept)
    deleted: Counter = field(default_factory=Counter)  # rows per table
    purged: Counter = field(default_factory=Counter)   # quarantine entries emptied in place
    kept: Counter = field(default_factory=Counter)     # rows per table kept for billing
    adjusted: Counter = field(default_factory=Counter)  # intake files whose records_erased grew
    tombstones: int = 0  # record keys newly buried (erased_record): a re-send stays erased
    request_ids: list[int] = field(default_factory=list)


def _delete(connection: sa.Connection, statement) -> int:
    return int(connection.execute(statement).rowcount or 0)


def _purge_quarantine(connection: sa.Connection, entry_ids: Collection[int], now: dt.datetime) -> int:
    """Raw values and record id gone; file, position and reasons stay so the file's counts add up."""
    if not entry_ids:
        return 0
    ids = sorted(entry_ids)
    # A record-level entry is recognised by its position: its id can go (whole-file entries have neither).
    connection.execute(quarantine.update().where(quarantine.c.quarantine_id.in_(ids),
                                                 quarantine.c.record_number.is_not(None))
                       .values(source_record_id=None))
    return _delete(connection, quarantine.update().where(quarantine.c.quarantine_id.in_(ids))
                   .values(raw_values=None, raw_purged_at=sa.func.coalesce(quarantine.c.raw_purged_at, now)))


def erase(engine: sa.Engine, *, customer_id: int | None = None, personal_id: str | None = None, reason: str,
          by: str, now: dt.datetime | None = None, dry_run: bool = False) -> Erasure:
    """Erase what no law requires keeping, in one transaction (rolled back when `dry_run`).

    A person without a contract (no `service` row) loses every row: source records
    with their blocking keys, provenance, reviews, merges, the customer rows (ids are
    never reused). A customer with a contract keeps the billing identity and the
    services; contact details, records, reviews and provenance go, `erased_at` is set
    and the analysts' views leave it out. A prohibition of direct marketing is kept
    (an objection must go on being honoured); a permission is removed. Quarantine
    entries of the person are purged in both cases, and each erased record's key
    leaves a tombstone (`pipeline.register.tombstones`).
    """
    reason = _require(reason, "a reason (--reason)")
    by = _require(by, "the steward's name (--by)")
    check_reason(reason)
    now = _now(now)
    try:
        with register_transaction(engine) as connection:
            subject = find_subject(connection, customer_id=customer_id, personal_id=personal_id, today=now.date())
            check_reason(reason, _subject_values(connection, subject))
            result = _erase(connection, subject, reason=reason, by=by, now=now)
            if dry_run:
                raise _DryRun(result)  # leaves the block: the transaction rolls back
    except _DryRun as dry:
        result = dry.result
        result.request_ids = []
    return result


class _DryRun(Exception):
    """Raised to roll an erasure back after counting it (`erase(dry_run=True)`)."""

    def __init__(self, result: Erasure):
        super().__init__("dry run")
        self.result = result


def _erase(connection: sa.Connection, subject: Subject, *, reason: str, by: str, now: dt.datetime) -> Erasure:
    result = Erasure(subject.customer_ids, {})
    # Found while the records that lead to them are still there; they belong to the whole
    # subject, so they are counted once, on the first request row.
    purged = _purge_quarantine(connection, _quarantine_ids(connection, subject), now)
    result.purged["quarantine"] = purged
    if not subject.customer_ids:  # a code no customer holds: its quarantine entries, if any
        result.request_ids = _record_request(connection, subject, action="erasure", by=by, now=now, reason=reason,
                                             outcome={"kind": "no_customer", "deleted": {}, "kept": {},
                                                      "purged": {"quarantine": purged}, "adjusted": {},
                                                      "tombstones": 0})
        return result
    for number, survivor in enumerate(subject.customer_ids):
        ids = list(subject.ids_of(survivor))  # the whole chain of merges, not one level of it
        deleted: Counter = Counter()
        kept: Counter = Counter()
        adjusted: Counter = Counter()
        services = connection.execute(sa.select(sa.func.count()).select_from(service)
                                      .where(service.c.customer_id.in_(ids))).scalar_one()
        records = erase_source_records(connection, ids, now)
        deleted.update({"source_record": records.source_records, "match_key": records.match_keys,
                        "review_queue": records.reviews, "golden_provenance_pointers": records.provenance_pointers})
        adjusted["intake_file"] += records.intake_files_adjusted
        if services:
            kind = "customer"
            # Every pointer of the kept row, not only those at the deleted records: the billing
            # identity is held for accounting, no longer as any record's value.
            connection.execute(golden_provenance.update().where(golden_provenance.c.customer_id.in_(ids)).values(
                **{c.name: None for c in golden_provenance.c if c.name != "customer_id"}))
            connection.execute(customer.update().where(customer.c.customer_id == survivor).values(
                phone=None, email=None, updated_at=now,
                # A prohibition stays: an objection to direct marketing must go on being honoured.
                marketing_prohibited=sa.case((customer.c.marketing_prohibited.is_(True), True), else_=None),
                erased_at=sa.func.coalesce(customer.c.erased_at, now)))
            kept["customer"] += 1
            kept["service"] += int(services)
            # Merged-away ids hold no values, and may stand on old invoices.
            kept["merged_customer_ids"] += len(ids) - 1
        else:
            kind = "prospect"
            deleted["golden_provenance"] += _delete(connection, golden_provenance.delete()
                                                    .where(golden_provenance.c.customer_id.in_(ids)))
            deleted["customer_merge"] += _delete(connection, customer_merge.delete().where(_merge_filter(ids)))
            deleted["customer"] += _delete(connection, customer.delete().where(customer.c.customer_id.in_(ids)))
        result.kinds[survivor] = kind
        result.deleted.update(deleted)
        result.kept.update(kept)
        result.adjusted.update(adjusted)
        result.tombstones += records.tombstones
        outcome = {"kind": kind, "deleted": dict(sorted(deleted.items())), "kept": dict(sorted(kept.items())),
                   "purged": {"quarantine": purged if number == 0 else 0},
                   "adjusted": dict(sorted(adjusted.items())), "tombstones": records.tombstones}
        result.request_ids += _record_request(connection, Subject((survivor,), (), ()), action="erasure",
                                              outcome=outcome, by=by, now=now, reason=reason)
    return result
