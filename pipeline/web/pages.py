"""The workbench's pages: overview, reviews, customers, quarantine, rights, users and the access log.

Each page reads through `pipeline.register` and renders a template; each POST is a
domain call (`steward`, `release`, `rights`, `users`) followed by a redirect. Values
are masked (`steward.masked_value`) unless the steward revealed that record (or that
customer's golden record, or that quarantine entry) in this session, within
`REVEAL_MINUTES`; a reveal asks for a reason and writes the access log, as does every
view of a person, decision and export.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time

import sqlalchemy as sa
from flask import (Blueprint, Response, abort, flash, redirect, render_template, request, session, url_for)
from flask_login import current_user, login_required

from pipeline.codes import Reason
from pipeline.register import rights, steward, users
from pipeline.register.access_log import accesses, count_accesses, log_access
from pipeline.register.explain import (FIELD_WORDS, METHOD_WORDS, ExplainError, explain_records, level_in_words,
                                      survivor_of)
from pipeline.register.release import EDITABLE_FIELDS, dismiss_quarantined, release_quarantined
from pipeline.register.steward import SHOWN_FIELDS, StewardError, masked_value
from pipeline.web import charts
from pipeline.web.auth import admin_required, engine, now, steward_required
from schemas.canonical import CHANNELS
from schemas.register import (customer, customer_merge, intake_file, merge_record, quarantine, review_queue, service,
                              source_record, unmerge)

blueprint = Blueprint("pages", __name__)

PAGE_SIZE = 50
REVEAL_MINUTES = 10
REVIEW_KINDS = ("uncertain", "ambiguous", "marketing_doubt", "same_code_different_name", "steward_unmerge")
REVIEW_SORTS = {"probability": "most likely first", "probability_asc": "least likely first",
                "oldest": "oldest first", "newest": "newest first"}
FIELD_LABELS = {"channel": "channel", "source_record_id": "record id", "observed_at": "observed",
                "first_names": "first names", "last_name": "last name", "personal_id": "identity code",
                "birth_date": "birth date", "street_address": "street address", "postal_code": "postal code",
                "city": "city", "phone": "phone", "email": "e-mail", "iban": "bank account", "bic": "BIC",
                "marketing_prohibited": "no marketing", "identity_verified": "identity verified"}
GOLDEN_FIELDS = ("personal_id", "birth_date", "first_names", "last_name", "street_address", "postal_code", "city",
                 "phone", "email", "iban", "bic", "marketing_prohibited", "identity_verified")
_SAFE_NEXT = re.compile(r"^/[A-Za-z0-9/_\-]*$")


def install(app) -> None:
    app.register_blueprint(blueprint)

    @app.context_processor
    def _globals():
        return {"user": current_user, "label": lambda f: FIELD_LABELS.get(f, f.replace("_", " "))}


# --- helpers ------------------------------------------------------------------------------------------

def _reason(field: str = "reason") -> str:
    text = (request.form.get(field) or "").strip()
    if not text:
        abort(400)
    return text[:500]


def _page() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


def _paging(total: int, page: int, size: int = PAGE_SIZE) -> dict:
    first = (page - 1) * size
    shown_to = min(first + size, total)
    return {"total": total, "page": page, "first": first + 1 if total else 0, "last": shown_to,
            "pages": max(1, -(-total // size)), "has_next": shown_to < total, "has_prev": page > 1,
            "offset": first}


def _revealed(kind: str, key: int) -> bool:
    until = (session.get("revealed") or {}).get(f"{kind}:{key}")
    return bool(until) and until > time.time()


def _reveal(kind: str, key: int) -> None:
    shown = {k: v for k, v in (session.get("revealed") or {}).items() if v > time.time()}
    shown[f"{kind}:{key}"] = time.time() + REVEAL_MINUTES * 60
    session["revealed"] = shown


def _shown(field: str, value: object, revealed: bool) -> object:
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if revealed:
        return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value
    return masked_value(field, value)


def _log(**ids) -> None:
    with engine().begin() as connection:
        log_access(connection, user=current_user.name, via="web", **ids)


def _fail(error: Exception, back: str):
    flash(str(error), "error")  # domain errors name ids, kinds and counts, never a value
    return redirect(back)


def _next(default: str) -> str:
    target = request.form.get("next") or ""
    return target if _SAFE_NEXT.match(target) else default


def _day(column, dialect: str):
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")
    return sa.func.substr(column, 1, 10)


# --- overview (stewards and analysts) ---------------------------------------------------------------------

@blueprint.route("/")
@login_required
def home():
    return redirect(url_for("pages.overview"))


@blueprint.route("/overview")
@login_required
def overview():
    today = now()
    dialect = engine().dialect.name
    since = today - dt.timedelta(days=30)
    with engine().connect() as connection:
        reason = review_queue.c.evidence["reason"].as_string()
        open_reviews = connection.execute(sa.select(reason.label("reason"), review_queue.c.created_at)
                                          .where(review_queue.c.status == "open")).all()
        by_reason = connection.execute(sa.select(quarantine.c.reasons, sa.func.count()).where(
            *steward._quarantine_filter(None, False)).group_by(quarantine.c.reasons)
            .order_by(sa.func.count().desc())).all()
        by_channel = connection.execute(sa.select(quarantine.c.channel, sa.func.count()).where(
            *steward._quarantine_filter(None, False)).group_by(quarantine.c.channel)
            .order_by(quarantine.c.channel)).all()
        day = _day(intake_file.c.loaded_at, dialect)
        nights = connection.execute(sa.select(day.label("day"), sa.func.sum(intake_file.c.records_accepted
                                                                            - intake_file.c.records_resent))
                                    .where(intake_file.c.loaded_at >= since).group_by(day).order_by(day)).all()
        created = {night: _created_on(connection, night) for night, _ in nights}
        customers = _live_customers(connection)
    ages = [(today - created_at).total_seconds() / 86400 for _, created_at in open_reviews]
    buckets = [("under 1 day", sum(a < 1 for a in ages)), ("1-7 days", sum(1 <= a < 7 for a in ages)),
               ("7-30 days", sum(7 <= a < 30 for a in ages)), ("over 30 days", sum(a >= 30 for a in ages))]
    kinds: dict[str, int] = {}
    for kind, _ in open_reviews:
        kinds[kind or "unknown"] = kinds.get(kind or "unknown", 0) + 1
    per_night = []
    for night, accepted in nights:
        accepted = int(accepted or 0)
        new = int(created.get(night, 0))
        per_night.append((night, accepted, new, (1 - new / accepted) if accepted else None))
    return render_template(
        "overview.html", customers=customers, queue=len(open_reviews),
        oldest=max(ages) if ages else None, age_chart=charts.bars(buckets),
        kind_chart=charts.bars(sorted(kinds.items(), key=lambda kv: -kv[1])),
        reason_chart=charts.bars([(r, int(n)) for r, n in by_reason]),
        channel_chart=charts.bars([(c, int(n)) for c, n in by_channel]),
        new_chart=charts.columns([(n[0][5:], n[2]) for n in per_night]),
        rate_chart=charts.columns([(n[0][5:], round(100 * n[3]) if n[3] is not None else 0) for n in per_night],
                                  unit="%"),
        per_night=per_night)


def _created_on(connection: sa.Connection, night: str) -> int:
    """New customers on one UTC day: a range count on `ix_customer_created_at` (migration 0013)."""
    start = dt.datetime.fromisoformat(night).replace(tzinfo=dt.timezone.utc)
    return int(connection.execute(sa.select(sa.func.count()).select_from(customer).where(
        customer.c.created_at >= start, customer.c.created_at < start + dt.timedelta(days=1))).scalar_one())


def _live_customers(connection: sa.Connection) -> int:
    """Customers neither merged nor erased: all, less the few merged or erased (each counted on its
    partial index) - not a scan of the customer table for two nulls."""
    count = sa.select(sa.func.count()).select_from(customer)
    merged, erased = customer.c.merged_into.is_not(None), customer.c.erased_at.is_not(None)
    total, gone_merged, gone_erased, both = (int(connection.execute(query).scalar_one()) for query in (
        count, count.where(merged), count.where(erased), count.where(merged, erased)))
    return total - gone_merged - gone_erased + both


# --- reviews ------------------------------------------------------------------------------------------------

@blueprint.route("/reviews")
@steward_required
def reviews():
    kind = request.args.get("kind") or None
    status = request.args.get("status") or "open"
    sort = request.args.get("sort") or "probability"
    if kind not in (None, *REVIEW_KINDS) or status not in steward.REVIEW_LIST_STATUSES or sort not in REVIEW_SORTS:
        abort(400)
    page = _page()
    reason = review_queue.c.evidence["reason"].as_string()
    deferred = steward.last_deferral()
    where = steward.review_status_filter(status, deferred) + ([reason == kind] if kind else [])
    order = {"probability": (review_queue.c.probability.desc(), review_queue.c.review_id),
             "probability_asc": (review_queue.c.probability, review_queue.c.review_id),
             "oldest": (review_queue.c.created_at, review_queue.c.review_id),
             "newest": (review_queue.c.created_at.desc(), review_queue.c.review_id.desc())}[sort]
    with engine().connect() as connection:
        total = connection.execute(steward._reviews_with_deferral(sa.func.count(), deferred=deferred)
                                   .where(*where)).scalar_one()
        paging = _paging(total, page)
        rows = connection.execute(steward._reviews_with_deferral(
            review_queue.c.review_id, review_queue.c.probability, reason.label("kind"), review_queue.c.status,
            review_queue.c.left_customer_id, review_queue.c.right_customer_id, review_queue.c.created_at,
            review_queue.c.decided_by, deferred.c.deferred_by, deferred.c.deferred_at, deferred.c.defer_reason,
            deferred=deferred).where(*where).order_by(*order).limit(PAGE_SIZE).offset(paging["offset"])
        ).mappings().all()
    today = now()
    items = [{**r, "age_days": (today - r["created_at"]).days,
              "deferred": steward._deferral_view(r) if r["status"] == "open" else None} for r in rows]
    return render_template("reviews.html", items=items, paging=paging, kind=kind, status=status, sort=sort,
                           kinds=REVIEW_KINDS, sorts=REVIEW_SORTS, statuses=steward.REVIEW_LIST_STATUSES)


def _comparisons(evidence: dict) -> list[dict]:
    """The review's evidence, each field in words with its weight (bars are drawn from the weights)."""
    out = []
    comparisons = (evidence or {}).get("comparisons") or {}
    if not isinstance(comparisons, dict):
        return out
    for name, value in comparisons.items():
        if isinstance(value, list) and len(value) == 2:
            out.append({"field": FIELD_WORDS.get(name, name), "level": level_in_words(str(value[0])),
                        "weight": float(value[1])})
        else:
            out.append({"field": FIELD_WORDS.get(name, name.replace("_", " ")), "level": str(value), "weight": None})
    return out


def _pair_evidence(strongest) -> dict:
    """A record's strongest pair (`explain.PairWeights`) as the evidence partial shows it."""
    comparisons = [{"field": f.field, "level": f.level, "weight": f.weight} for f in strongest.fields]
    return {"other": strongest.other, "prior": strongest.prior, "match_weight": strongest.match_weight,
            "probability": strongest.probability, "model": _model().version, "comparisons": comparisons,
            "bars": charts.weights(comparisons)}


def _model():
    from pipeline.matching.model import MatchModel

    return MatchModel.load()  # read once and cached


_SCORER_LOCK = threading.Lock()
_SCORERS: dict = {}


def _scorer():
    """The process's scorer of the current model (Splink's set-up costs about 0.3 s: once, not per
    page). Called under `_SCORER_LOCK`."""
    from pipeline.matching.score import Scorer

    model = _model()
    if model.version not in _SCORERS:
        for stale in _SCORERS.values():
            stale.close()
        _SCORERS.clear()
        _SCORERS[model.version] = Scorer(model)
    return _SCORERS[model.version]


ACCEPT_MEANS = {
    "same_code_different_name": (
        "These two records already belong to one customer: they carry the same valid identity code, and the code "
        "is the identity (rule 4). Only the names differ clearly. Accepting confirms they are one person (a changed "
        "name, a typing error): nothing moves. Rejecting cannot split them while the code is the same: if the code "
        "itself is wrong, correct it through rectification or ask the channel to."),
    "uncertain": "Accepting merges the two customers (the older id survives; the other redirects to it). "
                 "Rejecting keeps them apart for good: the pair is never proposed again.",
    "marketing_doubt": "The match is weak, but one of the records says the person does not want direct marketing, "
                       "so the other customer is kept off the marketing list until you decide. Accepting merges "
                       "the two customers (the prohibition then follows the latest statement); rejecting keeps them "
                       "apart for good and lets the other customer back on the list.",
    "ambiguous": "The record fits two people about equally well. Accepting links it to this one customer; "
                 "rejecting keeps them apart for good.",
}


@blueprint.route("/reviews/<int:review_id>")
@steward_required
def review(review_id: int):
    with engine().connect() as connection:
        try:
            clear = steward.show_review(connection, review_id, unmask=True)
        except StewardError:
            abort(404)
        owners = steward.review_customers(connection, review_id)
    sides = []
    for side in ("left", "right"):
        record = clear[side] or {}
        pk = None
        with engine().connect() as connection:
            if record:
                pk = connection.execute(sa.select(source_record.c.source_record_pk).where(
                    source_record.c.channel == record["channel"],
                    source_record.c.source_record_id == record["source_record_id"])).scalar()
        sides.append({"pk": pk, "record": record, "revealed": pk is not None and _revealed("record", pk)})
    rows = []
    for field in SHOWN_FIELDS:
        values = [s["record"].get(field) for s in sides]
        differs = values[0] != values[1] and field not in ("channel", "source_record_id", "observed_at")
        rows.append({"field": field, "differs": differs and any(v is not None for v in values),
                     "cells": [_shown(field, v, s["revealed"] or field in ("channel", "source_record_id",
                                                                            "observed_at", "postal_code"))
                                for v, s in zip(values, sides)]})
    for customer_id in owners or [None]:
        _log(action="view_review", review_id=review_id, customer_id=customer_id)
    evidence = clear["evidence"] or {}
    kind = evidence.get("reason")
    comparisons = _comparisons(evidence)
    return render_template("review.html", review=clear, kind=kind, sides=sides, rows=rows,
                           comparisons=comparisons, bars=charts.weights(comparisons),
                           accept_means=ACCEPT_MEANS.get(kind or "", ACCEPT_MEANS["uncertain"]), owners=owners)


@blueprint.route("/reviews/<int:review_id>/decide", methods=["POST"])
@steward_required
def decide(review_id: int):
    action = request.form.get("action")
    reason = _reason()
    back = url_for("pages.review", review_id=review_id)
    try:
        if action == "defer":
            steward.defer_review(engine(), review_id, by=current_user.name, reason=reason)
            flash(f"review {review_id} deferred: left open for later")
            return redirect(url_for("pages.reviews"))
        if action not in ("accept", "reject"):
            abort(400)
        done = steward.decide_review(engine(), review_id, accept=action == "accept", by=current_user.name,
                                     reason=reason, via="web")
    except StewardError as error:
        return _fail(error, back)
    flash(f"review {review_id} {done.status}: {done.resolution.merges} merge(s)")
    return redirect(back)


@blueprint.route("/records/<int:pk>/reveal", methods=["POST"])
@steward_required
def reveal_record(pk: int):
    reason = _reason()
    with engine().connect() as connection:
        owner = connection.execute(sa.select(source_record.c.customer_id)
                                   .where(source_record.c.source_record_pk == pk)).first()
    if owner is None:
        abort(404)
    try:
        _log(action="reveal", source_record_pk=pk, customer_id=owner[0], reason=reason)
    except StewardError as error:
        return _fail(error, _next("/"))
    _reveal("record", pk)
    return redirect(_next(url_for("pages.customer_page", customer_id=owner[0])))


# --- customers ----------------------------------------------------------------------------------------------

@blueprint.route("/customers")
@steward_required
def customer_lookup():
    customer_id = request.args.get("id", type=int)
    if customer_id is None:
        abort(404)
    return redirect(url_for("pages.customer_page", customer_id=customer_id))


@blueprint.route("/customers/<int:customer_id>")
@steward_required
def customer_page(customer_id: int):
    with engine().connect() as connection:
        try:
            survivor, chain = survivor_of(connection, customer_id)
        except ExplainError:
            abort(404)
        if survivor != customer_id:
            return redirect(url_for("pages.customer_page", customer_id=survivor))
        golden = connection.execute(sa.select(customer).where(customer.c.customer_id == customer_id)).mappings().one()
        provenance = {r["attribute"]: r for r in connection.execute(sa.text(
            "SELECT p.attribute, p.source_record_pk, p.channel, p.observed_at, s.source_record_id "
            "FROM golden_value_provenance p JOIN source_record s ON s.source_record_pk = p.source_record_pk "
            "WHERE p.customer_id = :c"), {"c": customer_id}).mappings().all()}
        records = connection.execute(
            sa.select(source_record.c.source_record_pk, source_record.c.match_method,
                      source_record.c.match_probability, source_record.c.product, source_record.c.metering_point,
                      source_record.c.quality_flags, *[source_record.c[f] for f in SHOWN_FIELDS])
            .where(source_record.c.customer_id == customer_id)
            .order_by(source_record.c.observed_at, source_record.c.source_record_pk)).mappings().all()
        services = connection.execute(sa.select(service).where(service.c.customer_id == customer_id)
                                      .order_by(service.c.product)).mappings().all()
        merges = connection.execute(
            sa.select(customer_merge, sa.select(sa.func.count()).where(merge_record.c.merge_id == customer_merge.c.merge_id)
                      .scalar_subquery().label("records"))
            .where(customer_merge.c.surviving_customer_id == customer_id)
            .order_by(customer_merge.c.merged_at)).mappings().all()
        unmerges = connection.execute(sa.select(unmerge).where(sa.or_(
            unmerge.c.customer_id == customer_id, unmerge.c.split_customer_id == customer_id))
            .order_by(unmerge.c.decided_at)).mappings().all()
        left, right = source_record.alias("l"), source_record.alias("r")
        reviews = connection.execute(
            sa.select(review_queue.c.review_id, review_queue.c.probability,
                      review_queue.c.evidence["reason"].as_string().label("kind"),
                      left.c.customer_id.label("left_id"), right.c.customer_id.label("right_id"))
            .select_from(review_queue.join(left, left.c.source_record_pk == review_queue.c.left_source_record_pk)
                         .join(right, right.c.source_record_pk == review_queue.c.right_source_record_pk))
            .where(review_queue.c.status == "open",
                   sa.or_(review_queue.c.left_customer_id == customer_id,
                          review_queue.c.right_customer_id == customer_id,
                          left.c.customer_id == customer_id, right.c.customer_id == customer_id))
            .order_by(review_queue.c.review_id)).mappings().all() if records else []
        with _SCORER_LOCK:  # one DuckDB connection: one request at a time
            explained = {e.record: e for e in explain_records(connection, customer_id, scorer=_scorer())}
    _log(action="view_customer", customer_id=customer_id)
    golden_revealed = _revealed("customer", customer_id)
    golden_rows = []
    for field in GOLDEN_FIELDS:
        unit_field = field
        source = provenance.get(unit_field)
        golden_rows.append({"field": field, "value": _shown(field, golden[field], golden_revealed or field == "postal_code"),
                            "source": source})
    shown_records = []
    for r in records:
        revealed = _revealed("record", r["source_record_pk"])
        why = explained.get(f"{r['channel']}:{r['source_record_id']}")
        shown_records.append({
            "explained": why, "evidence": _pair_evidence(why.strongest) if why and why.strongest else None,
            "pk": r["source_record_pk"], "label": f"{r['channel']}:{r['source_record_id']}",
            "observed_at": r["observed_at"], "method": r["match_method"],
            "because": METHOD_WORDS.get(r["match_method"] or "", "not resolved yet"),
            "probability": r["match_probability"], "product": r["product"], "flags": r["quality_flags"],
            "revealed": revealed,
            "fields": [(f, _shown(f, r[f], revealed or f == "postal_code")) for f in SHOWN_FIELDS
                       if f not in ("channel", "source_record_id", "observed_at") and r[f] is not None]})
    return render_template("customer.html", golden=golden, golden_rows=golden_rows, golden_revealed=golden_revealed,
                           records=shown_records, services=services, merges=merges, unmerges=unmerges,
                           reviews=reviews, chain=chain, customer_id=customer_id)


@blueprint.route("/customers/<int:customer_id>/reveal", methods=["POST"])
@steward_required
def reveal_customer(customer_id: int):
    reason = _reason()
    try:
        _log(action="reveal", customer_id=customer_id, reason=reason)
    except StewardError as error:
        return _fail(error, url_for("pages.customer_page", customer_id=customer_id))
    _reveal("customer", customer_id)
    return redirect(url_for("pages.customer_page", customer_id=customer_id))


@blueprint.route("/customers/<int:customer_id>/unmerge", methods=["POST"])
@steward_required
def unmerge_customer(customer_id: int):
    reason = _reason()
    back = url_for("pages.customer_page", customer_id=customer_id)
    try:
        if request.form.get("merged_customer_id"):
            done = steward.unmerge(engine(), customer_id, merged_customer_id=int(request.form["merged_customer_id"]),
                                   by=current_user.name, reason=reason, via="web")
        else:
            done = steward.unmerge(engine(), customer_id, record_pks=[int(request.form["record_pk"])],
                                   by=current_user.name, reason=reason, via="web")
    except (KeyError, ValueError):
        abort(400)
    except StewardError as error:
        return _fail(error, back)
    what = "its old id back" if done.restored else "a new customer"
    flash(f"{done.records} record(s) split out of customer {customer_id} into customer "
          f"{done.split_customer_id} ({what})")
    return redirect(back)


# --- people's rights ----------------------------------------------------------------------------------------

@blueprint.route("/customers/<int:customer_id>/rights")
@steward_required
def rights_page(customer_id: int):
    with engine().connect() as connection:
        try:
            survivor, _ = survivor_of(connection, customer_id)
        except ExplainError:
            abort(404)
    if survivor != customer_id:
        return redirect(url_for("pages.rights_page", customer_id=survivor))
    return render_template("rights.html", customer_id=customer_id, attributes=rights.RECTIFIABLE,
                           languages=rights.REPORT_LANGUAGES)


@blueprint.route("/find", methods=["GET", "POST"])
@steward_required
def find_person():
    """A person for a rights request, by personal identity code: POSTed (never in an address),
    validated and normalised by `pipeline.normalise.hetu` (through `rights.subject`), never logged
    or shown back; the customers found are listed masked, and the look-up is logged (ids only)."""
    from pipeline.register.rights.reasons import check_reason
    from pipeline.register.rights.subject import find_subject

    found = None
    if request.method == "POST":
        reason = _reason()
        entered = request.form.get("personal_id") or ""
        try:
            check_reason(reason, [entered])
            with engine().connect() as connection:
                subject = find_subject(connection, personal_id=entered, today=now().date())
                found = _found(connection, subject.customer_ids)
            with engine().begin() as connection:
                for customer_id in [c["customer_id"] for c in found] or [None]:
                    log_access(connection, user=current_user.name, via="web", action="find_by_code",
                               customer_id=customer_id, reason=reason)
        except StewardError as error:  # an invalid code: the kind of fault, never the value
            flash(str(error), "error")
            found = None
    response = Response(render_template("find.html", found=found))
    response.headers["Cache-Control"] = "no-store"
    return response


def _found(connection: sa.Connection, customer_ids) -> list[dict]:
    """The customers found, masked: id, names, birth year, postal code, how many records, erased or not."""
    if not customer_ids:
        return []
    records = dict(connection.execute(sa.select(source_record.c.customer_id, sa.func.count())
                                      .where(source_record.c.customer_id.in_(list(customer_ids)))
                                      .group_by(source_record.c.customer_id)).all())
    rows = connection.execute(sa.select(customer.c.customer_id, customer.c.first_names, customer.c.last_name,
                                        customer.c.birth_date, customer.c.postal_code, customer.c.erased_at)
                              .where(customer.c.customer_id.in_(list(customer_ids)))
                              .order_by(customer.c.customer_id)).mappings().all()
    return [{"customer_id": r["customer_id"],
             "name": " ".join(str(masked_value(f, r[f])) for f in ("first_names", "last_name") if r[f]),
             "birth_date": masked_value("birth_date", r["birth_date"]), "postal_code": r["postal_code"],
             "records": int(records.get(r["customer_id"], 0)), "erased": r["erased_at"] is not None}
            for r in rows]


@blueprint.route("/customers/<int:customer_id>/access", methods=["POST"])
@steward_required
def subject_access(customer_id: int):
    reason = _reason()
    lang = request.form.get("lang", "en")
    kind = request.form.get("format", "report")
    if lang not in rights.REPORT_LANGUAGES or kind not in ("report", "json"):
        abort(400)
    try:
        answer = rights.subject_access(engine(), customer_id=customer_id, by=current_user.name, reason=reason)
        _log(action="export", customer_id=customer_id, reason=reason)
    except StewardError as error:
        return _fail(error, url_for("pages.rights_page", customer_id=customer_id))
    if kind == "json":
        body, mimetype, suffix = json.dumps(answer, indent=2, ensure_ascii=False), "application/json", "json"
    else:
        body, mimetype, suffix = rights.render_report(answer, lang), "text/plain; charset=utf-8", f"{lang}.txt"
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f"attachment; filename=subject-access-{customer_id}.{suffix}",
        "Cache-Control": "no-store"})


@blueprint.route("/customers/<int:customer_id>/rectify", methods=["POST"])
@steward_required
def rectify(customer_id: int):
    reason = _reason()
    attribute = request.form.get("attribute", "")
    value = request.form.get("value", "")
    back = url_for("pages.rights_page", customer_id=customer_id)
    try:
        done = rights.rectify(engine(), customer_id, attribute, value, reason=reason, by=current_user.name)
        _log(action="rectify", customer_id=done.customer_id, reason=reason)
    except StewardError as error:
        return _fail(error, back)
    flash(f"{done.attribute} rectified on customer {done.customer_id} and {done.source_records_updated} "
          f"source record(s)")
    return redirect(url_for("pages.customer_page", customer_id=done.customer_id))


@blueprint.route("/customers/<int:customer_id>/erase", methods=["POST"])
@steward_required
def erase(customer_id: int):
    """First the dry run (what would go, counts only); erasing needs its explicit confirmation."""
    from pipeline.cli_render import erasure_lines

    reason = _reason()
    back = url_for("pages.rights_page", customer_id=customer_id)
    confirmed = request.form.get("confirm") == "erase" and request.form.get("step") == "confirm"
    try:
        done = rights.erase(engine(), customer_id=customer_id, reason=reason, by=current_user.name,
                            dry_run=not confirmed)
        _log(action="erase" if confirmed else "erase_dry_run", customer_id=customer_id, reason=reason)
    except StewardError as error:
        return _fail(error, back)
    return render_template("erase.html", customer_id=customer_id, reason=reason, confirmed=confirmed,
                           lines=erasure_lines(done, dry_run=not confirmed))


# --- quarantine ---------------------------------------------------------------------------------------------

@blueprint.route("/quarantine")
@steward_required
def quarantine_list():
    channel = request.args.get("channel") or None
    reason = request.args.get("reason") or None
    file_id = request.args.get("file", type=int)
    if channel not in (None, *CHANNELS) or reason not in (None, *(r.value for r in Reason)):
        abort(400)
    page = _page()
    with engine().connect() as connection:
        total = steward.count_quarantine(connection, reason, channel=channel, intake_file_id=file_id)
        paging = _paging(total, page)
        items = steward.list_quarantine(connection, reason, PAGE_SIZE, offset=paging["offset"], channel=channel,
                                        intake_file_id=file_id)
        open_only = steward._quarantine_filter(None, False)
        channels = connection.execute(sa.select(quarantine.c.channel, sa.func.count()).where(*open_only)
                                      .group_by(quarantine.c.channel).order_by(quarantine.c.channel)).all()
        files = connection.execute(sa.select(quarantine.c.intake_file_id, intake_file.c.channel,
                                             intake_file.c.file_name, sa.func.count())
                                   .join(intake_file, intake_file.c.intake_file_id == quarantine.c.intake_file_id)
                                   .where(*open_only)
                                   .group_by(quarantine.c.intake_file_id, intake_file.c.channel, intake_file.c.file_name)
                                   .order_by(quarantine.c.intake_file_id.desc()).limit(30)).all()
    return render_template("quarantine.html", items=items, paging=paging, channel=channel, reason=reason,
                           file_id=file_id, channels=channels, files=files, reasons=[r.value for r in Reason])


@blueprint.route("/quarantine/<int:quarantine_id>")
@steward_required
def quarantine_entry(quarantine_id: int):
    revealed = _revealed("quarantine", quarantine_id)
    with engine().connect() as connection:
        try:
            entry = steward.show_quarantine(connection, quarantine_id, unmask=revealed)
        except StewardError:
            abort(404)
    _log(action="view_quarantine", quarantine_id=quarantine_id)
    raw = entry["raw_values"] or {}
    fields = [(f, raw.get(f) if revealed else None, raw.get(f) is not None) for f in EDITABLE_FIELDS
              if f != "source_record_id"]
    releasable = (entry["decision"] is None and entry["resolved_at"] is None and not entry["raw_purged"]
                  and entry["raw_values"] is not None)
    return render_template("quarantine_entry.html", entry=entry, revealed=revealed, fields=fields,
                           releasable=releasable)


@blueprint.route("/quarantine/<int:quarantine_id>/reveal", methods=["POST"])
@steward_required
def reveal_quarantine(quarantine_id: int):
    reason = _reason()
    try:
        _log(action="reveal", quarantine_id=quarantine_id, reason=reason)
    except StewardError as error:
        return _fail(error, url_for("pages.quarantine_entry", quarantine_id=quarantine_id))
    _reveal("quarantine", quarantine_id)
    return redirect(url_for("pages.quarantine_entry", quarantine_id=quarantine_id))


@blueprint.route("/quarantine/<int:quarantine_id>/release", methods=["POST"])
@steward_required
def release(quarantine_id: int):
    reason = _reason()
    corrections = {}
    for field in EDITABLE_FIELDS:
        given = request.form.get(f"field_{field}")
        if given is None or given == "":
            continue  # unchanged
        corrections[field] = None if given.strip() == "-" else given
    back = url_for("pages.quarantine_entry", quarantine_id=quarantine_id)
    try:
        done = release_quarantined(engine(), quarantine_id, corrections, by=current_user.name, reason=reason)
    except StewardError as error:
        return _fail(error, back)
    flash(f"quarantine entry {quarantine_id} released into customer {done.customer_id} "
          f"(corrected: {', '.join(done.corrected_fields) or 'nothing'})")
    return redirect(url_for("pages.customer_page", customer_id=done.customer_id))


@blueprint.route("/quarantine/<int:quarantine_id>/dismiss", methods=["POST"])
@steward_required
def dismiss(quarantine_id: int):
    reason = _reason()
    try:
        dismiss_quarantined(engine(), quarantine_id, by=current_user.name, reason=reason)
    except StewardError as error:
        return _fail(error, url_for("pages.quarantine_entry", quarantine_id=quarantine_id))
    flash(f"quarantine entry {quarantine_id} dismissed")
    return redirect(url_for("pages.quarantine_list"))


# --- admin: users and the access log -------------------------------------------------------------------------

@blueprint.route("/users", methods=["GET", "POST"])
@admin_required
def users_page():
    if request.method == "POST":
        password = request.form.get("password", "")
        if password != request.form.get("again", ""):
            flash("the two passwords differ", "error")
        else:
            try:
                made = users.add_user(engine(), request.form.get("name", ""), request.form.get("role", ""), password)
                flash(f"user {made.name} added ({made.role})")
            except users.UserError as error:
                flash(str(error), "error")
        return redirect(url_for("pages.users_page"))
    with engine().connect() as connection:
        listed = users.list_users(connection)
    return render_template("users.html", users=listed, roles=("steward", "analyst", "admin"))


@blueprint.route("/users/<name>/disable", methods=["POST"])
@admin_required
def disable_user(name: str):
    try:
        users.disable_user(engine(), name)
        flash(f"user {name} disabled")
    except users.UserError as error:
        flash(str(error), "error")
    return redirect(url_for("pages.users_page"))


@blueprint.route("/access-log")
@admin_required
def access_log_page():
    customer_id = request.args.get("customer", type=int)
    user_name = request.args.get("user") or None
    page = _page()
    with engine().connect() as connection:
        total = count_accesses(connection, customer_id=customer_id, user=user_name)
        paging = _paging(total, page)
        rows = accesses(connection, customer_id=customer_id, user=user_name, limit=PAGE_SIZE, offset=paging["offset"])
    return render_template("access_log.html", rows=rows, paging=paging, customer_id=customer_id, user_name=user_name)
