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

from pipeline.register.access_log import accesses
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
                                    "quarantine", "merges", "reviews", "rights_requests", "disclosures",
                                    "access_log")

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
    # Who in the utility looked at the person, and what they did (ids, actions and reasons, no values).
    looked = [{f: r[f] for f in ("access_id", "at", "user_name", "via", "action", "customer_id", "reason")}
              for r in accesses(connection, customer_ids=list(ids), limit=None, newest_first=False)] if ids else []
    return {"customers": customers, "provenance": provenance, "source_records": records,
            "record_versions": versions, "services": services,
            "quarantine": entries, "merges": merges, "reviews": reviews, "rights_requests": requests,
            "disclosures": disclosed, "access_log": looked}


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

REPORT_LANGUAGES: tuple[str, ...] = ("fi", "sv", "en")

_LABELS_BY_LANG = {
    "en": {
        "personal_id": "Personal identity code", "birth_date": "Date of birth", "first_names": "First names",
        "last_name": "Last name", "street_address": "Street address", "postal_code": "Postal code", "city": "City",
        "phone": "Phone", "email": "E-mail", "iban": "Bank account (IBAN)", "bic": "BIC",
        "marketing_prohibited": "Direct marketing prohibited", "identity_verified": "Identity verified",
        "product": "Product", "metering_point": "Metering point",
    },
    "fi": {
        "personal_id": "Henkilötunnus", "birth_date": "Syntymäaika", "first_names": "Etunimet",
        "last_name": "Sukunimi", "street_address": "Katuosoite", "postal_code": "Postinumero", "city": "Postitoimipaikka",
        "phone": "Puhelin", "email": "Sähköposti", "iban": "Tilinumero (IBAN)", "bic": "BIC",
        "marketing_prohibited": "Suoramarkkinointi kielletty", "identity_verified": "Henkilöllisyys tarkistettu",
        "product": "Tuote", "metering_point": "Käyttöpaikka",
    },
    "sv": {
        "personal_id": "Personbeteckning", "birth_date": "Födelsedatum", "first_names": "Förnamn",
        "last_name": "Efternamn", "street_address": "Gatuadress", "postal_code": "Postnummer", "city": "Postanstalt",
        "phone": "Telefon", "email": "E-post", "iban": "Kontonummer (IBAN)", "bic": "BIC",
        "marketing_prohibited": "Direktmarknadsföring förbjuden", "identity_verified": "Identiteten kontrollerad",
        "product": "Produkt", "metering_point": "Mätpunkt",
    },
}
_LABELS = _LABELS_BY_LANG["en"]
_PERSONAL = tuple(_LABELS)[:13]

# The report's sentences per language; {placeholders} are ids, counts, times and codes.
_TEXT = {
    "en": {
        "title": "SUBJECT ACCESS REPORT", "prepared": "Prepared {when} by {by}.",
        "intro": "This is everything the customer register holds on you.",
        "no_customer": "You are not a customer in the register.",
        "merged": "Customer number {id} was found to be you and merged into {into}; it holds no details of its own.",
        "erased": " (erased on your request; the billing identity is kept)", "customer": "Customer number {id}{state}",
        "since": "  customer since {created}, last updated {updated}",
        "from": "   (from {channel} record {record}, {when})", "yes": "yes", "no": "no",
        "services": "Services ({n})",
        "service": "  {product:<17} metering point {point}, customer {customer}, first seen {first}, last seen {last}",
        "records": "What you sent us ({n} records)",
        "record": "  {channel} record {record}, received {when} (file {file}, customer {customer}, matched by {method})",
        "notes": "Data-quality notes", "versions": "Earlier versions of those records ({n})",
        "version": "  {channel} record {record}, received {when} (file {file}, replaced {replaced})",
        "quarantine": "Records we could not accept ({n})",
        "entry": "  {channel} file {file}, position {position}: {reasons} (held since {when})",
        "removed": "      values removed {when}", "merges": "Customer numbers merged ({n})",
        "merge": "  {merged} into {survivor} on {when}{decided}: {reason}", "by": " by {who}",
        "automatically": " automatically", "reviews": "Possible matches reviewed by our staff ({n})",
        "other": " with another customer", "decided": ", decided by {who} on {when}",
        "review": "  review {id}{other}: {status} (probability {p:.2f}){decided}",
        "disclosed": "Your data was disclosed to ({n})",
        "disclosure": "  {when}: {recipient}, for {purpose} ({basis})",
        "requests": "Earlier requests about your data ({n})", "of": " of {attribute}",
        "request": "  {when}: {action}{what} by {who}",
        "looked": "Who in our staff looked at your data ({n})",
        "look": "  {when}: {user} ({via}), {action}",
    },
    "fi": {
        "title": "TARKASTUSPYYNNÖN VASTAUS", "prepared": "Laadittu {when}, laatija {by}.",
        "intro": "Tässä on kaikki, mitä asiakasrekisteri sisältää sinusta.",
        "no_customer": "Et ole rekisterissä asiakkaana.",
        "merged": "Asiakasnumeron {id} todettiin olevan sinun, ja se yhdistettiin numeroon {into}; "
                  "siinä ei ole omia tietoja.",
        "erased": " (poistettu pyynnöstäsi; laskutuksen tunnistetiedot säilytetään)",
        "customer": "Asiakasnumero {id}{state}", "since": "  asiakkaana {created} alkaen, päivitetty {updated}",
        "from": "   (lähde: {channel}-tietue {record}, {when})", "yes": "kyllä", "no": "ei",
        "services": "Palvelut ({n})",
        "service": "  {product:<17} käyttöpaikka {point}, asiakas {customer}, ensin nähty {first}, viimeksi {last}",
        "records": "Lähettämäsi tiedot ({n} tietuetta)",
        "record": "  {channel}-tietue {record}, vastaanotettu {when} (tiedosto {file}, asiakas {customer}, "
                  "yhdistämistapa {method})",
        "notes": "Laatuhuomiot", "versions": "Tietueiden aiemmat versiot ({n})",
        "version": "  {channel}-tietue {record}, vastaanotettu {when} (tiedosto {file}, korvattu {replaced})",
        "quarantine": "Tietueet, joita emme voineet hyväksyä ({n})",
        "entry": "  {channel}-tiedosto {file}, kohta {position}: {reasons} (pidetty {when} alkaen)",
        "removed": "      arvot poistettu {when}", "merges": "Yhdistetyt asiakasnumerot ({n})",
        "merge": "  {merged} numeroon {survivor} {when}{decided}: {reason}", "by": ", yhdisti {who}",
        "automatically": ", automaattisesti", "reviews": "Henkilökuntamme tarkistamat mahdolliset osumat ({n})",
        "other": " toisen asiakkaan kanssa", "decided": ", päätti {who} {when}",
        "review": "  tarkistus {id}{other}: {status} (todennäköisyys {p:.2f}){decided}",
        "disclosed": "Tietojasi on luovutettu ({n})",
        "disclosure": "  {when}: {recipient}, tarkoitus {purpose} ({basis})",
        "requests": "Aiemmat pyynnöt tiedoistasi ({n})", "of": " ({attribute})",
        "request": "  {when}: {action}{what}, käsittelijä {who}",
        "looked": "Henkilökuntamme, joka on katsonut tietojasi ({n})",
        "look": "  {when}: {user} ({via}), {action}",
    },
    "sv": {
        "title": "SVAR PÅ BEGÄRAN OM REGISTERUTDRAG", "prepared": "Upprättat {when} av {by}.",
        "intro": "Detta är allt som kundregistret innehåller om dig.",
        "no_customer": "Du är inte kund i registret.",
        "merged": "Kundnummer {id} konstaterades vara du och slogs ihop med {into}; det innehåller inga egna uppgifter.",
        "erased": " (raderat på din begäran; faktureringsidentiteten sparas)",
        "customer": "Kundnummer {id}{state}", "since": "  kund sedan {created}, senast uppdaterad {updated}",
        "from": "   (från {channel}-post {record}, {when})", "yes": "ja", "no": "nej",
        "services": "Tjänster ({n})",
        "service": "  {product:<17} mätpunkt {point}, kund {customer}, först sedd {first}, senast sedd {last}",
        "records": "Det du skickat oss ({n} poster)",
        "record": "  {channel}-post {record}, mottagen {when} (fil {file}, kund {customer}, matchad genom {method})",
        "notes": "Kvalitetsanteckningar", "versions": "Tidigare versioner av posterna ({n})",
        "version": "  {channel}-post {record}, mottagen {when} (fil {file}, ersatt {replaced})",
        "quarantine": "Poster vi inte kunde godta ({n})",
        "entry": "  {channel}-fil {file}, position {position}: {reasons} (hålls sedan {when})",
        "removed": "      värden borttagna {when}", "merges": "Sammanslagna kundnummer ({n})",
        "merge": "  {merged} med {survivor} {when}{decided}: {reason}", "by": " av {who}",
        "automatically": " automatiskt", "reviews": "Möjliga matchningar som vår personal granskat ({n})",
        "other": " med en annan kund", "decided": ", avgjord av {who} {when}",
        "review": "  granskning {id}{other}: {status} (sannolikhet {p:.2f}){decided}",
        "disclosed": "Dina uppgifter har lämnats ut till ({n})",
        "disclosure": "  {when}: {recipient}, för {purpose} ({basis})",
        "requests": "Tidigare begäranden om dina uppgifter ({n})", "of": " ({attribute})",
        "request": "  {when}: {action}{what} av {who}",
        "looked": "Vår personal som har tittat på dina uppgifter ({n})",
        "look": "  {when}: {user} ({via}), {action}",
    },
}


def _shown(value: object, text: dict | None = None) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        text = text or _TEXT["en"]
        return text["yes"] if value else text["no"]
    return str(value)


def _record_values(record: dict, lang: str = "en") -> list[str]:
    """The report's lines for one record's (or earlier version's) values, those it holds."""
    labels, text = _LABELS_BY_LANG[lang], _TEXT[lang]
    return [f"      {labels[attribute]:<28} {_shown(record[attribute], text)}"
            for attribute in (*_PERSONAL, "product", "metering_point") if record[attribute] is not None]


def render_report(access: dict, lang: str = "en") -> str:
    """The subject access as text a person can read, in Finnish, Swedish or English (values in the clear)."""
    if lang not in REPORT_LANGUAGES:
        raise ValueError(f"a report is in one of {', '.join(REPORT_LANGUAGES)}")
    t, labels = _TEXT[lang], _LABELS_BY_LANG[lang]
    request = access["request"]
    out: list[str] = [t["title"], "=" * len(t["title"]),
                      t["prepared"].format(when=request["performed_at"], by=request["decided_by"]),
                      t["intro"], ""]
    if not access["customers"]:
        out += [t["no_customer"], ""]
    provenance: dict[tuple[int, str], dict] = {(p["customer_id"], p["attribute"]): p for p in access["provenance"]}
    for row in access["customers"]:
        if row["status"] == "merged":
            out.append(t["merged"].format(id=row["customer_id"], into=row["merged_into"]))
            continue
        state = t["erased"] if row["status"] == "erased" else ""
        out += [t["customer"].format(id=row["customer_id"], state=state),
                t["since"].format(created=row["created_at"], updated=row["updated_at"])]
        for attribute in _PERSONAL:
            source = provenance.get((row["customer_id"], attribute))
            came = t["from"].format(channel=source["channel"], record=source["source_record_id"],
                                    when=source["observed_at"]) if source else ""
            out.append(f"  {labels[attribute]:<30} {_shown(row[attribute], t)}{came}")
        out.append("")
    out.append(t["services"].format(n=len(access["services"])))
    for s in access["services"]:
        out.append(t["service"].format(product=s["product"], point=_shown(s["metering_point"]),
                                       customer=s["customer_id"], first=s["first_seen"], last=s["last_seen"]))
    out.append("")
    out.append(t["records"].format(n=len(access["source_records"])))
    for r in access["source_records"]:
        out.append(t["record"].format(channel=r["channel"], record=r["source_record_id"], when=r["observed_at"],
                                      file=r["file_name"], customer=r["customer_id"],
                                      method=_shown(r["match_method"])))
        out.extend(_record_values(r, lang))
        if r["quality_flags"]:
            out.append(f"      {t['notes']:<28} {r['quality_flags']}")
    if access.get("record_versions"):
        out.append("")
        out.append(t["versions"].format(n=len(access["record_versions"])))
        for v in access["record_versions"]:
            out.append(t["version"].format(channel=v["channel"], record=v["source_record_id"], when=v["observed_at"],
                                           file=v["file_name"], replaced=v["superseded_at"]))
            out.extend(_record_values(v, lang))
    out.append("")
    out.append(t["quarantine"].format(n=len(access["quarantine"])))
    for q in access["quarantine"]:
        out.append(t["entry"].format(channel=q["channel"], file=q["file_name"], position=_shown(q["record_number"]),
                                     reasons=", ".join(q["reasons"]), when=q["quarantined_at"]))
        for key, value in (q["raw_values"] or {}).items():
            out.append(f"      {key:<28} {_shown(value, t)}")
        if q["raw_purged_at"]:
            out.append(t["removed"].format(when=q["raw_purged_at"]))
    out.append("")
    out.append(t["merges"].format(n=len(access["merges"])))
    for m in access["merges"]:
        decided = t["by"].format(who=m["decided_by"]) if m["decided_by"] else t["automatically"]
        out.append(t["merge"].format(merged=m["merged_customer_id"], survivor=m["surviving_customer_id"],
                                     when=m["merged_at"], decided=decided, reason=m["reason"]))
    out.append("")
    out.append(t["reviews"].format(n=len(access["reviews"])))
    for v in access["reviews"]:
        other = "" if v["left"]["own"] and v["right"]["own"] else t["other"]
        decided = t["decided"].format(who=v["decided_by"], when=v["decided_at"]) if v["decided_by"] else ""
        out.append(t["review"].format(id=v["review_id"], other=other, status=v["status"], p=v["probability"],
                                      decided=decided))
    out.append("")
    disclosed = access.get("disclosures", [])
    out.append(t["disclosed"].format(n=len(disclosed)))
    for d in disclosed:
        out.append(t["disclosure"].format(when=d["disclosed_at"], recipient=d["recipient"], purpose=d["purpose"],
                                          basis=d["legal_basis"]))
    out.append("")
    out.append(t["requests"].format(n=len(access["rights_requests"])))
    for q in access["rights_requests"]:
        what = t["of"].format(attribute=q["attribute"]) if q["attribute"] else ""
        out.append(t["request"].format(when=q["performed_at"], action=q["action"], what=what, who=q["decided_by"])
                   + (f" ({q['reason']})" if q["reason"] else ""))
    out.append("")
    looked = access.get("access_log", [])
    out.append(t["looked"].format(n=len(looked)))
    for a in looked:
        out.append(t["look"].format(when=a["at"], user=a["user_name"], via=a["via"], action=a["action"])
                   + (f" ({a['reason']})" if a["reason"] else ""))
    out.append("")
    return "\n".join(out)
