"""The one documented list of data-quality flags and quarantine reasons.

Every flag stored on a source record and every reason stored on a quarantine
entry is a code from this module; `docs/codes.md` is generated from it
(`python -m pipeline.codes > docs/codes.md`) and a test keeps the two in step.

A *flag* marks an accepted record whose value was repaired, dropped or is
doubtful. A *quarantine reason* says why a record (or a whole file) could not
be accepted; quarantined records keep their raw values for a data steward.
"""

from __future__ import annotations

from enum import StrEnum


class Flag(StrEnum):
    """Data-quality flags on accepted records (`source_record.quality_flags`)."""

    PERSONAL_ID_MISSING = "personal_id_missing"
    PERSONAL_ID_INVALID = "personal_id_invalid"
    PERSONAL_ID_TEMPORARY = "personal_id_temporary"
    PERSONAL_ID_FUTURE_BIRTH_DATE = "personal_id_future_birth_date"
    PERSONAL_ID_IMPLAUSIBLE_BIRTH_DATE = "personal_id_implausible_birth_date"
    PERSONAL_ID_REPAIRED = "personal_id_repaired"
    BIRTH_DATE_FROM_INVALID_CODE = "birth_date_from_invalid_code"
    NAME_INCOMPLETE = "name_incomplete"
    ADDRESS_INCOMPLETE = "address_incomplete"
    POSTAL_CODE_INVALID = "postal_code_invalid"
    POSTAL_CODE_PADDED = "postal_code_padded"
    PHONE_INVALID = "phone_invalid"
    EMAIL_INVALID = "email_invalid"
    ACCOUNT_INVALID = "account_invalid"
    ACCOUNT_CONVERTED_FROM_DOMESTIC = "account_converted_from_domestic"
    ACCOUNT_REPAIRED = "account_repaired"
    BIC_UNKNOWN = "bic_unknown"
    PRODUCT_UNKNOWN = "product_unknown"
    METERING_POINT_INVALID = "metering_point_invalid"
    MARKETING_ANSWER_UNRECOGNISED = "marketing_answer_unrecognised"
    IDENTITY_CHECK_UNRECOGNISED = "identity_check_unrecognised"
    OBSERVED_AT_ASSUMED = "observed_at_assumed"
    CONTROL_CHARACTERS_REMOVED = "control_characters_removed"


class Reason(StrEnum):
    """Why a record, or a whole file, went to quarantine (`quarantine.reasons`)."""

    # whole files
    FILE_UNREADABLE = "file_unreadable"
    FILE_ENCODING = "file_encoding"
    FILE_EMPTY = "file_empty"
    FILE_MISSING_COLUMN = "file_missing_column"
    FILE_UNKNOWN_COLUMN = "file_unknown_column"
    FILE_MISSING_SHEET = "file_missing_sheet"
    # single records
    MALFORMED_RECORD = "malformed_record"
    MISSING_RECORD_ID = "missing_record_id"
    DUPLICATE_RECORD_ID_IN_FILE = "duplicate_record_id_in_file"
    DUPLICATE_KEY = "duplicate_key"
    VALUE_TOO_LONG = "value_too_long"
    INVALID_TIMESTAMP = "invalid_timestamp"
    NOT_A_REGISTRATION = "not_a_registration"
    NO_IDENTITY = "no_identity"


FLAG_DESCRIPTIONS: dict[Flag, str] = {
    Flag.PERSONAL_ID_MISSING: "No personal identity code was given.",
    Flag.PERSONAL_ID_INVALID: "The identity code fails the format, date or check-character rule; it is not stored.",
    Flag.PERSONAL_ID_TEMPORARY: "A temporary code (individual number 900-999); never a person's identity, not stored.",
    Flag.PERSONAL_ID_FUTURE_BIRTH_DATE: "The code's birth date lies in the future; invalid, not stored.",
    Flag.PERSONAL_ID_IMPLAUSIBLE_BIRTH_DATE: ("The code's birth date lies in the 1800s (the + sign, most often typed "
                                              "for -); no living person's, invalid, not stored."),
    Flag.PERSONAL_ID_REPAIRED: "The letter O typed for a zero in the code's digits was repaired and the code then validated.",
    Flag.BIRTH_DATE_FROM_INVALID_CODE: "The birth date was read from the date part of an invalid or temporary code.",
    Flag.NAME_INCOMPLETE: "First names or last name missing.",
    Flag.ADDRESS_INCOMPLETE: "Street, postal code or city missing.",
    Flag.POSTAL_CODE_INVALID: "The postal code is not five digits; dropped.",
    Flag.POSTAL_CODE_PADDED: "Leading zeros lost by a spreadsheet were restored.",
    Flag.PHONE_INVALID: "The phone number is not a valid number; dropped.",
    Flag.EMAIL_INVALID: "The e-mail address is not well formed; dropped.",
    Flag.ACCOUNT_INVALID: "The account is neither a valid IBAN nor a valid Finnish domestic account; dropped.",
    Flag.ACCOUNT_CONVERTED_FROM_DOMESTIC: "An old domestic account number was converted to IBAN.",
    Flag.ACCOUNT_REPAIRED: "The letter O typed for a zero in the account was repaired and it then validated.",
    Flag.BIC_UNKNOWN: "No BIC is known for the account's bank code.",
    Flag.PRODUCT_UNKNOWN: "The product could not be mapped to one of the five product codes.",
    Flag.METERING_POINT_INVALID: "The metering point is not an 18-digit GSRN starting 643 with a valid check digit; dropped.",
    Flag.MARKETING_ANSWER_UNRECOGNISED: "The direct-marketing answer was not one the channel defines; treated as unknown.",
    Flag.IDENTITY_CHECK_UNRECOGNISED: "The identity-checked cell was not one the channel defines; treated as not checked.",
    Flag.OBSERVED_AT_ASSUMED: "The record had no time of its own; the file's export date was used.",
    Flag.CONTROL_CHARACTERS_REMOVED: ("A control character (NUL, another C0 one but tab and line breaks, DEL or C1) "
                                      "was removed from a value; the same on every channel and backend."),
}

REASON_DESCRIPTIONS: dict[Reason, str] = {
    Reason.FILE_UNREADABLE: "The file could not be opened or parsed as its channel's format (truncated, corrupt).",
    Reason.FILE_ENCODING: "The file is not in its channel's character encoding.",
    Reason.FILE_EMPTY: "The file holds no records at all.",
    Reason.FILE_MISSING_COLUMN: "An expected column is missing; the detail names the file and the column.",
    Reason.FILE_UNKNOWN_COLUMN: "A column the format does not define; the detail names the file and the column.",
    Reason.FILE_MISSING_SHEET: "The workbook has no sheet named Asioinnit.",
    Reason.MALFORMED_RECORD: ("The line, row or message cannot be read (not JSON, not UTF-8, wrong field count, "
                              "a quote never closed, broken MIME); the file's other records load."),
    Reason.MISSING_RECORD_ID: "The record has no id, so it cannot be held exactly once.",
    Reason.DUPLICATE_RECORD_ID_IN_FILE: "The same record id appears again later in the same file.",
    Reason.VALUE_TOO_LONG: ("A value is longer than its field's limit (docs/damaged_input.md); the detail names the "
                            "field, and only the first 1,000 characters of each raw value are kept."),
    Reason.DUPLICATE_KEY: "A JSON object gives the same key twice with different values; which one holds is unknown.",
    Reason.INVALID_TIMESTAMP: "The record's time is missing or cannot be read.",
    Reason.NOT_A_REGISTRATION: "An e-mail message carrying none of the registration labels.",
    Reason.NO_IDENTITY: "Neither a name nor any personal identity code: nothing to match a person on.",
}


def markdown() -> str:
    """The code list as Markdown, for `docs/codes.md`."""
    lines = ["# Data-quality flags and quarantine reasons", "",
             "Generated by `python -m pipeline.codes`; do not edit by hand.", "",
             "## Flags (accepted records)", "", "| code | meaning |", "| --- | --- |"]
    lines += [f"| `{f.value}` | {FLAG_DESCRIPTIONS[f]} |" for f in Flag]
    lines += ["", "## Quarantine reasons", "", "| code | meaning |", "| --- | --- |"]
    lines += [f"| `{r.value}` | {REASON_DESCRIPTIONS[r]} |" for r in Reason]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
