"""The direct-marketing extract for the marketing partner, and its safety checks.

The register's description allows direct marketing of the company's products
to those who have not prohibited it (docs/register_rules.md); the view `marketing_contacts`
is that disclosure list. `write_extract` turns it into one CSV file per product:

    <extract dir>/<YYYY-MM-DD>/marketing_<product>.csv

- UTF-8 with a header row, RFC 4180 (comma, CRLF, every field quoted); the
  columns of the view except `product` (`EXTRACT_COLUMNS`), one row per customer
  holding the product, sorted by customer_id. No cell can start a spreadsheet
  formula: a value beginning with `=`, `+`, `-`, `@`, a tab or a carriage return
  gets a leading single quote (`pipeline.csv_safety`, OWASP's CSV-injection advice);
  a validated E.164 phone number (`+358...`) is written as it is. Every product gets a file, empty
  but for its header when nobody holds it, so a missing file is never ambiguous.
- Before anything reaches the disk, every customer in it is checked again
  against the `customer` table itself, not the view: nobody who prohibited direct
  marketing, nobody under 18 today (Finnish date), of unknown birth date or born
  more than 115 years ago (an age past belief: a slipped century sign), nobody
  without a valid code whose birth date of this century was read from a code that
  failed its check (one wrong digit can make a child an adult: 0017), nobody
  erased or merged away, no id the register does not hold, and nobody held
  back under doubt (`doubt`). Any such customer and the whole extract is refused
  (`ExtractRefused`, counts only): a wrong view must not become a disclosure.
- *Doubt protects the person* (docs/register_rules.md: "whom no open doubt ties to someone
  who has"). A customer is held back until a steward decides when an open review
  ties it to a customer who prohibited direct marketing, or to a possible minor:
  under 18, or of unknown birth date and itself tied by an open review to someone
  under 18 who could be the held customer (the junior trap; not two different
  valid codes). Every pair the resolver scored at or above the
  review threshold without linking it is an open review, unless it can never be
  one person (two valid codes) or a steward decided it; so the open reviews are
  the doubts. Accepting a review merges the two (the person's latest statement
  then decides); rejecting it dissolves the tie.
- A prohibition also reaches the contact point it came from (`prohibited_contact`):
  a customer whose e-mail address or phone number, or whose names (either way
  round) at its postal code, are those of a record held by another customer who
  prohibited direct marketing is held back; the message would reach the person
  who said no. So is a customer whose full names, with two or more given names,
  are such a record's anywhere (either way round), unless the two cannot be one
  person (two different valid codes, or two different birth dates): the person
  who said no may have moved (migration 0016). And a prohibition in the customer's
  own records stands until a record with the same valid identity code withdraws it,
  at or after it, when the machine linked some of the customer's records by probability
  (`prohibition_not_withdrawn`): the golden record keeps the latest statement,
  which may then be another person's. Neither is a review; only the data settles them. `doubt` is computed here
  in Python from the tables, independently of the view `marketing_doubt`.
- Published atomically: each file is written to a temporary file in the same
  folder and renamed over the old one, so the partner never reads half a file.
  Files are 0600 and folders 0700: personal data, for the pipeline's account only.
- Logged as a disclosure (`pipeline.register.disclosures`): recipient, purpose,
  legal basis, products, rows, the files' checksums and the customers named.

`verify_extract` reads the newest extract back and runs the same re-check on
the ids in its files, and counts any formula-leading cell; the Dagster asset
check on the extract uses it.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import tempfile
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from pipeline.codes import Flag
from pipeline.csv_safety import is_formula_leading, safe_writer
from pipeline.intake import file_checksum
from pipeline.register.disclosures import marketing_terms, record_disclosure
from pipeline.finland import today_in_finland
from schemas.canonical import PRODUCTS
from schemas.register import customer, golden_provenance, review_queue, source_record

ADULT_AGE = 18
# Older than this is no known adult age: most likely a child's `A` typed as the classic
# `-` (2009 read as 1909). The code stays valid; the age is not believed (migration 0008).
OLDEST_BELIEVABLE_AGE = 115
EXTRACT_COLUMNS: tuple[str, ...] = (
    "customer_id", "first_names", "last_name", "street_address", "postal_code", "city", "email", "phone",
)
FILE_MODE = 0o600
FOLDER_MODE = 0o700
FILE_NAME = re.compile(r"marketing_(?P<product>[a-z_]+)\.csv")
FOLDER_NAME = re.compile(r"\d{4}-\d{2}-\d{2}")
_TEMP_PREFIX = ".marketing_"
_TEMP_SUFFIX = ".csv.tmp"
_ID_CHUNK = 5_000  # ids per IN list: well inside SQLite's and PostgreSQL's bind limits

marketing_contacts = sa.table(
    "marketing_contacts", *[sa.column(c) for c in EXTRACT_COLUMNS], sa.column("product"))


def adult_born_on_or_before(today: dt.date) -> dt.date:
    """The latest birth date of someone who is at least 18 on `today`.

    Born on 29 February, one comes of age on 1 March in a common year.

    >>> adult_born_on_or_before(dt.date(2026, 11, 25))
    datetime.date(2008, 11, 25)
    >>> adult_born_on_or_before(dt.date(2024, 2, 29))
    datetime.date(2006, 2, 28)
    """
    try:
        return today.replace(year=today.year - ADULT_AGE)
    except ValueError:  # 29 February eighteen years ago does not exist
        return dt.date(today.year - ADULT_AGE, 2, 28)


def oldest_believable_birth(today: dt.date) -> dt.date:
    """The earliest birth date the marketing list believes on `today` (`OLDEST_BELIEVABLE_AGE`).

    >>> oldest_believable_birth(dt.date(2026, 12, 6)), oldest_believable_birth(dt.date(2028, 2, 29))
    (datetime.date(1911, 12, 6), datetime.date(1913, 2, 28))
    """
    try:
        return today.replace(year=today.year - OLDEST_BELIEVABLE_AGE)
    except ValueError:  # 29 February
        return dt.date(today.year - OLDEST_BELIEVABLE_AGE, 2, 28)


# A code of this century that fails its check: the check character covers the date digits but
# not the century sign, so one wrong digit can make a child born in 2009 an adult born in 2001.
FAILED_CODE_AGES_FROM = dt.date(2000, 1, 1)
_IDENTITY_RECORD = source_record.alias("identity_record")


def age_from_a_failed_code() -> sa.ColumnElement[bool]:
    """True for a customer row (of `customer`) whose birth date is not believed for marketing
    (migration 0017): no valid code, born this century, and the birth date read from the
    date part of a code that failed its check (the identity unit's record, `golden_provenance`)."""
    return sa.and_(
        customer.c.personal_id.is_(None), customer.c.birth_date >= FAILED_CODE_AGES_FROM,
        sa.exists().where(golden_provenance.c.customer_id == customer.c.customer_id,
                          _IDENTITY_RECORD.c.source_record_pk == golden_provenance.c.identity_record_pk,
                          _IDENTITY_RECORD.c.quality_flags.contains(Flag.PERSONAL_ID_INVALID.value)))


def known_adult_age(born: dt.date | None, today: dt.date) -> bool:
    """Whether a birth date makes a known adult on `today`: 18 or older, and not past belief.

    >>> today = dt.date(2026, 12, 6)
    >>> [known_adult_age(b, today) for b in (None, dt.date(2008, 12, 6), dt.date(2008, 12, 7),
    ...                                        dt.date(1911, 12, 6), dt.date(1911, 12, 5))]
    [False, True, False, True, False]
    """
    return born is not None and oldest_believable_birth(today) <= born <= adult_born_on_or_before(today)


# --- who may not be in the list -----------------------------------------------------------------

@dataclass(frozen=True)
class Ineligible:
    """Customers who must not be in a direct-marketing list, by reason. Ids, never values.

    A customer may count under several reasons; `customer_ids` holds each once.
    """

    prohibited: int = 0
    minor_or_unknown_age: int = 0
    erased: int = 0
    merged: int = 0
    unknown: int = 0  # an id the customer table does not hold
    held_under_doubt: int = 0  # held back under doubt (`marketing_doubt`, four reasons)
    customer_ids: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.customer_ids

    def counts(self) -> dict[str, int]:
        return {"ineligible_customers": len(self.customer_ids), "prohibited": self.prohibited,
                "minor_or_unknown_age": self.minor_or_unknown_age, "erased": self.erased,
                "merged": self.merged, "unknown_customer": self.unknown,
                "held_under_doubt": self.held_under_doubt}


_ERASED = customer.alias("erased_customer")


def _prohibited() -> sa.ColumnElement[bool]:
    """The customer prohibited direct marketing, or an erased customer with the same code
    kept a prohibition (an objection outlives the erasure of the contract it came with)."""
    kept_elsewhere = sa.exists().where(_ERASED.c.personal_id == customer.c.personal_id,
                                       _ERASED.c.erased_at.is_not(None), _ERASED.c.marketing_prohibited.is_(True))
    return sa.or_(customer.c.marketing_prohibited.is_(True), kept_elsewhere)


def ineligible_condition(today: dt.date) -> sa.ColumnElement[bool]:
    """True for a customer row (of `customer`) that must not receive direct marketing on `today`."""
    return sa.or_(
        _prohibited(),
        customer.c.birth_date.is_(None),
        customer.c.birth_date > adult_born_on_or_before(today),
        customer.c.birth_date < oldest_believable_birth(today),
        age_from_a_failed_code(),
        customer.c.erased_at.is_not(None),
        customer.c.merged_into.is_not(None),
    )


def _status_columns() -> list:
    # A birth date not believed counts as an unknown one.
    believed = sa.case((age_from_a_failed_code(), sa.null()), else_=customer.c.birth_date)
    return [customer.c.customer_id, _prohibited().label("prohibited"), believed.label("birth_date"),
            customer.c.erased_at.is_not(None).label("erased"), customer.c.merged_into.is_not(None).label("merged")]


def _tally(rows: Iterable, unknown_ids: set[int], today: dt.date,
           held: Collection[int] = frozenset()) -> Ineligible:
    """Count the reasons of the customer rows given (customer_id, prohibited, birth date, erased, merged);
    `held`: the customers held back under doubt."""
    counts = {"prohibited": 0, "minor_or_unknown_age": 0, "erased": 0, "merged": 0, "held_under_doubt": 0}
    bad: set[int] = set(unknown_ids)
    for customer_id, prohibited, born, erased, merged in rows:
        reasons = {"prohibited": prohibited is not None and bool(prohibited),
                   "minor_or_unknown_age": not known_adult_age(born, today),
                   "erased": bool(erased), "merged": bool(merged),
                   "held_under_doubt": int(customer_id) in held}
        for reason, hit in reasons.items():
            counts[reason] += int(hit)
        if any(reasons.values()):
            bad.add(int(customer_id))
    return Ineligible(**counts, unknown=len(unknown_ids), customer_ids=tuple(sorted(bad)))


# --- doubt: held back until a steward decides --------------------------------------------------------

DOUBT_REASONS: tuple[str, ...] = ("prohibited", "possible_minor", "prohibited_contact",
                                  "prohibition_not_withdrawn")
REVIEW_REASONS: tuple[str, ...] = ("prohibited", "possible_minor")  # the ones a steward's decision settles


@dataclass(frozen=True)
class Doubt:
    """Customers held back from direct marketing under doubt. Ids, never values.

    `ties`: (customer_id, tied_customer_id, review_id, reason) for each open review
    (or, review_id None, each contact point or unwithdrawn prohibition) that holds
    `customer_id` back because of `tied_customer_id`; `held` maps each customer held
    back to its reasons.
    """

    ties: tuple[tuple[int, int, int | None, str], ...] = ()

    @property
    def held(self) -> dict[int, frozenset[str]]:
        out: dict[int, set[str]] = {}
        for customer_id, _, _, reason in self.ties:
            out.setdefault(customer_id, set()).add(reason)
        return {c: frozenset(r) for c, r in out.items()}

    def counts(self, among: Iterable[int] | None = None) -> dict[str, int]:
        held = self.held
        ids = set(held) if among is None else set(held) & {int(i) for i in among}
        return {"held_under_doubt": len(ids),
                **{f"held_for.{reason}": sum(1 for c in ids if reason in held[c]) for reason in DOUBT_REASONS}}


def open_review_ties(connection: sa.Connection) -> list[tuple[int, int, int]]:
    """(review_id, left customer, right customer) of every open review, the customers as they
    are now: a merge moves the review's records to the survivor, not the review's own ids."""
    left, right = source_record.alias("left_record"), source_record.alias("right_record")
    rows = connection.execute(
        sa.select(review_queue.c.review_id,
                  sa.func.coalesce(left.c.customer_id, review_queue.c.left_customer_id),
                  sa.func.coalesce(right.c.customer_id, review_queue.c.right_customer_id))
        .select_from(review_queue
                     .outerjoin(left, left.c.source_record_pk == review_queue.c.left_source_record_pk)
                     .outerjoin(right, right.c.source_record_pk == review_queue.c.right_source_record_pk))
        .where(review_queue.c.status == "open")).all()
    return [(int(r), int(a), int(b)) for r, a, b in rows if a is not None and b is not None and a != b]


def _sort_key(tie: tuple[int, int, int | None, str]) -> tuple:
    customer_id, tied, review_id, reason = tie
    return customer_id, tied, -1 if review_id is None else review_id, reason


def doubt(connection: sa.Connection, today: dt.date, *, reviews_only: bool = False,
          among: Iterable[int] | None = None) -> Doubt:
    """Who is held back under doubt on `today` (see the module doc); `reviews_only`: only
    the ties of open reviews (what a steward's decision settles). `among`: only the ties
    holding back these customers - the same ties as the whole register's that hold them,
    computed from their own reviews, contact points and statements (a customer page, a
    page of the review queue), not the whole register's."""
    wanted = None if among is None else {int(c) for c in among}
    ties = _review_ties(connection, today, wanted)
    if not reviews_only:
        ties |= _contact_ties(connection, wanted) | _unwithdrawn_ties(connection, wanted)
    if wanted is not None:
        ties = {t for t in ties if t[0] in wanted}
    return Doubt(tuple(sorted(ties, key=_sort_key)))


def _record_prohibits() -> sa.ColumnElement[bool]:
    """A source record that prohibited direct marketing: `= true`, the very condition of the
    partial index `ix_source_record_prohibiting` (`IS true` would not use it on SQLite)."""
    return source_record.c.marketing_prohibited == sa.true()


def _prohibiting_records(connection: sa.Connection) -> list[tuple]:
    """(customer_id, email, phone, first_names, last_name, postal_code, the customer's personal_id
    and birth_date) of each record that prohibited direct marketing, held by a live customer whose
    own statement is a prohibition."""
    return connection.execute(
        sa.select(source_record.c.customer_id, source_record.c.email, source_record.c.phone,
                  source_record.c.first_names, source_record.c.last_name, source_record.c.postal_code,
                  customer.c.personal_id, customer.c.birth_date)
        .join(customer, customer.c.customer_id == source_record.c.customer_id)
        .where(_record_prohibits(), customer.c.merged_into.is_(None), _prohibited())
    ).all()


def _contact_ties(connection: sa.Connection, among: set[int] | None = None) -> set[tuple[int, int, None, str]]:
    """Live customers (of `among`, if given) reached through a contact point another customer
    prohibited from: its e-mail, its phone, its names (either way round) at its postal code, or,
    anywhere, full names with two or more given names of someone who could be the same person
    (a move: migration 0016)."""
    by_point: dict[tuple, set[int]] = {}
    full_names: dict[tuple[str, str], set[tuple[int, str | None, object]]] = {}
    for owner, email, phone, first, last, postal, owner_code, owner_birth in _prohibiting_records(connection):
        points = [("email", email), ("phone", phone)]
        if postal is not None and first is not None and last is not None:
            points += [("post", postal, first, last), ("post", postal, last, first)]
        for point in points:
            if point[-1] is not None:
                by_point.setdefault(point, set()).add(int(owner))
        if first is not None and last is not None:
            for names in ((first, last), (last, first)):
                full_names.setdefault(names, set()).add((int(owner), owner_code, owner_birth))
    if not by_point and not full_names:
        return set()
    ties: set[tuple[int, int, None, str]] = set()
    query = (sa.select(customer.c.customer_id, customer.c.email, customer.c.phone, customer.c.first_names,
                       customer.c.last_name, customer.c.postal_code, customer.c.personal_id, customer.c.birth_date)
             .where(customer.c.merged_into.is_(None), customer.c.erased_at.is_(None)))
    if among is not None:
        chunks = sorted(among)
        rows = [row for start in range(0, len(chunks), _ID_CHUNK) for row in connection.execute(
            query.where(customer.c.customer_id.in_(chunks[start:start + _ID_CHUNK])))]
    else:
        rows = connection.execute(query)
    for customer_id, email, phone, first, last, postal, code, birth in rows:
        for point in (("email", email), ("phone", phone), ("post", postal, first, last)):
            for owner in by_point.get(point, ()):
                if owner != customer_id:
                    ties.add((int(customer_id), owner, None, "prohibited_contact"))
        if first is not None and " " in first:  # one given name is too often a namesake's
            for owner, owner_code, owner_birth in full_names.get((first, last), ()):
                if owner != customer_id and _could_be_one(code, owner_code) and _could_be_one(birth, owner_birth):
                    ties.add((int(customer_id), owner, None, "prohibited_contact"))
    return ties


def _could_be_one(mine: object, theirs: object) -> bool:
    """Two values of one attribute do not tell two people apart unless both are known and differ."""
    return mine is None or theirs is None or mine == theirs


def _unwithdrawn_ties(connection: sa.Connection, among: set[int] | None = None) -> set[tuple[int, int, None, str]]:
    """Live customers whose golden statement allows marketing although one of their own
    records prohibited it, no record under the same valid code withdrew it since, and
    some of their records were linked by probability."""
    only = [] if among is None else [source_record.c.customer_id.in_(sorted(among))]
    statements = connection.execute(
        sa.select(source_record.c.customer_id, source_record.c.personal_id, source_record.c.observed_at,
                  source_record.c.marketing_prohibited)
        .join(customer, customer.c.customer_id == source_record.c.customer_id)
        .where(source_record.c.marketing_prohibited.is_not(None), customer.c.merged_into.is_(None),
               customer.c.erased_at.is_(None), sa.not_(_prohibited()),
               customer.c.customer_id.in_(sa.select(source_record.c.customer_id)
                                          .where(_record_prohibits(), *only)),
               customer.c.customer_id.in_(sa.select(source_record.c.customer_id)
                                          .where(source_record.c.match_method == "probabilistic", *only)),
               *([] if among is None else [customer.c.customer_id.in_(sorted(among))]))).all()
    withdrawals: dict[tuple[int, str], list] = {}
    for customer_id, code, observed, prohibited in statements:
        if not prohibited and code is not None:
            withdrawals.setdefault((int(customer_id), code), []).append(observed)
    held: set[tuple[int, int, None, str]] = set()
    for customer_id, code, observed, prohibited in statements:
        if prohibited and not any(when >= observed for when in withdrawals.get((int(customer_id), code), ())):
            held.add((int(customer_id), int(customer_id), None, "prohibition_not_withdrawn"))
    return held


def _review_ties(connection: sa.Connection, today: dt.date,
                 among: set[int] | None = None) -> set[tuple[int, int, int | None, str]]:
    """The ties of open reviews: to a customer who prohibited, or to a possible minor. With
    `among`, every tie holding back one of them is among those returned: their reviews are
    read, and those of the customers they are tied to (whether that one is tied to a minor)."""
    reviews = open_review_ties(connection)
    if among is not None:
        near = set(among) | {b for _, a, b in reviews if a in among} | {a for _, a, b in reviews if b in among}
        reviews = [r for r in reviews if r[1] in near or r[2] in near]
    if not reviews:
        return set()
    involved = sorted({c for _, a, b in reviews for c in (a, b)})
    cutoff = adult_born_on_or_before(today)
    prohibited: set[int] = set()
    minor: set[int] = set()
    unknown_age: set[int] = set()
    code: dict[int, str] = {}
    for start in range(0, len(involved), _ID_CHUNK):
        chunk = involved[start:start + _ID_CHUNK]
        for customer_id, is_prohibited, born, personal_id in connection.execute(
                sa.select(customer.c.customer_id, _prohibited(), customer.c.birth_date, customer.c.personal_id)
                .where(customer.c.customer_id.in_(chunk))):
            customer_id = int(customer_id)
            if is_prohibited:
                prohibited.add(customer_id)
            if born is None:
                unknown_age.add(customer_id)
            elif born > cutoff:
                minor.add(customer_id)
            if personal_id:
                code[customer_id] = personal_id
    pairs = [(review, a, b) for review, x, y in reviews for a, b in ((x, y), (y, x))]
    minors_tied_to: dict[int, set[int]] = {}
    for _, a, b in pairs:
        if b in minor:
            minors_tied_to.setdefault(a, set()).add(b)

    def could_be(held: int, other: int) -> bool:  # two different valid codes: never one person
        return held != other and not (held in code and other in code and code[held] != code[other])

    ties: set[tuple[int, int, int | None, str]] = set()
    for review, held, tied in pairs:
        if tied in prohibited:
            ties.add((held, tied, review, "prohibited"))
        if tied in minor or (tied in unknown_age
                             and any(could_be(held, m) for m in minors_tied_to.get(tied, ()))):
            ties.add((held, tied, review, "possible_minor"))
    return ties


def held_back_eligible(connection: sa.Connection, today: dt.date) -> dict[str, int]:
    """How many customers who would otherwise be on the list are held back under doubt, by reason."""
    found = doubt(connection, today)
    held = sorted(found.held)
    otherwise_ineligible: set[int] = set()
    for start in range(0, len(held), _ID_CHUNK):
        chunk = held[start:start + _ID_CHUNK]
        otherwise_ineligible |= {int(r[0]) for r in connection.execute(
            sa.select(customer.c.customer_id).where(customer.c.customer_id.in_(chunk), ineligible_condition(today)))}
    return found.counts(set(held) - otherwise_ineligible)


def ineligible_among(connection: sa.Connection, customer_ids: Iterable[int], today: dt.date) -> Ineligible:
    """Of these customer ids, the ones the customer table says must not be marketed to."""
    wanted = sorted({int(i) for i in customer_ids})
    found: set[int] = set()
    statuses: list[tuple] = []
    for start in range(0, len(wanted), _ID_CHUNK):
        chunk = wanted[start:start + _ID_CHUNK]
        for row in connection.execute(sa.select(*_status_columns()).where(customer.c.customer_id.in_(chunk))):
            found.add(int(row[0]))
            statuses.append(tuple(row))
    return _tally(statuses, set(wanted) - found, today, doubt(connection, today).held)


def ineligible_in_view(connection: sa.Connection, today: dt.date) -> Ineligible:
    """Customers the view `marketing_contacts` lists although the customer table forbids it."""
    listed = sa.select(marketing_contacts.c.customer_id).distinct().subquery("listed")
    rows = connection.execute(
        sa.select(listed.c.customer_id, *_status_columns()[1:], customer.c.customer_id.is_(None).label("unknown"))
        .select_from(listed.outerjoin(customer, customer.c.customer_id == listed.c.customer_id))
        .where(sa.or_(customer.c.customer_id.is_(None), ineligible_condition(today)))).all()
    unknown = {int(r[0]) for r in rows if r[-1]}
    statuses = [tuple(r[:-1]) for r in rows if not r[-1]]
    # Listed although held back under doubt (and otherwise eligible): in chunks of ids.
    held = doubt(connection, today).held
    seen = {int(r[0]) for r in rows}
    wanted = sorted(set(held) - seen)
    for start in range(0, len(wanted), _ID_CHUNK):
        chunk = wanted[start:start + _ID_CHUNK]
        statuses += [tuple(r) for r in connection.execute(
            sa.select(*_status_columns()).where(
                customer.c.customer_id.in_(chunk),
                customer.c.customer_id.in_(sa.select(marketing_contacts.c.customer_id))))]
    return _tally(statuses, unknown, today, held)


# --- writing the extract ---------------------------------------------------------------------------

class ExtractRefused(Exception):
    """The extract would have disclosed someone it must not; nothing was published.

    The message and `counts` hold counts only.
    """

    def __init__(self, ineligible: Ineligible):
        self.counts = ineligible.counts()
        super().__init__("marketing extract refused: " + ", ".join(f"{k} {v}" for k, v in self.counts.items()))


@dataclass(frozen=True)
class ExtractSummary:
    """What was published: the folder's date, and per product the file name and its row count."""

    extract_date: dt.date
    folder: Path
    files: dict[str, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    def metadata(self) -> dict[str, object]:
        return {"extract_date": self.extract_date.isoformat(),
                "rows_total": sum(self.rows.values()),
                **{f"rows.{product}": n for product, n in self.rows.items()},
                "files_written": sorted(self.files.values())}


def file_name(product: str) -> str:
    return f"marketing_{product}.csv"


def _rows_by_product(connection: sa.Connection) -> dict[str, list[tuple]]:
    view = marketing_contacts.c
    result = connection.execute(
        sa.select(view.product, *[view[c] for c in EXTRACT_COLUMNS])
        .where(view.product.is_not(None)).order_by(view.product, view.customer_id))
    out: dict[str, list[tuple]] = {p: [] for p in PRODUCTS}
    for product, *values in result:
        out.setdefault(product, []).append(tuple(values))
    return out


def _private_folder(path: Path) -> Path:
    """`path` made (with its parents) if missing, and set to 0700 whatever the umask."""
    missing = not path.exists()
    path.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    if missing or path.stat().st_mode & 0o777 != FOLDER_MODE:
        os.chmod(path, FOLDER_MODE)
    return path


def _write_temporary(folder: Path, rows: list[tuple]) -> Path:
    """The rows as CSV in a new 0600 file of `folder`, flushed to disk; returns its path."""
    handle, name = tempfile.mkstemp(dir=folder, prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX)  # mkstemp: mode 0600
    try:
        os.fchmod(handle, FILE_MODE)
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            writer = safe_writer(out)
            writer.writerow(EXTRACT_COLUMNS)
            writer.writerows(rows)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def write_extract(engine: sa.Engine, extract_dir: Path | str, *, today: dt.date | None = None,
                  by: str = "marketing_extract", now: dt.datetime | None = None) -> ExtractSummary:
    """Publish today's extract (see the module doc); raises `ExtractRefused` if it would disclose anyone it must not.

    A published extract is a disclosure: it is logged (`pipeline.register.disclosures`)
    with its recipient, purpose and legal basis (`marketing_terms`), products, rows per
    product, the files' checksums and the customers it names; `by` is the run.
    """
    today = today or today_in_finland()
    now = now or dt.datetime.now(dt.timezone.utc)
    with engine.connect() as connection, connection.begin():
        by_product = _rows_by_product(connection)
        listed = {row[0] for rows in by_product.values() for row in rows}
        ineligible = ineligible_among(connection, listed, today)
    if not ineligible.ok:
        raise ExtractRefused(ineligible)

    root = _private_folder(Path(extract_dir))
    folder = _private_folder(root / today.isoformat())
    for stale in folder.glob(f"{_TEMP_PREFIX}*{_TEMP_SUFFIX}"):  # left by an interrupted run
        stale.unlink(missing_ok=True)
    written: dict[str, Path] = {}
    try:
        for product, rows in by_product.items():
            written[product] = _write_temporary(folder, rows)
        for product, temporary in written.items():
            os.replace(temporary, folder / file_name(product))
    finally:
        for temporary in written.values():
            temporary.unlink(missing_ok=True)  # only left if publishing stopped half-way
    _sync_folder(folder)
    checksums = {file_name(p): file_checksum(folder / file_name(p)) for p in by_product}
    with engine.begin() as connection:
        record_disclosure(connection, kind="marketing_extract", terms=marketing_terms(), customer_ids=listed,
                          details={"extract_date": today.isoformat(), "products": sorted(by_product),
                                   "rows": {p: len(rows) for p, rows in sorted(by_product.items())},
                                   "files_sha256": checksums},
                          by=by, now=now)
    return ExtractSummary(extract_date=today, folder=folder,
                          files={p: file_name(p) for p in by_product},
                          rows={p: len(rows) for p, rows in by_product.items()})


def _sync_folder(folder: Path) -> None:
    """Make the renames durable (a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- reading it back -------------------------------------------------------------------------------

def latest_extract(extract_dir: Path | str) -> Path | None:
    """The newest dated folder of the extract directory, or None if there is none."""
    root = Path(extract_dir)
    if not root.is_dir():
        return None
    folders = sorted(p for p in root.iterdir() if p.is_dir() and FOLDER_NAME.fullmatch(p.name))
    return folders[-1] if folders else None


@dataclass(frozen=True)
class ExtractVerification:
    """The re-check of an extract's files. Counts and file names only."""

    folder: Path | None
    rows: dict[str, int]
    unreadable_rows: int
    ineligible: Ineligible
    formula_cells: int = 0  # cells a spreadsheet could run as a formula (CSV injection)

    @property
    def ok(self) -> bool:
        return (self.folder is not None and self.unreadable_rows == 0 and self.formula_cells == 0
                and self.ineligible.ok)

    def metadata(self) -> dict[str, object]:
        return {"extract_date": self.folder.name if self.folder else "none",
                "files": len(self.rows), "rows_total": sum(self.rows.values()),
                "unreadable_rows": self.unreadable_rows, "formula_cells": self.formula_cells,
                **self.ineligible.counts()}


def _ids_in_file(path: Path) -> tuple[list[int], int, int]:
    """The customer ids of one extract file, how many rows had none readable, and how
    many cells (header included) are formula-leading."""
    ids: list[int] = []
    unreadable = 0
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or "customer_id" not in header:
            return [], sum(1 for _ in reader) or 1, 0  # no id column: the file cannot be vouched for
        formulas = sum(is_formula_leading(cell) for cell in header)
        at = header.index("customer_id")
        for row in reader:
            formulas += sum(is_formula_leading(cell) for cell in row)
            value = (row[at] if at < len(row) else "").strip()
            if value.isdigit():
                ids.append(int(value))
            else:
                unreadable += 1
    return ids, unreadable, formulas


def verify_extract(engine: sa.Engine, extract_dir: Path | str, *, today: dt.date | None = None) -> ExtractVerification:
    """Re-check the newest extract's files against the customer table."""
    today = today or today_in_finland()
    folder = latest_extract(extract_dir)
    if folder is None:
        return ExtractVerification(None, {}, 0, Ineligible())
    rows: dict[str, int] = {}
    ids: set[int] = set()
    unreadable = formulas = 0
    for path in sorted(folder.iterdir()):
        if not FILE_NAME.fullmatch(path.name):
            continue
        file_ids, bad, formula_cells = _ids_in_file(path)
        rows[path.name] = len(file_ids) + bad
        ids.update(file_ids)
        unreadable += bad
        formulas += formula_cells
    with engine.connect() as connection:
        ineligible = ineligible_among(connection, ids, today)
    return ExtractVerification(folder, rows, unreadable, ineligible, formula_cells=formulas)
