"""Micro-benchmark of `pipeline.normalise.normalise_records` on synthetic staged rows.

    .venv/bin/python bench/normalise_micro.py [ROWS]   # default 1,000,000

Builds ROWS staged records shaped like the five channels' (separate or full
names in either order, codes with spaces or lower case, national and
international phones, IBANs and domestic accounts, postal codes that lost their
zeros, a few typos and O-for-zero) from Faker pools and numpy, then times
`normalise_records` and prints records per second and the flag counts. Only
synthetic values; nothing personal is printed.
"""

from __future__ import annotations

import datetime
import resource
import sys
import time

import numpy as np
import pandas as pd
from faker import Faker

from pipeline.channels.base import staged_frame
from pipeline.normalise import normalise_records
from pipeline.normalise.hetu import CHECK_CHARACTERS

TODAY = datetime.date(2026, 11, 24)
SIGNS = np.array(list("-YXWVUABCDEF"))


def _pools(seed: int, size: int = 3000) -> dict[str, np.ndarray]:
    fake = Faker(["fi_FI", "sv_SE"])
    fake.seed_instance(seed)
    return {
        "first": np.array([fake.first_name() for _ in range(size)], dtype=object),
        "last": np.array([fake.last_name() for _ in range(size)], dtype=object),
        "street": np.array([fake.street_name() for _ in range(size // 3)], dtype=object),
        "city": np.array([Faker("fi_FI").city() for _ in range(300)], dtype=object),
    }


def _codes(rng: np.random.Generator, n: int) -> np.ndarray:
    born = np.datetime64("1930-01-01") + rng.integers(0, 365 * 90, n).astype("timedelta64[D]")
    years = born.astype("datetime64[Y]").astype(int) + 1970
    months = born.astype("datetime64[M]").astype(int) % 12 + 1
    days = (born - born.astype("datetime64[M]")).astype(int) + 1
    individual = rng.integers(2, 900, n)
    nine = days * 10_000_000 + months * 100_000 + (years % 100) * 1000 + individual
    check = np.array(list(CHECK_CHARACTERS))[nine % 31]
    sign = np.where(years >= 2000, "A", np.where(rng.random(n) < 0.9, "-", SIGNS[rng.integers(1, 6, n)]))
    return np.char.add(np.char.add(np.char.add(
        np.char.add(np.char.zfill(days.astype(str), 2), np.char.zfill(months.astype(str), 2)),
        np.char.zfill((years % 100).astype(str), 2)), np.char.add(sign, np.char.zfill(individual.astype(str), 3))),
        check).astype(object)


def _luhn_fix(bodies: np.ndarray) -> np.ndarray:
    """Append the Luhn check digit to 13-digit strings."""
    digits = np.frombuffer("".join(bodies).encode(), dtype=np.uint8).reshape(-1, 13).astype(np.int64) - 48
    doubled = digits[:, ::-2] * 2
    total = (doubled - 9 * (doubled > 9)).sum(axis=1) + digits[:, -2::-2].sum(axis=1)
    return np.char.add(bodies.astype(str), ((10 - total % 10) % 10).astype(str)).astype(object)


def build(n: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pools = _pools(seed)
    channel = np.array(["web", "phone", "mail", "email", "in_person"])[rng.choice(5, n, p=[.35, .2, .15, .15, .15])]
    first = pools["first"][rng.integers(0, len(pools["first"]), n)]
    two = rng.random(n) < 0.5
    first = np.where(two, first + " " + pools["first"][rng.integers(0, len(pools["first"]), n)], first)
    last = pools["last"][rng.integers(0, len(pools["last"]), n)]
    shout = rng.random(n) < 0.1
    first = np.where(shout, np.char.upper(first.astype(str)).astype(object), first)
    last = np.where(shout, np.char.upper(last.astype(str)).astype(object), last)
    separate = np.isin(channel, ["web", "in_person"])
    surname_first = channel == "phone"
    full = np.where(surname_first, last + " " + first, first + " " + last)

    codes = _codes(rng, n)
    code_noise = rng.random(n)
    codes = np.where(code_noise < 0.05, np.char.lower(codes.astype(str)).astype(object), codes)
    codes = np.where((code_noise > 0.05) & (code_noise < 0.07), np.char.replace(codes.astype(str), "0", "O", 1)
                     .astype(object), codes)
    with_code = rng.random(n) < np.where(np.isin(channel, ["phone", "email"]), 0.6, 0.9)

    street = (pools["street"][rng.integers(0, len(pools["street"]), n)] + " "
              + rng.integers(1, 120, n).astype(str).astype(object))
    stair = rng.random(n) < 0.4
    street = np.where(stair, street + " " + np.array(list("ABCD"))[rng.integers(0, 4, n)] + " "
                      + rng.integers(1, 60, n).astype(str).astype(object), street)
    postal_numbers = rng.integers(100, 99999, n)
    postal = np.char.zfill(postal_numbers.astype(str), 5).astype(object)
    postal = np.where(channel == "in_person", postal_numbers.astype(str).astype(object), postal)
    city = pools["city"][rng.integers(0, len(pools["city"]), n)]
    city = np.where(rng.random(n) < 0.3, np.char.upper(city.astype(str)).astype(object), city)

    subscriber = rng.integers(0, 10_000_000, n).astype(str)
    phone = np.where(rng.random(n) < 0.6,
                     np.char.add("040 ", np.char.zfill(subscriber, 7)),
                     np.char.add("+358 50 ", np.char.zfill(subscriber, 7))).astype(object)
    phone = np.where(rng.random(n) < 0.02, np.char.add("00358 45", np.char.zfill(subscriber, 7)).astype(object), phone)
    fold = str.maketrans("äöåé", "aoae")
    ascii_last = np.array([s.lower().replace(" ", "").translate(fold) for s in last.astype(str)])
    email = np.char.add(np.char.add(ascii_last, "."),
                        np.char.add(rng.integers(0, 999, n).astype(str), "@example.fi")).astype(object)

    bank = np.array(["1", "2", "31", "33", "34", "36", "37", "38", "39", "405", "470", "5", "6", "8"])
    bodies = np.char.add(bank[rng.integers(0, len(bank), n)], "0000000000000")
    bodies = np.array([b[:13] for b in bodies.astype(str)], dtype=object)
    bodies = np.char.add(np.char.ljust(np.array([b[:6] for b in bodies], dtype=str), 6, "0"),
                         np.char.zfill(rng.integers(0, 10_000_000, n).astype(str), 7)).astype(object)
    bban = _luhn_fix(bodies)
    rearranged = [int(b + "151800") % 97 for b in bban]
    iban = np.array([f"FI{98 - r:02d}{b}" for r, b in zip(rearranged, bban)], dtype=object)
    spaced = np.array([" ".join(i[k:k + 4] for k in range(0, 18, 4)) for i in iban[:n // 3]], dtype=object)
    iban[:n // 3] = spaced
    # old domestic numbers in the phone and mail channels: the machine form's digits, hyphen after six
    domestic = np.array([b[:6] + "-" + b[6:].lstrip("0") if b[0] not in "45" else b[:6] + "-" + b[6] + b[7:].lstrip("0")
                         for b in bban], dtype=object)
    iban = np.where(np.isin(channel, ["phone", "mail"]) & (rng.random(n) < 0.4), domestic, iban)

    metering = np.char.add("643", np.char.zfill(rng.integers(0, 10**14, n).astype(str), 14)).astype(str)
    weights = np.where(np.arange(17)[::-1] % 2 == 0, 3, 1)
    digits = np.frombuffer("".join(metering).encode(), dtype=np.uint8).reshape(-1, 17).astype(np.int64) - 48
    metering = np.char.add(metering, ((10 - (digits * weights).sum(axis=1) % 10) % 10).astype(str)).astype(object)

    products = np.array(["electricity", "Sähkö", "Maakaasu", "Kaukolämpö", "Laajakaista", "TV", "el", "bredband",
                         "sähkösopimus", "district heat", "tv-paketti"], dtype=object)
    # plain mistakes: a digit off, a letter O for zero, a short number, a typo in a product
    def damage(values: np.ndarray, share: float) -> np.ndarray:
        hit = rng.random(n) < share
        out = values.copy()
        for i in np.flatnonzero(hit):
            text = out[i]
            if isinstance(text, str) and len(text) > 3:
                k = int(rng.integers(len(text) // 2, len(text)))
                out[i] = text[:k] + ("O" if text[k] == "0" else str((int(text[k]) + 1) % 10) if text[k].isdigit()
                                     else text[k]) + text[k + 1:]
        return out

    codes = damage(codes, 0.03)
    phone = damage(np.where(rng.random(n) < 0.02, np.char.add("040 ", subscriber[:n]).astype(object), phone), 0.01)
    iban = damage(iban, 0.02)
    metering = damage(metering, 0.02)
    email = np.where(rng.random(n) < 0.01, np.char.replace(email.astype(str), "@", "").astype(object), email)
    products = np.append(products, ["sähkö sopimus", "Laajakaita", "vesi", "fjärrvärme", "el-avtal"])

    columns = {
        "channel": channel,
        "source_record_id": np.char.add(channel.astype(str), np.arange(n).astype(str)).astype(object),
        "first_names": np.where(separate, first, None),
        "last_name": np.where(separate, last, None),
        "full_name": np.where(separate, None, full),
        "name_order": np.where(separate, None, np.where(surname_first, "surname_first", "given_first")),
        "personal_id": np.where(with_code, codes, None),
        "street_address": np.where(channel == "email", None, street),
        "postal_code": np.where(np.isin(channel, ["mail", "email"]), None, postal),
        "city": np.where(np.isin(channel, ["mail", "email"]), None, city),
        "postal_code_and_city": np.where(channel == "mail", postal + " " + city, None),
        "address_line": np.where(channel == "email", street + ", " + postal + " " + city, None),
        "phone": np.where(rng.random(n) < 0.8, phone, None),
        "email": np.where(rng.random(n) < 0.7, email, None),
        "account": np.where(rng.random(n) < 0.5, iban, None),
        "product": products[rng.integers(0, len(products), n)],
        "metering_point": np.where(rng.random(n) < 0.6, metering, None),
        "record_number": np.arange(1, n + 1),
        "observed_at": pd.Timestamp("2026-11-24T10:00Z") + pd.to_timedelta(rng.integers(0, 86400, n), unit="s"),
        "marketing_prohibited": np.where(rng.random(n) < 0.3, True, False),
        "identity_verified": rng.random(n) < 0.3,
    }
    return staged_frame(columns, n)


def main(rows: int) -> None:
    started = time.perf_counter()
    staged = build(rows)
    built = time.perf_counter()
    print(f"built {rows:,} staged rows in {built - started:.1f} s")
    start, cpu = time.perf_counter(), time.process_time()
    canonical = normalise_records(staged, TODAY)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    print(f"normalise_records: {seconds:.2f} s wall ({cpu_seconds:.2f} s CPU), {rows / seconds:,.0f} records/s")
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
    flags = canonical["quality_flags"].str.split().explode().value_counts()
    print(flags.to_string())
    print(canonical["reject_reason"].value_counts(dropna=False).to_string())


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
