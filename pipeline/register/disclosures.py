"""The disclosure log: each time the register gives personal data to someone, a row.

A marketing extract published for the marketing partner, a subject access answered
for the person: `record_disclosure` writes who received it, why, on what legal
basis, when and by whom, how many customers it named and which, with details
(products, rows per product, the files' SHA-256). Never a personal value: the
customers are ids, kept as one compressed list per disclosure (`encode_ids`), since a
nightly extract names hundreds of thousands of them. `disclosures_of` answers a
subject access's "to whom was my data given"; `list_disclosures` and
`disclosure_detail` serve the command line.
"""

from __future__ import annotations

import datetime as dt
import os
import zlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from schemas.register import DISCLOSURE_KINDS, disclosure

__all__ = ["DisclosureTerms", "decode_ids", "disclosure_detail", "disclosures_of", "encode_ids",
           "list_disclosures", "marketing_terms", "record_disclosure"]


@dataclass(frozen=True)
class DisclosureTerms:
    """Who receives a kind of disclosure, why, and on what legal basis (the register
    description names them; the operator configures the marketing partner)."""

    recipient: str
    purpose: str
    legal_basis: str


SUBJECT_ACCESS_TERMS = DisclosureTerms(
    recipient="the data subject",
    purpose="the person's right of access",
    legal_basis="GDPR art. 15 (right of access by the data subject)")
ERASURE_REPORT_TERMS = DisclosureTerms(
    recipient="the data subject",
    purpose="confirming an erasure to the person who asked for it",
    legal_basis="GDPR art. 12(3) and 17 (right to erasure)")
DEFAULT_MARKETING_TERMS = DisclosureTerms(
    recipient="the utility's direct-marketing partner",
    purpose="direct marketing of the utility's own products and services",
    legal_basis="GDPR art. 6(1)(f) (legitimate interest); the person may object at any time (art. 21(2))")


def marketing_terms() -> DisclosureTerms:
    """The marketing extract's recipient, purpose and legal basis: the defaults, each
    replaced by `REGISTER_MARKETING_RECIPIENT`, `..._PURPOSE`, `..._LEGAL_BASIS` when set."""
    default = DEFAULT_MARKETING_TERMS
    return DisclosureTerms(
        recipient=os.environ.get("REGISTER_MARKETING_RECIPIENT") or default.recipient,
        purpose=os.environ.get("REGISTER_MARKETING_PURPOSE") or default.purpose,
        legal_basis=os.environ.get("REGISTER_MARKETING_LEGAL_BASIS") or default.legal_basis)


def encode_ids(customer_ids: Iterable[int]) -> bytes:
    """Sorted, distinct ids as zlib-compressed deltas of int64: a few hundred kB for 400,000.

    >>> decode_ids(encode_ids([30, 10, 20, 10]))
    [10, 20, 30]
    >>> decode_ids(encode_ids([]))
    []
    """
    ids = np.unique(np.fromiter((int(i) for i in customer_ids), dtype=np.int64))
    deltas = np.diff(ids, prepend=np.int64(0))
    return zlib.compress(deltas.astype("<i8").tobytes(), 6)


def _decoded(blob: bytes) -> np.ndarray:
    return np.frombuffer(zlib.decompress(blob), dtype="<i8").cumsum()


def decode_ids(blob: bytes) -> list[int]:
    """The ids `encode_ids` encoded, ascending."""
    return _decoded(blob).tolist()


def record_disclosure(connection: sa.Connection, *, kind: str, terms: DisclosureTerms,
                      customer_ids: Collection[int], details: dict, by: str, now: dt.datetime) -> int:
    """Write one disclosure; returns its id. `details` must hold counts, products and
    checksums only (the caller's promise: it goes to the log as it is)."""
    if kind not in DISCLOSURE_KINDS:
        raise ValueError(f"unknown disclosure kind: {kind}")
    ids = {int(i) for i in customer_ids}
    return int(connection.execute(disclosure.insert().values(
        kind=kind, recipient=terms.recipient, purpose=terms.purpose, legal_basis=terms.legal_basis,
        disclosed_at=now, disclosed_by=by, customer_count=len(ids), customer_ids=encode_ids(ids),
        details=details).returning(disclosure.c.disclosure_id)).scalar_one())


_SUMMARY = (disclosure.c.disclosure_id, disclosure.c.kind, disclosure.c.recipient, disclosure.c.purpose,
            disclosure.c.legal_basis, disclosure.c.disclosed_at, disclosure.c.disclosed_by,
            disclosure.c.customer_count)


def _row(row) -> dict:
    out = dict(row._mapping)
    out["disclosed_at"] = out["disclosed_at"].isoformat()
    return out


def disclosures_of(connection: sa.Connection, customer_ids: Collection[int]) -> list[dict]:
    """Every disclosure that named one of `customer_ids`, oldest first (without the id lists)."""
    wanted = {int(i) for i in customer_ids}
    if not wanted:
        return []
    found = []
    rows = connection.execute(sa.select(*_SUMMARY, disclosure.c.customer_ids)
                              .order_by(disclosure.c.disclosed_at, disclosure.c.disclosure_id))
    probe = np.array(sorted(wanted), dtype=np.int64)
    for row in rows:
        if np.isin(probe, _decoded(row.customer_ids), assume_unique=True).any():
            found.append({k: v for k, v in _row(row).items() if k != "customer_ids"})
    return found


def list_disclosures(connection: sa.Connection, *, limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
    """A page of the log, newest first, and the number of disclosures in all."""
    total = int(connection.execute(sa.select(sa.func.count()).select_from(disclosure)).scalar_one())
    rows = connection.execute(sa.select(*_SUMMARY).order_by(disclosure.c.disclosed_at.desc(),
                                                            disclosure.c.disclosure_id.desc())
                              .limit(limit).offset(offset))
    return [_row(r) for r in rows], total


def disclosure_detail(connection: sa.Connection, disclosure_id: int) -> dict | None:
    """One disclosure with its details (products, rows, checksums); the ids stay in the log."""
    row = connection.execute(sa.select(*_SUMMARY, disclosure.c.details)
                             .where(disclosure.c.disclosure_id == disclosure_id)).first()
    return _row(row) if row is not None else None
