"""Rectification: one attribute of a person corrected, so that it stays corrected.

`rectify` normalises the new value as the intake would (`normalised_value`) and
writes it on the golden row *and* on the source record its provenance names, so
the next re-resolution picks the corrected value again; that record's blocking
keys are recomputed, and its content hash as received is kept so an identical
re-send stays a re-send and does not undo the correction. An erased customer
can have only the billing identity rectified. The personal identity code is
not rectified (a change of identity goes through review).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from pipeline.matching.blocking import held_keys
from pipeline.matching.features import match_features
from pipeline.matching.model import BLOCKING_KEYS, DOUBT_BLOCKING_KEYS
from pipeline.matching.survivorship import ranked_record_keys
from pipeline.normalise import address, email, iban, names, phone
from pipeline.normalise.errors import NormaliseError
from pipeline.register.locks import register_transaction
from pipeline.register.resolve import read_records_by_key
from pipeline.register.rights.erasure import BILLING_IDENTITY, delete_match_keys
from pipeline.register.rights.reasons import check_reason, subject_values
from pipeline.register.rights.request import RightsError, record_request, request_time, required
from pipeline.register.rights.subject import find_subject
from pipeline.register.versions import content_hashes
from schemas.register import PROVENANCE_UNITS, customer, golden_provenance, match_key, source_record

__all__ = ["RECTIFIABLE", "Rectification", "normalised_value", "rectify"]

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


@dataclass
class Rectification:
    """What `rectify` changed: ids and counts, never the value."""

    customer_id: int
    attribute: str
    source_records_updated: int
    match_keys_replaced: int
    request_id: int


def _ranked_records(connection: sa.Connection, ids: Collection[int], *, verified_first: bool) -> list[int]:
    """The subject's records, best first as survivorship ranks them (rule 6, `ranked_record_keys`)."""
    ranked = sa.select(source_record.c.source_record_pk.label("record_key"), source_record.c.channel,
                       source_record.c.source_record_id, source_record.c.observed_at,
                       source_record.c.identity_verified).where(source_record.c.customer_id.in_(sorted(ids)))
    records = pd.DataFrame(connection.execute(ranked).all(), columns=list(ranked.selected_columns.keys()))
    return ranked_record_keys(records, verified_first=verified_first)


def _replace_match_keys(connection: sa.Connection, pks: Collection[int]) -> int:
    """Recompute the blocking keys of records whose values changed; returns the keys written."""
    delete_match_keys(connection, pks)
    records = read_records_by_key(connection, pks)
    keys = held_keys(match_features(records), BLOCKING_KEYS, DOUBT_BLOCKING_KEYS)
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
    record of the person takes it (survivorship's own ranking: the names unit ranks
    identity-verified records first), so survivorship picks it at the next re-resolution.
    """
    reason = required(reason, "a reason (--reason)")
    by = required(by, "the steward's name (--by)")
    now = request_time(now)
    values = normalised_value(attribute, value, now.date())
    check_reason(reason, [value, *values.values()])
    with register_transaction(engine) as connection:
        subject = find_subject(connection, customer_id=customer_id, today=now.date())
        check_reason(reason, subject_values(connection, subject))
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
        request_id = record_request(connection, subject.customer_ids, action="rectification", outcome=outcome,
                                    by=by, now=now, reason=reason, attribute=attribute)[0]
    return Rectification(survivor, attribute, int(pk is not None), keys, request_id)

