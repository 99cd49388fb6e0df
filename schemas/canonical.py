"""The column contracts between the stages of the intake.

    channel reader ──► staged frame ──► normaliser ──► canonical frame
                  └──► read errors                      (reject_reason set → quarantine)

*Staged* is what a channel's `read` returns (`ChannelRead`): the channel's own fields mapped
onto shared names, still as people typed them (strings), except for the
channel-specific parts that only the channel can read (its timestamp format,
its yes/no encodings). *Canonical* is the normalised, validated record that the
register stores in `source_record`.
"""

from __future__ import annotations

import pandera.pandas as pa

from pipeline.codes import Flag, Reason

CHANNELS: tuple[str, ...] = ("web", "phone", "mail", "email", "in_person")
# Fixed channel order: breaks survivorship ties (docs/register_rules.md rule 6).
CHANNEL_ORDER: dict[str, int] = {c: i for i, c in enumerate(CHANNELS)}
PRODUCTS: tuple[str, ...] = ("electricity", "natural_gas", "district_heating", "broadband", "tv")

# name_order values for `full_name`
SURNAME_FIRST = "surname_first"
GIVEN_FIRST = "given_first"

# Staged frame: one row per record a reader could read.
#   string columns hold raw text (pandas "string" dtype, NA where absent);
#   observed_at is datetime64[ns, UTC] (NaT when the channel could not read it);
#   marketing_prohibited is pandas "boolean" (NA: the record states nothing);
#   identity_verified is bool; record_number is the 1-based line/row/message number;
#   read_flags is a space-separated list of Flag codes raised while reading ("" if none);
#   reject_reason is a Reason code the channel itself decided (NA if none).
STAGED_STRING_COLUMNS: tuple[str, ...] = (
    "channel", "source_record_id",
    "first_names", "last_name", "full_name", "name_order",
    "personal_id",
    "street_address", "postal_code", "city", "address_line", "postal_code_and_city",
    "phone", "email", "account", "product", "metering_point",
    "read_flags", "reject_reason",
)
STAGED_COLUMNS: tuple[str, ...] = STAGED_STRING_COLUMNS + (
    "record_number", "observed_at", "marketing_prohibited", "identity_verified",
)

# Read errors: records a reader could not read at all (one row each).
#   raw is the record's raw text (for the steward; never logged).
READ_ERROR_COLUMNS: tuple[str, ...] = ("channel", "record_number", "source_record_id", "reason", "raw")

# Canonical frame: the normaliser's output, same index as the staged frame.
CANONICAL_COLUMNS: tuple[str, ...] = (
    "channel", "source_record_id", "record_number", "observed_at",
    "first_names", "last_name", "personal_id", "birth_date",
    "street_address", "postal_code", "city", "phone", "email", "iban", "bic",
    "product", "metering_point", "marketing_prohibited", "identity_verified",
    "quality_flags", "reject_reason",
)
# The canonical columns a source record stores: reject_reason never is (a rejected
# record goes to quarantine).
STORED_CANONICAL_COLUMNS: tuple[str, ...] = tuple(c for c in CANONICAL_COLUMNS if c != "reject_reason")

_flag_codes = {f.value for f in Flag}
_reason_codes = {r.value for r in Reason}


def _known_flags(flags: str) -> bool:
    return all(code in _flag_codes for code in flags.split())


# Validation of the canonical record. Checks report counts per check and column in
# our own metadata; never put pandera's failure cases (the values) in a log.
# The shape of a personal identity code as stored: six date digits, a century sign,
# three digits and a check character (its validity is pipeline.normalise.hetu's). Also
# what the steward's reasons are checked against, so no code is written there.
PERSONAL_ID_SHAPE = r"\d{6}[-+ABCDEFYXWVU]\d{3}[0-9A-Y]"

CanonicalIntake = pa.DataFrameSchema(
    {
        "channel": pa.Column(str, pa.Check.isin(CHANNELS)),
        "source_record_id": pa.Column(str, pa.Check.str_length(1, 200)),
        "record_number": pa.Column(int, pa.Check.ge(1)),
        "observed_at": pa.Column("datetime64[ns, UTC]"),
        "first_names": pa.Column(str, nullable=True),
        "last_name": pa.Column(str, nullable=True),
        "personal_id": pa.Column(str, pa.Check.str_matches(f"^{PERSONAL_ID_SHAPE}$"), nullable=True),
        "birth_date": pa.Column("datetime64[ns]", nullable=True),
        "street_address": pa.Column(str, nullable=True),
        "postal_code": pa.Column(str, pa.Check.str_matches(r"^\d{5}$"), nullable=True),
        "city": pa.Column(str, nullable=True),
        "phone": pa.Column(str, pa.Check.str_matches(r"^\+[1-9]\d{6,14}$"), nullable=True),
        "email": pa.Column(str, pa.Check.str_contains("@"), nullable=True),
        "iban": pa.Column(str, pa.Check.str_matches(r"^[A-Z]{2}\d{2}[A-Z0-9]{10,30}$"), nullable=True),
        "bic": pa.Column(str, pa.Check.str_matches(r"^[A-Z0-9]{8}([A-Z0-9]{3})?$"), nullable=True),
        "product": pa.Column(str, pa.Check.isin(PRODUCTS), nullable=True),
        "metering_point": pa.Column(str, pa.Check.str_matches(r"^643\d{15}$"), nullable=True),
        "marketing_prohibited": pa.Column("boolean", nullable=True),
        "identity_verified": pa.Column(bool),
        "quality_flags": pa.Column(str, pa.Check(lambda s: s.map(_known_flags), element_wise=False)),
        "reject_reason": pa.Column(str, pa.Check.isin(sorted(_reason_codes)), nullable=True),
    },
    strict=True,
    coerce=True,
    name="canonical_intake",
)
