"""Initial register schema: intake files, source records, quarantine, customers,
merges, review queue, services and golden-record provenance.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Frozen: this file spells out its types and code lists instead of importing
`schemas.register`, so later model changes cannot rewrite history. Points in time
are `DateTime(timezone=True)` (the models' UTCDateTime).
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# ORs rather than IN: SQLite evaluates a CHECK's IN list through an ephemeral index
# built again for every inserted row, which slowed bulk loads by a third.
CHANNEL_CHECK = ("(channel = 'web' OR channel = 'phone' OR channel = 'mail' OR channel = 'email'"
                 " OR channel = 'in_person')")
PRODUCT_CHECK = ("(product = 'electricity' OR product = 'natural_gas' OR product = 'district_heating'"
                 " OR product = 'broadband' OR product = 'tv')")
BIG_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def person_columns() -> list[sa.Column]:
    return [
        sa.Column("personal_id", sa.String(length=11), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("first_names", sa.Text(), nullable=True),
        sa.Column("last_name", sa.Text(), nullable=True),
        sa.Column("street_address", sa.Text(), nullable=True),
        sa.Column("postal_code", sa.String(length=5), nullable=True),
        sa.Column("city", sa.Text(), nullable=True),
        sa.Column("phone", sa.String(length=16), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("iban", sa.String(length=34), nullable=True),
        sa.Column("bic", sa.String(length=11), nullable=True),
    ]


def create_present_index(table: str, column: str) -> None:
    """Partial index of the non-null values: the nulls would only slow bulk loads."""
    where = sa.text(f"{column} IS NOT NULL")
    op.create_index(op.f(f"ix_{table}_{column}"), table, [column], sqlite_where=where, postgresql_where=where)


def upgrade() -> None:
    op.create_table(
        "intake_file",
        sa.Column("intake_file_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False, comment="sha256 of the file's bytes, hex"),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("records_read", sa.Integer(), nullable=False),
        sa.Column("records_accepted", sa.Integer(), nullable=False),
        sa.Column("records_resent", sa.Integer(), nullable=False,
                  comment="accepted records already held (re-sends); counted inside records_accepted"),
        sa.Column("records_quarantined", sa.Integer(), nullable=False),
        sa.Column("loaded_at", timestamp(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.CheckConstraint(CHANNEL_CHECK, name=op.f("ck_intake_file_channel")),
        sa.CheckConstraint("(status = 'loaded' OR status = 'quarantined')", name=op.f("ck_intake_file_status")),
        sa.CheckConstraint("records_read = records_accepted + records_quarantined",
                           name=op.f("ck_intake_file_counts_add_up")),
        sa.CheckConstraint("records_resent >= 0 AND records_resent <= records_accepted",
                           name=op.f("ck_intake_file_resent_within_accepted")),
        sa.PrimaryKeyConstraint("intake_file_id", name=op.f("pk_intake_file")),
        sa.UniqueConstraint("checksum", name=op.f("uq_intake_file_checksum")),
    )

    op.create_table(
        "customer",
        sa.Column("customer_id", sa.Integer(), autoincrement=True, nullable=False),
        *person_columns(),
        sa.Column("marketing_prohibited", sa.Boolean(), nullable=True),
        sa.Column("identity_verified", sa.Boolean(), nullable=False),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.Column("updated_at", timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer")),
        # Never reuse a customer id, even the highest one after a delete.
        sqlite_autoincrement=True,
    )
    create_present_index("customer", "personal_id")

    op.create_table(
        "source_record",
        sa.Column("source_record_pk", BIG_KEY, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("source_record_id", sa.String(length=200), nullable=False),
        sa.Column("intake_file_id", sa.Integer(), nullable=False),
        sa.Column("record_number", sa.Integer(), nullable=False, comment="1-based position in its file"),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("observed_at", timestamp(), nullable=False),
        sa.Column("match_method", sa.String(length=16), nullable=True),
        sa.Column("match_probability", sa.Float(), nullable=True),
        *person_columns(),
        sa.Column("product", sa.String(length=20), nullable=True),
        sa.Column("metering_point", sa.String(length=18), nullable=True),
        sa.Column("marketing_prohibited", sa.Boolean(), nullable=True),
        sa.Column("identity_verified", sa.Boolean(), nullable=False),
        sa.Column("quality_flags", sa.Text(), nullable=False, comment="space-separated pipeline.codes.Flag codes"),
        sa.Column("loaded_at", timestamp(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.CheckConstraint(CHANNEL_CHECK, name=op.f("ck_source_record_channel")),
        sa.CheckConstraint("(match_method = 'personal_id' OR match_method = 'probabilistic'"
                           " OR match_method = 'new' OR match_method = 'steward')",
                           name=op.f("ck_source_record_match_method")),
        sa.CheckConstraint("match_probability >= 0 AND match_probability <= 1",
                           name=op.f("ck_source_record_match_probability")),
        sa.CheckConstraint(PRODUCT_CHECK, name=op.f("ck_source_record_product")),
        sa.ForeignKeyConstraint(["intake_file_id"], ["intake_file.intake_file_id"],
                                name=op.f("fk_source_record_intake_file_id_intake_file")),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.customer_id"],
                                name=op.f("fk_source_record_customer_id_customer")),
        sa.PrimaryKeyConstraint("source_record_pk", name=op.f("pk_source_record")),
        sa.UniqueConstraint("channel", "source_record_id", name=op.f("uq_source_record_channel_source_record_id")),
    )
    create_present_index("source_record", "customer_id")
    create_present_index("source_record", "personal_id")

    op.create_table(
        "quarantine",
        sa.Column("quarantine_id", BIG_KEY, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("source_record_id", sa.String(length=200), nullable=True,
                  comment="null when the whole file is quarantined"),
        sa.Column("intake_file_id", sa.Integer(), nullable=False),
        sa.Column("record_number", sa.Integer(), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=False, comment="space-separated pipeline.codes.Reason codes"),
        sa.Column("detail", sa.Text(), nullable=True, comment="file, column and position; never a personal value"),
        sa.Column("raw_values", sa.Text(), nullable=True,
                  comment="JSON of the raw fields for the steward; purged after retention"),
        sa.Column("quarantined_at", timestamp(), nullable=False),
        sa.Column("raw_purged_at", timestamp(), nullable=True),
        sa.CheckConstraint(CHANNEL_CHECK, name=op.f("ck_quarantine_channel")),
        sa.ForeignKeyConstraint(["intake_file_id"], ["intake_file.intake_file_id"],
                                name=op.f("fk_quarantine_intake_file_id_intake_file")),
        sa.PrimaryKeyConstraint("quarantine_id", name=op.f("pk_quarantine")),
    )
    op.create_index(op.f("ix_quarantine_intake_file_id"), "quarantine", ["intake_file_id"])
    op.create_index(op.f("ix_quarantine_channel_source_record_id"), "quarantine", ["channel", "source_record_id"])

    op.create_table(
        "customer_merge",
        sa.Column("merge_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("merged_customer_id", sa.Integer(), nullable=False),
        sa.Column("surviving_customer_id", sa.Integer(), nullable=False),
        sa.Column("merged_at", timestamp(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True,
                  comment="steward's user name; null for an automatic merge"),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.CheckConstraint("merged_customer_id <> surviving_customer_id", name=op.f("ck_customer_merge_not_self")),
        sa.ForeignKeyConstraint(["merged_customer_id"], ["customer.customer_id"],
                                name=op.f("fk_customer_merge_merged_customer_id_customer")),
        sa.ForeignKeyConstraint(["surviving_customer_id"], ["customer.customer_id"],
                                name=op.f("fk_customer_merge_surviving_customer_id_customer")),
        sa.PrimaryKeyConstraint("merge_id", name=op.f("pk_customer_merge")),
        sa.UniqueConstraint("merged_customer_id", name=op.f("uq_customer_merge_merged_customer_id")),
    )
    op.create_index(op.f("ix_customer_merge_surviving_customer_id"), "customer_merge", ["surviving_customer_id"])

    op.create_table(
        "review_queue",
        sa.Column("review_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("left_customer_id", sa.Integer(), nullable=True),
        sa.Column("right_customer_id", sa.Integer(), nullable=True),
        sa.Column("left_source_record_pk", BIG_KEY, nullable=True),
        sa.Column("right_source_record_pk", BIG_KEY, nullable=True),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False, comment="comparison levels and weights; no personal values"),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", timestamp(), nullable=True),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.CheckConstraint("(status = 'open' OR status = 'accepted' OR status = 'rejected')",
                           name=op.f("ck_review_queue_status")),
        sa.CheckConstraint("probability >= 0 AND probability <= 1", name=op.f("ck_review_queue_probability")),
        sa.ForeignKeyConstraint(["left_customer_id"], ["customer.customer_id"],
                                name=op.f("fk_review_queue_left_customer_id_customer")),
        sa.ForeignKeyConstraint(["right_customer_id"], ["customer.customer_id"],
                                name=op.f("fk_review_queue_right_customer_id_customer")),
        sa.ForeignKeyConstraint(["left_source_record_pk"], ["source_record.source_record_pk"],
                                name=op.f("fk_review_queue_left_source_record_pk_source_record")),
        sa.ForeignKeyConstraint(["right_source_record_pk"], ["source_record.source_record_pk"],
                                name=op.f("fk_review_queue_right_source_record_pk_source_record")),
        sa.PrimaryKeyConstraint("review_id", name=op.f("pk_review_queue")),
    )
    op.create_index(op.f("ix_review_queue_status"), "review_queue", ["status"])
    op.create_index(op.f("ix_review_queue_left_customer_id"), "review_queue", ["left_customer_id"])
    op.create_index(op.f("ix_review_queue_right_customer_id"), "review_queue", ["right_customer_id"])

    op.create_table(
        "service",
        sa.Column("service_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=20), nullable=False),
        sa.Column("metering_point", sa.String(length=18), nullable=True),
        sa.Column("first_seen", timestamp(), nullable=False),
        sa.Column("last_seen", timestamp(), nullable=False),
        sa.CheckConstraint(PRODUCT_CHECK, name=op.f("ck_service_product")),
        sa.CheckConstraint("first_seen <= last_seen", name=op.f("ck_service_seen_order")),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.customer_id"],
                                name=op.f("fk_service_customer_id_customer")),
        sa.PrimaryKeyConstraint("service_id", name=op.f("pk_service")),
        sa.UniqueConstraint("customer_id", "product", "metering_point",
                            name=op.f("uq_service_customer_id_product_metering_point")),
    )
    op.create_index(op.f("ix_service_metering_point"), "service", ["metering_point"])

    op.create_table(
        "golden_provenance",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("attribute", sa.String(length=40), nullable=False, comment="a customer column name"),
        sa.Column("source_record_pk", BIG_KEY, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("observed_at", timestamp(), nullable=False),
        sa.CheckConstraint(CHANNEL_CHECK, name=op.f("ck_golden_provenance_channel")),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.customer_id"],
                                name=op.f("fk_golden_provenance_customer_id_customer")),
        sa.ForeignKeyConstraint(["source_record_pk"], ["source_record.source_record_pk"],
                                name=op.f("fk_golden_provenance_source_record_pk_source_record")),
        sa.PrimaryKeyConstraint("customer_id", "attribute", name=op.f("pk_golden_provenance")),
    )
    op.create_index(op.f("ix_golden_provenance_source_record_pk"), "golden_provenance", ["source_record_pk"])


def downgrade() -> None:
    # Dropping a table drops its indexes; children before parents.
    for table in ("golden_provenance", "service", "review_queue", "customer_merge",
                  "quarantine", "source_record", "customer", "intake_file"):
        op.drop_table(table)
