"""The register's tables (SQLAlchemy 2 Core).

docs/data_dictionary.md describes every table and column, docs/register_rules.md the
rules they keep.

The Alembic migrations in `schemas/migrations/versions/` create exactly these
tables; a test compares the two on SQLite and PostgreSQL so they cannot drift.

Conventions:
- Every point in time is a timezone-aware UTC `datetime` (`UTCDateTime`): stored as
  `timestamptz` on PostgreSQL and as naive UTC text on SQLite, read back as UTC.
- Codes (channel, status, match method) are CHECK-constrained to the values the
  pipeline defines (`schemas.canonical`), so a typo cannot enter the register.
- Surrogate keys of the big tables (`source_record`, `quarantine`) are BIGINT on
  PostgreSQL and SQLite's INTEGER rowid alias on SQLite.
- `customer.customer_id` is never reused (docs/register_rules.md): a PostgreSQL sequence,
  and AUTOINCREMENT on SQLite (plain rowids would reuse the highest id after a delete).
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

from schemas.canonical import CHANNELS, PRODUCTS, STORED_CANONICAL_COLUMNS

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

INTAKE_FILE_STATUSES: tuple[str, ...] = ("loaded", "quarantined")
MATCH_METHODS: tuple[str, ...] = ("personal_id", "probabilistic", "new", "steward")
REVIEW_STATUSES: tuple[str, ...] = ("open", "accepted", "rejected", "withdrawn")


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every backend.

    Naive datetimes are refused: a wall-clock time without a zone is ambiguous
    (Finnish local time has DST), so the caller must say what it means.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError("UTCDateTime column needs a datetime")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("UTCDateTime column needs a timezone-aware datetime")
        value = value.astimezone(timezone.utc)
        # SQLite keeps no zone: store naive UTC text, restored as UTC on reading.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def _in(column: str, values: tuple[str, ...]) -> str:
    """`column` is one of `values` (or NULL).

    Spelled as ORs, not IN: SQLite builds an ephemeral index for an IN list of a
    CHECK on every inserted row, which made bulk loads a third slower.

    >>> _in("status", ("open", "closed"))
    "(status = 'open' OR status = 'closed')"
    """
    return "(" + " OR ".join(f"{column} = '{v}'" for v in values) + ")"


def _present(table: str, column: str) -> sa.Index:
    """An index of the rows where `column` is not null.

    Partial: many records carry no (valid) identity code, and a record loaded without
    identity resolution has no customer yet, so the nulls would only slow bulk loads down.
    `column = value` queries use it on both backends.
    """
    where = sa.text(f"{column} IS NOT NULL")
    return sa.Index(f"ix_{table}_{column}", column, sqlite_where=where, postgresql_where=where)


# BIGINT on PostgreSQL; on SQLite only "INTEGER PRIMARY KEY" is the fast rowid alias.
BigKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

Channel = sa.String(16)
SourceRecordId = sa.String(200)


def _person_columns() -> list[sa.Column]:
    """The normalised personal values shared by `source_record` and `customer`."""
    return [
        sa.Column("personal_id", sa.String(11)),
        sa.Column("birth_date", sa.Date),
        sa.Column("first_names", sa.Text),
        sa.Column("last_name", sa.Text),
        sa.Column("street_address", sa.Text),
        sa.Column("postal_code", sa.String(5)),
        sa.Column("city", sa.Text),
        sa.Column("phone", sa.String(16)),
        sa.Column("email", sa.Text),
        sa.Column("iban", sa.String(34)),
        sa.Column("bic", sa.String(11)),
    ]


intake_file = sa.Table(
    "intake_file",
    metadata,
    sa.Column("intake_file_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("channel", Channel, nullable=False),
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("checksum", sa.String(64), nullable=False, comment="sha256 of the file's bytes, hex"),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("records_read", sa.Integer, nullable=False),
    sa.Column("records_accepted", sa.Integer, nullable=False),
    sa.Column("records_resent", sa.Integer, nullable=False,
              comment="accepted records already held (re-sends); counted inside records_accepted"),
    sa.Column("records_quarantined", sa.Integer, nullable=False),
    sa.Column("records_erased", sa.Integer, nullable=False, server_default="0",
              comment="accepted records of this file since erased (rule 8); counted inside records_accepted"),
    sa.Column("records_versioned", sa.Integer, nullable=False, server_default="0",
              comment="accepted records that were a new version (changed content) of a record already known; "
                      "counted inside records_accepted"),
    sa.Column("records_requarantined", sa.Integer, nullable=False, server_default="0",
              comment="quarantined records already held in quarantine with the same raw content (re-sends); "
                      "counted inside records_quarantined"),
    sa.Column("loaded_at", UTCDateTime, nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.UniqueConstraint("channel", "checksum"),
    sa.CheckConstraint(_in("channel", CHANNELS), name="channel"),
    sa.CheckConstraint(_in("status", INTAKE_FILE_STATUSES), name="status"),
    sa.CheckConstraint("records_read = records_accepted + records_quarantined", name="counts_add_up"),
    sa.CheckConstraint("records_resent >= 0 AND records_resent <= records_accepted", name="resent_within_accepted"),
    sa.CheckConstraint("records_versioned >= 0 AND records_resent + records_versioned <= records_accepted",
                       name="versioned_within_accepted"),
    sa.CheckConstraint("records_requarantined >= 0 AND records_requarantined <= records_quarantined",
                       name="requarantined_within_quarantined"),
)

# A landed file whose bytes its channel already loaded (a re-sent identical export,
# under another name): not read, not loaded, but seen (issue 12, migration 0011).
intake_file_duplicate = sa.Table(
    "intake_file_duplicate",
    metadata,
    sa.Column("duplicate_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("channel", Channel, nullable=False),
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("checksum", sa.String(64), nullable=False, comment="sha256 of the file's bytes, hex"),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("duplicate_of_intake_file_id", sa.Integer, sa.ForeignKey(intake_file.c.intake_file_id),
              nullable=False, comment="the earlier file with the same channel and checksum"),
    sa.Column("seen_at", UTCDateTime, nullable=False, comment="when a run first saw it"),
    sa.Column("run_id", sa.String(64), nullable=False),
    # Once per name: the job never moves landed files, so a later run sees it again.
    sa.UniqueConstraint("channel", "checksum", "file_name"),
    sa.CheckConstraint(_in("channel", CHANNELS), name="channel"),
)

customer = sa.Table(
    "customer",
    metadata,
    sa.Column("customer_id", sa.Integer, primary_key=True, autoincrement=True),
    *_person_columns(),
    sa.Column("marketing_prohibited", sa.Boolean),
    sa.Column("identity_verified", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("merged_into", sa.Integer,
              comment="the surviving customer_id once merged (customer_merge has the history); null while active"),
    sa.Column("erased_at", UTCDateTime,
              comment="set when erased on the person's request; only the billing identity remains"),
    _present("customer", "personal_id"),
    _present("customer", "merged_into"),  # the few merged customers: follow a chain of merges fast
    _present("customer", "erased_at"),  # the few erased customers: the overview counts the live ones (0013)
    sa.Index(None, "created_at"),  # new customers per night on the overview (0013)
    # Contact points a prohibition reaches (the view marketing_doubt, migration 0007).
    _present("customer", "email"),
    _present("customer", "phone"),
    # Names at a postal code (0007) and full names anywhere (0016), either way round.
    sa.Index("ix_customer_full_name", "last_name", "first_names", "postal_code",
             sqlite_where=sa.text("last_name IS NOT NULL"), postgresql_where=sa.text("last_name IS NOT NULL")),
    sqlite_autoincrement=True,
)

source_record = sa.Table(
    "source_record",
    metadata,
    sa.Column("source_record_pk", BigKey, primary_key=True, autoincrement=True),
    sa.Column("channel", Channel, nullable=False),
    sa.Column("source_record_id", SourceRecordId, nullable=False),
    sa.Column("intake_file_id", sa.Integer, sa.ForeignKey(intake_file.c.intake_file_id), nullable=False),
    sa.Column("record_number", sa.Integer, nullable=False, comment="1-based position in its file"),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey(customer.c.customer_id)),
    sa.Column("observed_at", UTCDateTime, nullable=False),
    sa.Column("match_method", sa.String(16)),
    sa.Column("match_probability", sa.Float),
    *_person_columns(),
    sa.Column("product", sa.String(20)),
    sa.Column("metering_point", sa.String(18)),
    sa.Column("marketing_prohibited", sa.Boolean),
    sa.Column("identity_verified", sa.Boolean, nullable=False),
    sa.Column("quality_flags", sa.Text, nullable=False, comment="space-separated pipeline.codes.Flag codes"),
    sa.Column("loaded_at", UTCDateTime, nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("content_hash", sa.String(64),
              comment="sha256 of the version's content as received (pipeline.register.versions); "
                      "null for records loaded before migration 0005"),
    sa.UniqueConstraint("channel", "source_record_id"),
    sa.CheckConstraint(_in("channel", CHANNELS), name="channel"),
    sa.CheckConstraint(_in("match_method", MATCH_METHODS), name="match_method"),
    sa.CheckConstraint("match_probability >= 0 AND match_probability <= 1", name="match_probability"),
    sa.CheckConstraint(_in("product", PRODUCTS), name="product"),
    # No index on intake_file_id: it costs every bulk load ~10 % for rare per-file queries.
    _present("source_record", "customer_id"),
    _present("source_record", "personal_id"),
    # The records that prohibit direct marketing, by customer (the view marketing_doubt).
    sa.Index("ix_source_record_prohibiting", "customer_id",
             sqlite_where=sa.text("marketing_prohibited = 1"), postgresql_where=sa.text("marketing_prohibited = TRUE")),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("quarantine_id", BigKey, primary_key=True, autoincrement=True),
    sa.Column("channel", Channel, nullable=False),
    sa.Column("source_record_id", SourceRecordId, comment="null when the whole file is quarantined"),
    sa.Column("intake_file_id", sa.Integer, sa.ForeignKey(intake_file.c.intake_file_id), nullable=False),
    sa.Column("record_number", sa.Integer),
    sa.Column("reasons", sa.Text, nullable=False, comment="space-separated pipeline.codes.Reason codes"),
    sa.Column("detail", sa.Text, comment="file, column and position; never a personal value"),
    sa.Column("raw_values", sa.Text, comment="JSON of the raw fields for the steward; purged after retention"),
    sa.Column("quarantined_at", UTCDateTime, nullable=False),
    sa.Column("raw_purged_at", UTCDateTime),
    sa.Column("resolved_at", UTCDateTime,
              comment="set when a record with the same channel and id was accepted: no longer an open entry"),
    sa.Column("resolved_intake_file_id", sa.Integer, sa.ForeignKey(intake_file.c.intake_file_id),
              comment="the file whose accepted record resolved the entry"),
    sa.CheckConstraint(_in("channel", CHANNELS), name="channel"),
    sa.Index(None, "intake_file_id"),
    sa.Index(None, "channel", "source_record_id"),
)

# Earlier versions of source records (docs/register_rules.md rule 2): a re-sent record whose content
# differs is a new version of it. `source_record` holds the current version (the latest by
# `pipeline.register.versions.precedence`); every other version received is kept here, with
# the file that brought it, so no change is ever dropped and each file's counts add up.
source_record_version = sa.Table(
    "source_record_version",
    metadata,
    sa.Column("version_pk", BigKey, primary_key=True, autoincrement=True),
    sa.Column("source_record_pk", BigKey, sa.ForeignKey(source_record.c.source_record_pk), nullable=False,
              comment="the record (its current version is the source_record row)"),
    sa.Column("intake_file_id", sa.Integer, sa.ForeignKey(intake_file.c.intake_file_id), nullable=False),
    sa.Column("record_number", sa.Integer, nullable=False, comment="1-based position in its file"),
    sa.Column("observed_at", UTCDateTime, nullable=False),
    *_person_columns(),
    sa.Column("product", sa.String(20)),
    sa.Column("metering_point", sa.String(18)),
    sa.Column("marketing_prohibited", sa.Boolean),
    sa.Column("identity_verified", sa.Boolean, nullable=False),
    sa.Column("quality_flags", sa.Text, nullable=False, comment="space-separated pipeline.codes.Flag codes"),
    sa.Column("content_hash", sa.String(64), nullable=False, comment="sha256 of the version's content"),
    sa.Column("loaded_at", UTCDateTime, nullable=False, comment="when the version was loaded"),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("superseded_at", UTCDateTime, nullable=False, comment="when another version became current"),
    sa.CheckConstraint(_in("product", PRODUCTS), name="product"),
    sa.Index(None, "source_record_pk"),
)

customer_merge = sa.Table(
    "customer_merge",
    metadata,
    sa.Column("merge_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("merged_customer_id", sa.Integer, sa.ForeignKey(customer.c.customer_id), nullable=False),
    sa.Column("surviving_customer_id", sa.Integer, sa.ForeignKey(customer.c.customer_id), nullable=False),
    sa.Column("merged_at", UTCDateTime, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("decided_by", sa.String(100), comment="steward's user name; null for an automatic merge"),
    sa.Column("run_id", sa.String(64)),
    # A customer is merged away once; its id then resolves through the survivor chain.
    sa.UniqueConstraint("merged_customer_id"),
    sa.CheckConstraint("merged_customer_id <> surviving_customer_id", name="not_self"),
    sa.Index(None, "surviving_customer_id"),
)

review_queue = sa.Table(
    "review_queue",
    metadata,
    sa.Column("review_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("left_customer_id", sa.Integer, sa.ForeignKey(customer.c.customer_id)),
    sa.Column("right_customer_id", sa.Integer, sa.ForeignKey(customer.c.customer_id)),
    sa.Column("left_source_record_pk", BigKey, sa.ForeignKey(source_record.c.source_record_pk)),
    sa.Column("right_source_record_pk", BigKey, sa.ForeignKey(source_record.c.source_record_pk)),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False, comment="comparison levels and weights; no personal values"),
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("decided_by", sa.String(100)),
    sa.Column("decided_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.CheckConstraint(_in("status", REVIEW_STATUSES), name="status"),
    sa.CheckConstraint("probability >= 0 AND probability <= 1", name="probability"),
    sa.Index(None, "status"),
    sa.Index(None, "left_customer_id"),
    sa.Index(None, "right_customer_id"),
)

# A steward's deferral of a review (migration 0013): the review stays `open` (it still holds the
# customers off the marketing list: `marketing_doubt` reads the status), and each deferral is kept
# with who, when and why. The latest deferral of an open review shows it as deferred in the queue.
review_deferral = sa.Table(
    "review_deferral",
    metadata,
    sa.Column("deferral_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("review_id", sa.Integer, sa.ForeignKey(review_queue.c.review_id), nullable=False),
    sa.Column("deferred_by", sa.String(100), nullable=False),
    sa.Column("deferred_at", UTCDateTime, nullable=False),
    sa.Column("reason", sa.Text, nullable=False, comment="the steward's reason; never a personal value"),
    sa.Index(None, "review_id", "deferred_at"),
)

service = sa.Table(
    "service",
    metadata,
    sa.Column("service_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey(customer.c.customer_id), nullable=False),
    sa.Column("product", sa.String(20), nullable=False),
    sa.Column("metering_point", sa.String(18)),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
    sa.UniqueConstraint("customer_id", "product", "metering_point"),
    sa.CheckConstraint(_in("product", PRODUCTS), name="product"),
    sa.CheckConstraint("first_seen <= last_seen", name="seen_order"),
    sa.Index(None, "metering_point"),
)

# Provenance of each golden value: one row per customer, naming for each unit of
# values (survivorship moves a unit as a whole: the name, the address, the bank
# account with its BIC) the source record it came from. The record gives the
# channel and time; the view `golden_value_provenance` spells it out per attribute.
PROVENANCE_UNITS: dict[str, tuple[str, ...]] = {
    "identity": ("personal_id", "birth_date"),
    "name": ("first_names", "last_name"),
    "address": ("street_address", "postal_code", "city"),
    "phone": ("phone",),
    "email": ("email",),
    "bank_account": ("iban", "bic"),
    "marketing": ("marketing_prohibited",),
    "verification": ("identity_verified",),
}

golden_provenance = sa.Table(
    "golden_provenance",
    metadata,
    sa.Column("customer_id", sa.Integer, sa.ForeignKey(customer.c.customer_id), primary_key=True,
              autoincrement=False),
    *[sa.Column(f"{unit}_record_pk", BigKey, comment=f"source record of {', '.join(columns)}")
      for unit, columns in PROVENANCE_UNITS.items()],
)

# The blocking index of the matcher: for each source record, one 64-bit hash per
# blocking rule it has values for (pipeline.matching.model.BLOCKING_KEYS). A new
# batch finds its candidates in the register by these keys, exactly the pairs the
# matcher would block together if every record were loaded at once (rule 3).
match_key = sa.Table(
    "match_key",
    metadata,
    sa.Column("blocking_key", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("source_record_pk", BigKey, primary_key=True, autoincrement=False,
              comment="no foreign key or index of its own: they cost bulk loads dearly; erasure deletes by it"),
    sqlite_with_rowid=False,
)

RIGHTS_ACTIONS: tuple[str, ...] = ("access", "rectification", "erasure")

# What a steward did for a data subject (docs/register_rules.md rule 8): counts, never values.
rights_request = sa.Table(
    "rights_request",
    metadata,
    sa.Column("request_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.Integer,
              comment="no foreign key: the record outlives an erased prospect's customer row"),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("attribute", sa.String(40), comment="the column rectified"),
    sa.Column("reason", sa.Text, comment="the steward's reason; never a personal value"),
    sa.Column("outcome", sa.JSON, nullable=False, comment="counts of what was read, changed or removed"),
    sa.Column("decided_by", sa.String(100), nullable=False),
    sa.Column("performed_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(_in("action", RIGHTS_ACTIONS), name="action"),
    sa.Index(None, "customer_id"),
)

# The disclosure log (pipeline.register.disclosures): what was given to whom, when, why and
# on what legal basis. Counts, products and file checksums; the customers disclosed as a
# compressed list of ids (a nightly marketing extract names hundreds of thousands).
DISCLOSURE_KINDS = ("marketing_extract", "subject_access", "erasure_report")
disclosure = sa.Table(
    "disclosure",
    metadata,
    sa.Column("disclosure_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("legal_basis", sa.Text, nullable=False),
    sa.Column("disclosed_at", UTCDateTime, nullable=False),
    sa.Column("disclosed_by", sa.String(100), nullable=False, comment="the run id, or the steward"),
    sa.Column("customer_count", sa.Integer, nullable=False),
    sa.Column("customer_ids", sa.LargeBinary, nullable=False,
              comment="the customer ids disclosed: sorted, delta-encoded int64, zlib (disclosures.encode_ids)"),
    sa.Column("details", sa.JSON, nullable=False, comment="products, rows per product, file checksums; counts only"),
    sa.CheckConstraint(_in("kind", DISCLOSURE_KINDS), name="kind"),
    sa.Index(None, "disclosed_at"),
)

# Tombstones of erased source records (pipeline.register.rights.erasure): a hash of the
# (channel, source_record_id) key only, so a re-sent submission of an erased person
# counts as a re-send instead of loading again.
erased_record = sa.Table(
    "erased_record",
    metadata,
    sa.Column("key_hash", sa.String(64), primary_key=True, comment="hex SHA-256 of channel, U+001F, source_record_id"),
    sa.Column("erased_at", UTCDateTime, nullable=False),
)

# --- the stewards' workbench (migration 0012, issue 11) ---------------------------------------------

USER_ROLES: tuple[str, ...] = ("steward", "analyst", "admin")
# What the access log records: a look at a person, a reveal of values, a decision, an export.
ACCESS_ACTIONS: tuple[str, ...] = (
    "view_customer", "view_review", "view_quarantine", "reveal", "decide_review", "defer_review", "unmerge",
    "release", "dismiss", "export", "rectify", "erase", "erase_dry_run", "cli_unmask",
    "find_by_code",  # migration 0013: a steward looked a person up by identity code (never the code itself)
)

# Personal accounts of the web workbench (`register user add|disable|list`): an argon2 hash, never a
# password; the failed-login bookkeeping throttles guessing per user (the web app throttles per client too).
app_user = sa.Table(
    "app_user",
    metadata,
    sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False, comment="argon2id hash (argon2-cffi); never the password"),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0",
              comment="wrong passwords since the last successful login"),
    sa.Column("last_failed_at", UTCDateTime),
    sa.Column("locked_until", UTCDateTime, comment="no login is tried before this time (throttling)"),
    sa.Column("last_login_at", UTCDateTime),
    sa.UniqueConstraint("name"),
    sa.CheckConstraint(_in("role", USER_ROLES), name="role"),
)

# Who looked at or acted on whom (append-only; on PostgreSQL a trigger refuses UPDATE and DELETE).
# Ids and the reason asked for only, never a value.
access_log = sa.Table(
    "access_log",
    metadata,
    sa.Column("access_id", BigKey, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("user_name", sa.String(100), nullable=False, comment="the web user, or the OS user (or --as) of the CLI"),
    sa.Column("via", sa.String(8), nullable=False, comment="web or cli"),
    sa.Column("action", sa.String(24), nullable=False),
    sa.Column("customer_id", sa.Integer, comment="no foreign key: the log outlives an erased customer row"),
    sa.Column("source_record_pk", BigKey),
    sa.Column("review_id", sa.Integer),
    sa.Column("quarantine_id", BigKey),
    sa.Column("reason", sa.Text, comment="the reason given (at a reveal, a decision); never a personal value"),
    sa.CheckConstraint(_in("action", ACCESS_ACTIONS), name="action"),
    sa.CheckConstraint("via = 'web' OR via = 'cli'", name="via"),
    sa.Index(None, "customer_id"),
    sa.Index(None, "user_name", "at"),
)

# Which records a merged customer held when it was merged, so an unmerge can give them their old id back.
merge_record = sa.Table(
    "merge_record",
    metadata,
    sa.Column("merge_id", sa.Integer, sa.ForeignKey(customer_merge.c.merge_id), primary_key=True,
              autoincrement=False),
    sa.Column("source_record_pk", BigKey, primary_key=True, autoincrement=False,
              comment="no foreign key: an erasure deletes the record; the row then names nothing held"),
)

# A steward's unmerge: records split back out of a customer (a wrongly linked record, or a wrongly merged
# customer given its old id back). The records are kept apart by steward rejections in `review_queue`.
unmerge = sa.Table(
    "unmerge",
    metadata,
    sa.Column("unmerge_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.Integer, nullable=False, comment="the customer the records were split from"),
    sa.Column("split_customer_id", sa.Integer, nullable=False, comment="the customer the records went to"),
    sa.Column("restored", sa.Boolean, nullable=False, comment="the split customer got its old id back"),
    sa.Column("merged_at", UTCDateTime, comment="when the undone merge was made (a restored customer)"),
    sa.Column("records", sa.Integer, nullable=False, comment="how many records were split out"),
    sa.Column("reason", sa.Text, nullable=False, comment="the steward's reason; never a personal value"),
    sa.Column("decided_by", sa.String(100), nullable=False),
    sa.Column("decided_at", UTCDateTime, nullable=False),
    sa.Index(None, "customer_id"),
    sa.Index(None, "split_customer_id"),
)

QUARANTINE_DECISIONS: tuple[str, ...] = ("release", "dismiss")

# A steward's decision on a quarantine entry: corrected and released into the register (through the
# normalisers and the matcher, as a one-record intake file of its own), or dismissed.
quarantine_decision = sa.Table(
    "quarantine_decision",
    metadata,
    sa.Column("quarantine_id", BigKey, sa.ForeignKey(quarantine.c.quarantine_id), primary_key=True,
              autoincrement=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("corrected_fields", sa.Text, nullable=False,
              comment="space-separated names of the raw fields the steward corrected; never the values"),
    sa.Column("intake_file_id", sa.Integer, sa.ForeignKey(intake_file.c.intake_file_id),
              comment="the steward's one-record intake file of a release"),
    sa.Column("reason", sa.Text, nullable=False, comment="the steward's reason; never a personal value"),
    sa.Column("decided_by", sa.String(100), nullable=False),
    sa.Column("decided_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(_in("action", QUARANTINE_DECISIONS), name="action"),
)

# Views for analysts (created by migration 0003; not tables, so not in `metadata`).
# Pseudonymous views for analysts; the marketing list's contact details for the marketing role alone.
ANALYST_VIEWS: tuple[str, ...] = ("customer_masked", "service_masked")
MARKETING_VIEWS: tuple[str, ...] = ("marketing_contacts",)

# Canonical columns stored on source_record, in canonical order.
SOURCE_RECORD_CANONICAL_COLUMNS: tuple[str, ...] = STORED_CANONICAL_COLUMNS
assert set(SOURCE_RECORD_CANONICAL_COLUMNS) <= set(source_record.c.keys()), "source_record lacks a canonical column"

REGISTER_TABLES: tuple[sa.Table, ...] = tuple(metadata.sorted_tables)
