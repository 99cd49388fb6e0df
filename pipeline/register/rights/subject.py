"""The subject of a rights request: one person as the register holds them.

Asked by customer id, the subject is the surviving customer the id resolves to
(through `merged_into`) with every customer merged into it; asked by personal
identity code, every surviving customer that holds the code or owns a record
carrying it (an erased customer's billing row and a later new customer of the
same person are both the person's). Access, rectification and erasure all start
here, and find the subject's quarantine entries and merges the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field

import sqlalchemy as sa

from pipeline.normalise import hetu
from pipeline.normalise.errors import NormaliseError
from pipeline.register.rights.request import RightsError
from schemas.register import customer, customer_merge, quarantine, source_record

__all__ = ["Subject", "find_subject", "merges_touching", "quarantine_entry_ids", "valid_code"]


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


def quarantine_entry_ids(connection: sa.Connection, subject: Subject) -> list[int]:
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


def merges_touching(ids: Collection[int]):
    """A condition on `customer_merge`: merges of or into one of `ids` (false when there are none)."""
    if not ids:
        return sa.false()
    return sa.or_(customer_merge.c.merged_customer_id.in_(sorted(ids)),
                  customer_merge.c.surviving_customer_id.in_(sorted(ids)))

