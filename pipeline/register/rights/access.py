"""Subject access: everything the register holds on one person, collected and rendered.

`subject_access` collects it in the clear (it is the person's own data: the one
place a steward sees values unmasked): customer rows, per-attribute provenance,
source records (those under merged-away ids too) and their earlier versions,
services, quarantine entries (the same channel and record id as a held record,
or raw values containing the subject's code), merges, review decisions and
earlier rights requests, as JSON-native data with stable keys. `render_report`
prints that answer for the person to read. Collecting and rendering sit together
because the report reads exactly the sections the collection makes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection

import sqlalchemy as sa

from pipeline.register.disclosures import SUBJECT_ACCESS_TERMS, disclosures_of, record_disclosure
from pipeline.register.locks import register_transaction
from pipeline.register.rights.reasons import check_reason, subject_values
from pipeline.register.rights.request import json_value, record_request, request_time, required
from pipeline.register.rights.subject import Subject, find_subject, merges_touching, quarantine_entry_ids
from schemas.register import (UTCDateTime, customer, customer_merge, intake_file, quarantine, review_queue,
                              rights_request, service, source_record, source_record_version)

__all__ = ["ACCESS_SECTIONS", "render_report", "subject_access"]

# Source record columns shown in a subject access, in this order.
_RECORD_FIELDS: tuple[str, ...] = (
    "source_record_pk", "channel", "source_record_id", "intake_file_id", "record_number", "customer_id",
    "observed_at", "match_method", "match_probability", "personal_id", "birth_date", "first_names", "last_name",
    "street_address", "postal_code", "city", "phone", "email", "iban", "bic", "product", "metering_point",
    "marketing_prohibited", "identity_verified", "quality_flags", "loaded_at", "run_id")
_CUSTOMER_FIELDS: tuple[str, ...] = tuple(customer.c.keys())
_VERSION_FIELDS: tuple[str, ...] = tuple(c for c in source_record_version.c.keys() if c != "content_hash")

# The keys of a subject access besides "request", in this order.
ACCESS_SECTIONS: tuple[str, ...] = ("customers", "provenance", "source_records", "record_versions", "services",
                                    "quarantine", "merges", "reviews", "rights_requests", "disclosures")

_PROVENANCE_VIEW = sa.text(
    "SELECT customer_id, attribute, source_record_pk, channel, observed_at FROM golden_value_provenance "
    "WHERE customer_id IN :ids ORDER BY customer_id, attribute"
).bindparams(sa.bindparam("ids", expanding=True)).columns(
    customer_id=sa.Integer, attribute=sa.String, source_record_pk=sa.BigInteger, channel=sa.String,
    observed_at=UTCDateTime)


def _review_filter(ids: Collection[int], pks: Collection[int]):
    """A condition on `review_queue`: reviews naming one of the customers `ids` or records `pks`."""
    conditions = []
    if ids:
        conditions += [review_queue.c.left_customer_id.in_(sorted(ids)),
                       review_queue.c.right_customer_id.in_(sorted(ids))]
    if pks:
        conditions += [review_queue.c.left_source_record_pk.in_(sorted(pks)),
                       review_queue.c.right_source_record_pk.in_(sorted(pks))]
    return sa.or_(*conditions) if conditions else sa.false()


def _collect(connection: sa.Connection, subject: Subject) -> dict[str, list[dict]]:
    """The sections of a subject access (ACCESS_SECTIONS), each a list of JSON-native rows."""
    ids = subject.all_customer_ids
    customers = [{f: json_value(r[f]) for f in _CUSTOMER_FIELDS} for r in connection.execute(
        sa.select(customer).where(customer.c.customer_id.in_(ids)).order_by(customer.c.customer_id)
    ).mappings().all()] if ids else []
    for row in customers:
        row["status"] = ("merged" if row["merged_into"] is not None
                         else "erased" if row["erased_at"] is not None else "active")

    records = [{**{f: json_value(r[f]) for f in _RECORD_FIELDS}, "file_name": r["file_name"]}
               for r in connection.execute(
                   sa.select(source_record, intake_file.c.file_name)
                   .join(intake_file, intake_file.c.intake_file_id == source_record.c.intake_file_id)
                   .where(source_record.c.customer_id.in_(ids))
                   .order_by(source_record.c.observed_at, source_record.c.channel, source_record.c.source_record_id)
               ).mappings().all()] if ids else []
    record_ids = {r["source_record_pk"]: r["source_record_id"] for r in records}
    # Earlier versions of the records (a re-sent record with other content): held, so shown.
    versions = [{**{f: json_value(r[f]) for f in _VERSION_FIELDS}, "channel": r["channel"],
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
                   "source_record_id": record_ids.get(r["source_record_pk"]),
                   "observed_at": json_value(r["observed_at"])}
                  for r in connection.execute(_PROVENANCE_VIEW, {"ids": list(subject.customer_ids)}).mappings()
                  ] if subject.customer_ids else []

    services = [{f: json_value(r[f]) for f in ("service_id", "customer_id", "product", "metering_point",
                                                "first_seen", "last_seen")}
                for r in connection.execute(sa.select(service).where(service.c.customer_id.in_(ids))
                                            .order_by(service.c.service_id)).mappings().all()] if ids else []

    held = quarantine_entry_ids(connection, subject)
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
            "quarantined_at": json_value(r["quarantined_at"]), "raw_purged_at": json_value(r["raw_purged_at"])})

    merges = [{f: json_value(r[f]) for f in ("merge_id", "merged_customer_id", "surviving_customer_id",
                                              "merged_at", "reason", "decided_by", "run_id")}
              for r in connection.execute(sa.select(customer_merge).where(merges_touching(ids))
                                          .order_by(customer_merge.c.merge_id)).mappings().all()]

    pks = set(record_ids)
    reviews = [_review_view(r, set(ids), pks) for r in connection.execute(
        sa.select(review_queue).where(_review_filter(ids, pks)).order_by(review_queue.c.review_id)).mappings().all()]

    requests = [{f: json_value(r[f]) for f in ("request_id", "customer_id", "action", "attribute", "reason",
                                                "outcome", "decided_by", "performed_at")}
                for r in connection.execute(sa.select(rights_request).where(rights_request.c.customer_id.in_(ids))
                                            .order_by(rights_request.c.request_id)).mappings().all()] if ids else []
    # To whom the register gave the person's data: marketing extracts that named them, and
    # earlier answers to the person.
    disclosed = disclosures_of(connection, ids) if ids else []
    return {"customers": customers, "provenance": provenance, "source_records": records,
            "record_versions": versions, "services": services,
            "quarantine": entries, "merges": merges, "reviews": reviews, "rights_requests": requests,
            "disclosures": disclosed}


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
            "left": sides["left"], "right": sides["right"], "created_at": json_value(row["created_at"]),
            "decided_by": row["decided_by"], "decided_at": json_value(row["decided_at"])}


def subject_access(engine: sa.Engine, *, customer_id: int | None = None, personal_id: str | None = None,
                   by: str, reason: str | None = None, now: dt.datetime | None = None) -> dict:
    """Everything held on the subject, as JSON-native data with stable keys and ISO 8601 times.

    The request is recorded (`rights_request`, action `access`) with counts per section;
    a reason, if given, must hold no personal data (`check_reason`).
    """
    by = required(by, "the steward's name (--by)")
    reason = reason.strip() if reason and reason.strip() else None
    check_reason(reason)
    now = request_time(now)
    with register_transaction(engine) as connection:  # one consistent answer, not half of a load
        subject = find_subject(connection, customer_id=customer_id, personal_id=personal_id, today=now.date())
        check_reason(reason, subject_values(connection, subject))
        sections = _collect(connection, subject)
        counts = {name: len(sections[name]) for name in ACCESS_SECTIONS}
        request_ids = record_request(connection, subject.customer_ids, action="access", outcome=counts, by=by,
                                     now=now, reason=reason)
        # This answer is itself a disclosure, to the person: logged with its counts.
        record_disclosure(connection, kind="subject_access", terms=SUBJECT_ACCESS_TERMS,
                          customer_ids=subject.all_customer_ids, details={"sections": counts}, by=by, now=now)
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


def _record_values(record: dict) -> list[str]:
    """The report's lines for one record's (or earlier version's) values, those it holds."""
    return [f"      {_LABELS[attribute]:<28} {_shown(record[attribute])}"
            for attribute in (*_PERSONAL, "product", "metering_point") if record[attribute] is not None]


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
        out.extend(_record_values(r))
        if r["quality_flags"]:
            out.append(f"      {'Data-quality notes':<28} {r['quality_flags']}")
    if access.get("record_versions"):
        out.append("")
        out.append(f"Earlier versions of those records ({len(access['record_versions'])})")
        for v in access["record_versions"]:
            out.append(f"  {v['channel']} record {v['source_record_id']}, received {v['observed_at']} "
                       f"(file {v['file_name']}, replaced {v['superseded_at']})")
            out.extend(_record_values(v))
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
    disclosed = access.get("disclosures", [])
    out.append(f"Your data was disclosed to ({len(disclosed)})")
    for d in disclosed:
        out.append(f"  {d['disclosed_at']}: {d['recipient']}, for {d['purpose']} ({d['legal_basis']})")
    out.append("")
    out.append(f"Earlier requests about your data ({len(access['rights_requests'])})")
    for q in access["rights_requests"]:
        what = f" of {q['attribute']}" if q["attribute"] else ""
        out.append(f"  {q['performed_at']}: {q['action']}{what} by {q['decided_by']}"
                   + (f" ({q['reason']})" if q["reason"] else ""))
    out.append("")
    return "\n".join(out)


