"""Normalisers: one module per kind of value, and the frame-level entry point.

Each module is python-stdnum-like: `compact(value)` and `validate(value)` (the
canonical value, or a typed `errors.NormaliseError` that never carries the
value), plus a column-wise `normalise_series` that the tests hold equal to the
scalar functions. `normalise_records` turns a staged frame into the canonical
frame (schemas/canonical.py): every field normalised and validated column-wise,
invalid values dropped with their `Flag` codes in `quality_flags`, and
`reject_reason` set for records that must go to quarantine.

Rule 4 of docs/register_rules.md: an invalid or temporary identity code is never put in
`personal_id`; the record is flagged and matched on its other details.
"""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd

from pipeline.codes import Flag, Reason
from pipeline.normalise import _text, address, email, hetu, iban, limits, metering_point, names, phone, product
from pipeline.normalise.status import Status
from schemas.canonical import CANONICAL_COLUMNS

__all__ = ["normalise_records", "combine_flags"]

# Bit positions of the flags in a row's flag mask, in code order so that the
# joined text comes out sorted.
_FLAG_ORDER: tuple[Flag, ...] = tuple(sorted(Flag, key=lambda f: f.value))
_FLAG_BIT: dict[Flag, int] = {flag: i for i, flag in enumerate(_FLAG_ORDER)}


def combine_flags(read_flags: pd.Series, raised: dict[Flag, np.ndarray]) -> pd.Series:
    """Space-separated, sorted, de-duplicated flag codes per row.

    `read_flags` are the staged reader's codes (text); `raised` maps each flag
    to a boolean mask. The text is built once per distinct combination.

    >>> combine_flags(pd.Series(["phone_invalid", ""]),
    ...               {Flag.EMAIL_INVALID: np.array([True, False]), Flag.PHONE_INVALID: np.array([True, True])})
    0    email_invalid phone_invalid
    1                  phone_invalid
    dtype: string
    """
    bits = np.zeros(len(read_flags), dtype=np.int64)
    for flag, mask in raised.items():
        bits |= np.asarray(mask, dtype=bool).astype(np.int64) << _FLAG_BIT[flag]
    read_codes, read_uniques = pd.factorize(read_flags.fillna(""), use_na_sentinel=False)
    keys = read_codes.astype(np.int64) << len(_FLAG_ORDER) | bits
    key_codes, key_uniques = pd.factorize(keys)
    texts = []
    for key in key_uniques:
        codes = set(str(read_uniques[key >> len(_FLAG_ORDER)]).split())
        codes |= {flag.value for flag in _FLAG_ORDER if key >> _FLAG_BIT[flag] & 1}
        texts.append(" ".join(sorted(codes)))
    return pd.Series(np.asarray(texts, dtype=object)[key_codes], index=read_flags.index, dtype="string[pyarrow]")


def normalise_records(staged: pd.DataFrame, today: datetime.date) -> pd.DataFrame:
    """The canonical frame (CANONICAL_COLUMNS, same index) of a staged frame.

    `today` decides which birth dates lie in the future. See the module
    docstring; each value module documents its own rules.

    Reject reasons, first that applies: the staged `reject_reason`;
    `value_too_long` (a value over its field's limit, `limits.FIELD_LIMITS`;
    such values are not normalised); `missing_record_id`; `invalid_timestamp`
    (observed_at is NaT); `no_identity` (no name part and no identity-code text
    at all). Rows rejected for a missing
    id or time keep that id or time NA, so `CanonicalIntake.validate` holds for
    the accepted rows (`reject_reason` NA) and for frames without such rows.
    """
    index = staged.index
    # A value over its field's limit is set aside unread (the record is quarantined, see limits).
    oversized = limits.too_long_by_field(staged)
    too_long = np.zeros(len(staged), dtype=bool)
    for mask in oversized.values():
        too_long |= mask
    if too_long.any():
        staged = staged.copy()
        for name, mask in oversized.items():
            if mask.any():
                staged[name] = staged[name].mask(mask)
    record_id = _text.to_series(_text.arrow_collapse_whitespace(_text.to_arrow(staged["source_record_id"])), index)

    person = names.normalise_names(staged["first_names"], staged["last_name"], staged["full_name"],
                                   staged["name_order"])
    code = hetu.normalise_series(staged["personal_id"], today)
    place = address.normalise_addresses(staged["street_address"], staged["postal_code"], staged["city"],
                                        staged["address_line"], staged["postal_code_and_city"])
    phones = phone.normalise_series(staged["phone"])
    emails = email.normalise_series(staged["email"])
    accounts = iban.normalise_series(staged["account"])
    products = product.normalise_series(staged["product"])
    metering = metering_point.normalise_series(staged["metering_point"])

    street_given = place["street_address"].notna().to_numpy()
    city_given = place["city"].notna().to_numpy()
    postal_status = place["postal_status"].to_numpy()
    postal_ok = np.isin(postal_status, (Status.VALID, Status.PADDED))
    any_address = street_given | city_given | (postal_status != Status.MISSING)
    code_status = code["status"].to_numpy()
    raised: dict[Flag, np.ndarray] = {
        Flag.PERSONAL_ID_MISSING: code_status == Status.MISSING,
        Flag.PERSONAL_ID_INVALID: np.isin(code_status, (Status.INVALID, Status.BAD_CHECK)),
        Flag.PERSONAL_ID_TEMPORARY: code_status == Status.TEMPORARY,
        Flag.PERSONAL_ID_FUTURE_BIRTH_DATE: code_status == Status.FUTURE,
        Flag.PERSONAL_ID_IMPLAUSIBLE_BIRTH_DATE: code_status == Status.TOO_OLD,
        Flag.PERSONAL_ID_REPAIRED: code["repaired"].to_numpy(),
        Flag.BIRTH_DATE_FROM_INVALID_CODE: code["birth_date_from_invalid_code"].to_numpy(),
        Flag.NAME_INCOMPLETE: (person["first_names"].isna() | person["last_name"].isna()).to_numpy(),
        Flag.ADDRESS_INCOMPLETE: any_address & ~(street_given & city_given & postal_ok),
        Flag.POSTAL_CODE_INVALID: postal_status == Status.INVALID,
        Flag.POSTAL_CODE_PADDED: postal_status == Status.PADDED,
        Flag.PHONE_INVALID: phones["status"].to_numpy() == Status.INVALID,
        Flag.EMAIL_INVALID: emails["status"].to_numpy() == Status.INVALID,
        Flag.ACCOUNT_INVALID: accounts["status"].to_numpy() == Status.INVALID,
        Flag.ACCOUNT_CONVERTED_FROM_DOMESTIC: accounts["converted"].to_numpy(),
        Flag.ACCOUNT_REPAIRED: accounts["repaired"].to_numpy(),
        Flag.BIC_UNKNOWN: (accounts["iban"].notna() & accounts["bic"].isna()).to_numpy(),
        Flag.PRODUCT_UNKNOWN: products["status"].to_numpy() == Status.INVALID,
        Flag.METERING_POINT_INVALID: metering["status"].to_numpy() == Status.INVALID,
    }

    # Quarantine reasons, the reader's own first.
    staged_reason = _text.to_series(_text.arrow_collapse_whitespace(_text.to_arrow(staged["reject_reason"])), index)
    no_identity = (person["first_names"].isna() & person["last_name"].isna()).to_numpy() & (code_status == Status.MISSING)
    reason = np.select(
        [staged_reason.notna().to_numpy(), too_long, record_id.isna().to_numpy(),
         staged["observed_at"].isna().to_numpy(), no_identity],
        [staged_reason.to_numpy(dtype=object, na_value=None), Reason.VALUE_TOO_LONG.value,
         Reason.MISSING_RECORD_ID.value, Reason.INVALID_TIMESTAMP.value, Reason.NO_IDENTITY.value],
        default=None)

    out = pd.DataFrame({
        "channel": staged["channel"].astype("string[pyarrow]"),
        "source_record_id": record_id,
        "record_number": staged["record_number"].astype("int64"),
        "observed_at": staged["observed_at"].astype("datetime64[ns, UTC]"),
        "first_names": person["first_names"],
        "last_name": person["last_name"],
        "personal_id": code["personal_id"],
        "birth_date": code["birth_date"].astype("datetime64[ns]"),
        "street_address": place["street_address"],
        "postal_code": place["postal_code"],
        "city": place["city"],
        "phone": phones["phone"],
        "email": emails["email"],
        "iban": accounts["iban"],
        "bic": accounts["bic"],
        "product": products["product"],
        "metering_point": metering["metering_point"],
        "marketing_prohibited": staged["marketing_prohibited"].astype("boolean"),
        "identity_verified": staged["identity_verified"].astype(bool),
        "quality_flags": combine_flags(staged["read_flags"], raised),
        "reject_reason": pd.Series(reason, index=index, dtype="object").astype("string[pyarrow]"),
    }, index=index)
    return out[list(CANONICAL_COLUMNS)]
