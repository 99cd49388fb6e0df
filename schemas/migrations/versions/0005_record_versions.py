"""Versions of source records, resolved and re-sent quarantine entries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

- `source_record_version`: a re-sent record whose content differs is a new version
  of it (docs/register_rules.md rule 2). `source_record` keeps the current version; every other
  version received is kept here with the file that brought it.
- `source_record.content_hash`: the sha256 of the current version's content as
  received, so an identical re-send is recognised even after a rectification.
- `intake_file.records_versioned` (inside `records_accepted`) and
  `intake_file.records_requarantined` (inside `records_quarantined`: a quarantined
  record re-sent with the same raw content is not quarantined twice).
- `quarantine.resolved_at` and `quarantine.resolved_intake_file_id`: an entry whose
  record was later accepted (the complete copy of a file first read while still being
  written) is resolved, not open. Entries already resolved that way are marked here.

Frozen: types spelled out here, not imported.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BIG_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PRODUCT_CHECK = ("(product = 'electricity' OR product = 'natural_gas' OR product = 'district_heating'"
                 " OR product = 'broadband' OR product = 'tv')")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _person_columns() -> list[sa.Column]:
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


def upgrade() -> None:
    with op.batch_alter_table("intake_file") as batch:
        batch.add_column(sa.Column(
            "records_versioned", sa.Integer(), nullable=False, server_default="0",
            comment="accepted records that were a new version (changed content) of a record already known; "
                    "counted inside records_accepted"))
        batch.add_column(sa.Column(
            "records_requarantined", sa.Integer(), nullable=False, server_default="0",
            comment="quarantined records already held in quarantine with the same raw content (re-sends); "
                    "counted inside records_quarantined"))
        batch.create_check_constraint(
            op.f("ck_intake_file_versioned_within_accepted"),
            "records_versioned >= 0 AND records_resent + records_versioned <= records_accepted")
        batch.create_check_constraint(
            op.f("ck_intake_file_requarantined_within_quarantined"),
            "records_requarantined >= 0 AND records_requarantined <= records_quarantined")
    with op.batch_alter_table("source_record") as batch:
        batch.add_column(sa.Column(
            "content_hash", sa.String(length=64), nullable=True,
            comment="sha256 of the version's content as received (pipeline.register.versions); "
                    "null for records loaded before migration 0005"))
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column(
            "resolved_at", _timestamp(), nullable=True,
            comment="set when a record with the same channel and id was accepted: no longer an open entry"))
        batch.add_column(sa.Column(
            "resolved_intake_file_id", sa.Integer(), nullable=True,
            comment="the file whose accepted record resolved the entry"))
        batch.create_foreign_key("fk_quarantine_resolved_intake_file_id_intake_file", "intake_file",
                                 ["resolved_intake_file_id"], ["intake_file_id"])
    op.create_table(
        "source_record_version",
        sa.Column("version_pk", BIG_KEY, autoincrement=True, nullable=False),
        sa.Column("source_record_pk", BIG_KEY, nullable=False,
                  comment="the record (its current version is the source_record row)"),
        sa.Column("intake_file_id", sa.Integer(), nullable=False),
        sa.Column("record_number", sa.Integer(), nullable=False, comment="1-based position in its file"),
        sa.Column("observed_at", _timestamp(), nullable=False),
        *_person_columns(),
        sa.Column("product", sa.String(length=20), nullable=True),
        sa.Column("metering_point", sa.String(length=18), nullable=True),
        sa.Column("marketing_prohibited", sa.Boolean(), nullable=True),
        sa.Column("identity_verified", sa.Boolean(), nullable=False),
        sa.Column("quality_flags", sa.Text(), nullable=False, comment="space-separated pipeline.codes.Flag codes"),
        sa.Column("content_hash", sa.String(length=64), nullable=False, comment="sha256 of the version's content"),
        sa.Column("loaded_at", _timestamp(), nullable=False, comment="when the version was loaded"),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("superseded_at", _timestamp(), nullable=False, comment="when another version became current"),
        sa.CheckConstraint(PRODUCT_CHECK, name=op.f("ck_source_record_version_product")),
        sa.ForeignKeyConstraint(["intake_file_id"], ["intake_file.intake_file_id"],
                                name=op.f("fk_source_record_version_intake_file_id_intake_file")),
        sa.ForeignKeyConstraint(["source_record_pk"], ["source_record.source_record_pk"],
                                name=op.f("fk_source_record_version_source_record_pk_source_record")),
        sa.PrimaryKeyConstraint("version_pk", name=op.f("pk_source_record_version")),
    )
    op.create_index(op.f("ix_source_record_version_source_record_pk"), "source_record_version",
                    ["source_record_pk"])
    # Entries whose record is already held (quarantined from a partial copy, then
    # accepted from the complete one) were never open problems: resolve them now.
    op.execute(
        "UPDATE quarantine SET resolved_at = quarantined_at, resolved_intake_file_id = ("
        "SELECT s.intake_file_id FROM source_record AS s WHERE s.channel = quarantine.channel "
        "AND s.source_record_id = quarantine.source_record_id) "
        "WHERE source_record_id IS NOT NULL AND EXISTS (SELECT 1 FROM source_record AS s "
        "WHERE s.channel = quarantine.channel AND s.source_record_id = quarantine.source_record_id)")
    if op.get_bind().dialect.name == "postgresql":
        # Default privileges cover tables made by the role that ran 0003; say it outright.
        op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON source_record_version "
                   "TO register_loader, register_steward")


def downgrade() -> None:
    op.drop_index(op.f("ix_source_record_version_source_record_pk"), table_name="source_record_version")
    op.drop_table("source_record_version")
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_constraint("fk_quarantine_resolved_intake_file_id_intake_file", type_="foreignkey")
        batch.drop_column("resolved_intake_file_id")
        batch.drop_column("resolved_at")
    # Not a batch (a table copy on SQLite): the view golden_value_provenance reads source_record.
    op.drop_column("source_record", "content_hash")
    with op.batch_alter_table("intake_file") as batch:
        batch.drop_constraint(op.f("ck_intake_file_requarantined_within_quarantined"), type_="check")
        batch.drop_constraint(op.f("ck_intake_file_versioned_within_accepted"), type_="check")
        batch.drop_column("records_requarantined")
        batch.drop_column("records_versioned")
