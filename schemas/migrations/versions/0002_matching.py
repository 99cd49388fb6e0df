"""Identity resolution: the matcher's blocking index, merged customers, and
provenance as one row per customer (with a per-attribute view).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Frozen: the provenance units are spelled out here, not imported.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BIG_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UNITS = {
    "identity": ("personal_id", "birth_date"),
    "name": ("first_names", "last_name"),
    "address": ("street_address", "postal_code", "city"),
    "phone": ("phone",),
    "email": ("email",),
    "bank_account": ("iban", "bic"),
    "marketing": ("marketing_prohibited",),
    "verification": ("identity_verified",),
}
CHANNEL_CHECK = ("(channel = 'web' OR channel = 'phone' OR channel = 'mail' OR channel = 'email'"
                 " OR channel = 'in_person')")


def _provenance_view() -> str:
    parts = [
        f"SELECT p.customer_id, '{column}' AS attribute, s.source_record_pk, s.channel, s.observed_at "
        f"FROM golden_provenance p JOIN source_record s ON s.source_record_pk = p.{unit}_record_pk"
        for unit, columns in UNITS.items() for column in columns
    ]
    return "CREATE VIEW golden_value_provenance AS\n" + "\nUNION ALL\n".join(parts)


def upgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.add_column(sa.Column(
            "merged_into", sa.Integer(), nullable=True,
            comment="the surviving customer_id once merged (customer_merge has the history); null while active"))
    op.create_table(
        "match_key",
        sa.Column("blocking_key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("source_record_pk", BIG_KEY, autoincrement=False, nullable=False,
                  comment="no foreign key or index of its own: they cost bulk loads dearly; erasure deletes by it"),
        sa.PrimaryKeyConstraint("blocking_key", "source_record_pk", name="pk_match_key"),
        sqlite_with_rowid=False,
    )
    op.drop_table("golden_provenance")
    op.create_table(
        "golden_provenance",
        sa.Column("customer_id", sa.Integer(), autoincrement=False, nullable=False),
        *[sa.Column(f"{unit}_record_pk", BIG_KEY, nullable=True, comment=f"source record of {', '.join(columns)}")
          for unit, columns in UNITS.items()],
        sa.ForeignKeyConstraint(["customer_id"], ["customer.customer_id"],
                                name="fk_golden_provenance_customer_id_customer"),
        sa.PrimaryKeyConstraint("customer_id", name="pk_golden_provenance"),
    )
    op.execute(_provenance_view())


def downgrade() -> None:
    op.execute("DROP VIEW golden_value_provenance")
    op.drop_table("golden_provenance")
    op.create_table(
        "golden_provenance",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("attribute", sa.String(length=40), nullable=False, comment="a customer column name"),
        sa.Column("source_record_pk", BIG_KEY, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(CHANNEL_CHECK, name="ck_golden_provenance_channel"),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.customer_id"],
                                name="fk_golden_provenance_customer_id_customer"),
        sa.ForeignKeyConstraint(["source_record_pk"], ["source_record.source_record_pk"],
                                name="fk_golden_provenance_source_record_pk_source_record"),
        sa.PrimaryKeyConstraint("customer_id", "attribute", name="pk_golden_provenance"),
    )
    op.create_index("ix_golden_provenance_source_record_pk", "golden_provenance", ["source_record_pk"])
    op.drop_table("match_key")
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("merged_into")
