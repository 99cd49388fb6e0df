"""Synthetic people living in households, with their true details.

Households are what makes matching hard (docs/intake_formats.md): members share a street
address and usually a surname, sometimes a landline, an e-mail address or a
joint bank account; a son may carry his father's exact names; twins share a
birth date. Everything is sampled column-wise with numpy from the pools; no
Faker call per person.

Identity codes are unique per person. Individual numbers are handed out per
(birth date, century sign, sex) group without repeats; some people with one of
the 2023 century signs get the same individual number as a classic-sign person
born the same day, so their codes differ only by the sign (two different people).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth import identifiers, pools
from synth.noise import ascii_fold

# Roles in a household.
HEAD, PARTNER, CHILD, MATE = "head", "partner", "child", "mate"

# Household size among people who register (adults at one address).
_SIZE = np.array([1, 2, 3, 4, 5])
_SIZE_P = np.array([0.45, 0.35, 0.12, 0.06, 0.02])
# Number of first names.
_FIRST_NAME_COUNT_P = np.array([0.08, 0.60, 0.30, 0.02])

RATES = {
    "couple_same_surname": 0.65,
    "couple_double_surname": 0.08,
    "twins": 0.08,            # of households with two or more children
    "junior": 0.10,           # of households with a father and a son
    "junior_named_after": 0.0,  # of juniors: the father's first given name only, the rest his own
    "temporary_code": 0.003,
    "new_century_sign": 0.012,
    "new_sign_same_number": 0.5,
    "hyphenated_first_name": 0.03,
    "double_surname": 0.02,
    "minor": 0.015,           # children aged 16-17
    "no_mobile": 0.03,
    "has_account": 0.8,
    "joint_account": 0.25,    # of partners whose head has an account
    "shared_email": 0.10,     # of households with a partner
    "marketing_prohibited": 0.18,
    # Kinds of two-person households (couple, parent_child, flatmates) and of larger
    # ones (family, single_parent, flatmates).
    "two_person_kinds": (0.72, 0.15, 0.13),
    "larger_kinds": (0.75, 0.15, 0.10),
    "landline_old": 0.35,     # of households whose head is over 65
    "landline_young": 0.06,   # of other households
}


@dataclass
class Addresses:
    """Every address anyone lives at, growing as people move."""

    street_address: np.ndarray  # object str, e.g. 'Rautatienkatu 5 B 12'
    postal_code: np.ndarray     # object str, 5 digits
    city: np.ndarray            # int index into pools.places().cities

    def __len__(self) -> int:
        return len(self.city)

    def add(self, rng: np.random.Generator, city: np.ndarray) -> np.ndarray:
        """New addresses in the given cities; returns their ids."""
        street, postal = _make_addresses(rng, city, existing=set(zip(self.street_address.tolist(),
                                                                        self.postal_code.tolist())))
        first = len(self.city)
        self.street_address = np.concatenate([self.street_address, street])
        self.postal_code = np.concatenate([self.postal_code, postal])
        self.city = np.concatenate([self.city, city])
        return np.arange(first, len(self.city))


@dataclass
class Population:
    # per household
    household_city: np.ndarray
    household_address: np.ndarray  # address id
    # per person
    household: np.ndarray          # household index
    role: np.ndarray               # object str
    sex: np.ndarray                # 'F' / 'M'
    language: np.ndarray           # 'fi' / 'sv'
    birth_date: np.ndarray         # datetime64[D]
    personal_id: np.ndarray        # object str
    temporary_code: np.ndarray     # bool
    first_names: np.ndarray        # object str
    last_name: np.ndarray          # object str
    partner: np.ndarray            # person index of the partner, -1 if none
    junior: np.ndarray             # bool: a son with his father's (the head's) exact names
    twin: np.ndarray               # bool: both children of a pair of twins
    household_kind: np.ndarray     # per household: single, couple, parent_child, flatmates, family, single_parent
    email: np.ndarray              # object str
    mobile: np.ndarray             # object str E.164, '' if none
    landline: np.ndarray           # object str E.164, '' if none
    bban: np.ndarray               # int64, 0 if no account
    iban: np.ndarray               # object str, '' if no account
    marketing_prohibited: np.ndarray  # bool
    addresses: Addresses

    def __len__(self) -> int:
        return len(self.household)

    @property
    def households(self) -> int:
        return len(self.household_city)


def _age_weights() -> tuple[np.ndarray, np.ndarray]:
    ages = np.arange(18, 96)
    weights = np.where(ages <= 72, 1.0, np.maximum(0.08, 1.0 - (ages - 72) / 25))
    return ages, weights / weights.sum()


def _make_addresses(rng: np.random.Generator, city: np.ndarray,
                    existing: set[tuple[str, str]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Street addresses and postal codes in the given cities, unique among themselves and `existing`."""
    places = pools.places()
    n = len(city)
    big = places.city_weights[city] > 0.01
    apartment = rng.random(n) < np.where(big, 0.72, 0.42)
    street = np.empty(n, dtype=object)
    postal = np.empty(n, dtype=object)
    u_street, u_postal = rng.random(n), rng.random(n)
    for c in np.unique(city).tolist():
        where = np.flatnonzero(city == c)
        names, codes = places.streets[c], places.postal_codes[c]
        street[where] = names[(u_street[where] * len(names)).astype(int)]
        postal[where] = codes[(u_postal[where] * len(codes)).astype(int)]
    stairs = np.array(list("AAAABBBCCDEF"), dtype=object)
    seen = set(existing or ())
    out = np.empty(n, dtype=object)
    todo = np.arange(n)
    while len(todo):
        m = len(todo)
        number = np.where(apartment[todo], np.minimum(rng.geometric(0.08, m), 120),
                          np.minimum(rng.geometric(0.03, m), 250))
        stair = stairs[rng.integers(0, len(stairs), m)]
        stair = np.where(rng.random(m) < 0.2, "as.", stair)
        flat = rng.integers(1, 90, m)
        house_letter = np.where(rng.random(m) < 0.08, np.array(["a", "b", "c"], dtype=object)[rng.integers(0, 3, m)], "")
        retry = []
        for j, i in enumerate(todo.tolist()):
            if apartment[i]:
                text = f"{street[i]} {number[j]} {stair[j]} {flat[j]}"
            else:
                text = f"{street[i]} {number[j]}{house_letter[j]}"
            key = (text, postal[i])
            if key in seen:
                retry.append(i)
            else:
                seen.add(key)
                out[i] = text
        todo = np.array(retry, dtype=int)
    return out, postal


def _choose(rng: np.random.Generator, pool: pools.NamePool, n: int) -> np.ndarray:
    return pool.names[rng.choice(len(pool.names), size=n, p=pool.weights)]


def _first_names(rng: np.random.Generator, sex: np.ndarray, language: np.ndarray,
                 rates: dict = RATES) -> np.ndarray:
    """Space-separated first names, 1-4 of them, some hyphenated."""
    name_pools = pools.names().first
    n = len(sex)
    drawn = np.empty((n, 5), dtype=object)
    for (lang, s), pool in name_pools.items():
        where = np.flatnonzero((language == lang) & (sex == s))
        if len(where):
            drawn[where] = _choose(rng, pool, len(where) * 5).reshape(-1, 5)
    count = rng.choice(np.arange(1, 5), size=n, p=_FIRST_NAME_COUNT_P)
    hyphen = rng.random(n) < rates["hyphenated_first_name"]
    out = np.empty(n, dtype=object)
    for i in range(n):
        wanted = count[i] + (1 if hyphen[i] else 0)
        names: list[str] = []
        for name in drawn[i]:
            if name not in names:
                names.append(name)
            if len(names) == wanted:
                break
        if hyphen[i] and len(names) >= 2 and "-" not in names[0] and "-" not in names[1]:
            names = [names[0] + "-" + names[1]] + names[2:]
        out[i] = " ".join(names)
    return out


def _surnames(rng: np.random.Generator, language: np.ndarray, rates: dict = RATES) -> np.ndarray:
    last_pools = pools.names().last
    out = np.empty(len(language), dtype=object)
    for lang, pool in last_pools.items():
        where = np.flatnonzero(language == lang)
        out[where] = _choose(rng, pool, len(where))
    double = np.flatnonzero(rng.random(len(language)) < rates["double_surname"])
    if len(double):
        other = _choose(rng, last_pools["fi"], len(double))
        out[double] = [a + "-" + b if a != b else a for a, b in zip(out[double], other)]
    return out


def _individual_numbers(rng: np.random.Generator, birth_days: np.ndarray, sign: np.ndarray,
                        male: np.ndarray, temporary: np.ndarray, classic: np.ndarray,
                        rates: dict = RATES) -> np.ndarray:
    """Individual numbers, unique per (birth date, sign); parity by sex; 900-999 for temporary codes."""
    frame = pd.DataFrame({"day": birth_days, "sign": sign, "male": male, "temp": temporary})
    rank = frame.groupby(["day", "sign", "male", "temp"], sort=False).cumcount().to_numpy()
    slots = np.where(temporary, 50, 449)
    if (rank >= slots).any():
        raise ValueError("too many people born on one day for one century sign")
    # Per group: a random start and a step coprime with the slot count (449 is prime).
    group = frame.groupby(["day", "sign", "male", "temp"], sort=False).ngroup().to_numpy()
    group_start = rng.integers(0, 449, group.max() + 1 if len(group) else 0)
    group_step = rng.choice(np.array([1, 3, 7, 9, 11, 13, 17, 19, 21, 23]), group.max() + 1 if len(group) else 0)
    slot = (group_start[group] + rank * group_step[group]) % slots
    base = np.where(temporary, np.where(male, 901, 900), np.where(male, 3, 2))
    number = base + 2 * slot

    # Some people with a new sign share the individual number of a classic-sign person
    # born the same day: codes equal but for the sign.
    new_sign = ~classic & ~temporary
    if new_sign.any():
        old = pd.DataFrame({"day": birth_days[classic & ~temporary], "male": male[classic & ~temporary],
                            "rank": rank[classic & ~temporary], "number": number[classic & ~temporary]})
        idx = np.flatnonzero(new_sign & (rng.random(len(sign)) < rates["new_sign_same_number"]))
        want = pd.DataFrame({"day": birth_days[idx], "male": male[idx], "rank": rank[idx], "i": idx})
        hit = want.merge(old, on=["day", "male", "rank"], how="inner")
        number[hit["i"].to_numpy()] = hit["number"].to_numpy()
    return number


def _emails(rng: np.random.Generator, first_names: np.ndarray, last_name: np.ndarray,
            birth_year: np.ndarray) -> np.ndarray:
    """Addresses derived from names at synthetic domains, unique per person."""
    n = len(first_names)
    fold_cache: dict[str, str] = {}

    def fold(name: str) -> str:
        out = fold_cache.get(name)
        if out is None:
            out = fold_cache[name] = ascii_fold(name).lower().replace(" ", "").replace("'", "")
        return out

    pattern = rng.choice(6, size=n, p=[0.5, 0.1, 0.1, 0.1, 0.1, 0.1])
    domain = np.array(pools.EMAIL_DOMAINS, dtype=object)[rng.choice(len(pools.EMAIL_DOMAINS), size=n,
                                                                     p=pools.EMAIL_DOMAIN_WEIGHTS)]
    local = np.empty(n, dtype=object)
    for i in range(n):
        names = first_names[i].split(" ")
        first, last = fold(names[0]), fold(last_name[i])
        p = pattern[i]
        if p == 0:
            local[i] = f"{first}.{last}"
        elif p == 1:
            local[i] = f"{first}.{fold(names[1])[0]}.{last}" if len(names) > 1 else f"{first}.{last}"
        elif p == 2:
            local[i] = f"{first[0]}{last}"
        elif p == 3:
            local[i] = f"{first}{last}"
        elif p == 4:
            local[i] = f"{first}.{last}{birth_year[i] % 100:02d}"
        else:
            local[i] = f"{last}.{first}"
    address = pd.Series(local + "@" + domain)
    repeat = address.groupby(address, sort=False).cumcount().to_numpy()
    dup = np.flatnonzero(repeat > 0)
    address = address.to_numpy(dtype=object)
    for i in dup.tolist():
        user, _, dom = address[i].partition("@")
        address[i] = f"{user}{repeat[i] + 1}@{dom}"
    # A suffixed address may still collide with a name that already ends in that digit.
    seen: set[str] = set()
    for i in range(n):
        while address[i] in seen:
            user, _, dom = address[i].partition("@")
            address[i] = f"{user}x@{dom}"
        seen.add(address[i])
    return address


def _unique_numbers(rng: np.random.Generator, prefixes: np.ndarray, digits: int) -> np.ndarray:
    """E.164 numbers '+358' + prefix + `digits` random digits, unique."""
    n = len(prefixes)
    out = np.empty(n, dtype=object)
    seen: set[str] = set()
    body = rng.integers(10 ** (digits - 1), 10 ** digits, n)
    for i in range(n):
        number = f"+358{prefixes[i]}{body[i]}"
        while number in seen:
            number = f"+358{prefixes[i]}{rng.integers(10 ** (digits - 1), 10 ** digits)}"
        seen.add(number)
        out[i] = number
    return out


def _accounts(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unique BBANs (int64) at the Finnish bank groups' codes."""
    codes = [c for c, _ in pools.BANK_CODES]
    weights = np.array([w for _, w in pools.BANK_CODES])
    code = np.array(codes, dtype=object)[rng.choice(len(codes), size=n, p=weights / weights.sum())]
    code_len = np.array([len(c) for c in code])
    code_int = np.array([int(c) for c in code], dtype=np.int64)
    fill = rng.integers(0, 10 ** 5, n)
    prefix = code_int * 10 ** (6 - code_len) + fill % (10 ** (6 - code_len))
    length = rng.choice(np.arange(3, 8), size=n, p=[0.25, 0.25, 0.2, 0.15, 0.15])
    # The first two digits of the body are non-zero so the short domestic form is unambiguous.
    head = rng.integers(1, 10, n) * 10 + rng.integers(1, 10, n)
    tail = rng.integers(0, 10 ** 5, n) % (10 ** (length - 2))
    body = head * 10 ** (length - 2) + tail
    bban = identifiers.bban_array(prefix, body, length)
    _, first = np.unique(bban, return_index=True)
    unique = np.zeros(n, dtype=bool)
    unique[first] = True
    bban[~unique] = 0  # the rare collision simply has no account
    return bban


def build(rng: np.random.Generator, n_people: int, today: datetime.date, rates: dict | None = None) -> Population:
    """At least `n_people` people in households (the last household may overshoot).

    `rates` replaces RATES (a noise profile's households: synth.varied);
    the same draws are made whatever the rates, only the thresholds differ.
    """
    rates = RATES if rates is None else {**RATES, **rates}
    places = pools.places()
    # Households
    mean_size = float((_SIZE * _SIZE_P).sum())
    n_households = max(1, int(np.ceil(n_people / mean_size * 1.05)) + 2)
    size = rng.choice(_SIZE, size=n_households, p=_SIZE_P)
    while size.sum() < n_people:  # the estimate fell short: more households
        size = np.concatenate([size, rng.choice(_SIZE, size=n_households // 10 + 1, p=_SIZE_P)])
    cum = np.cumsum(size)
    n_households = int(np.searchsorted(cum, n_people) + 1)
    size = size[:n_households]
    kind = np.where(size == 1, "single",
                    np.where(size == 2, rng.choice(["couple", "parent_child", "flatmates"], size=n_households,
                                                   p=list(rates["two_person_kinds"])),
                             rng.choice(["family", "single_parent", "flatmates"], size=n_households,
                                        p=list(rates["larger_kinds"]))))
    city = rng.choice(len(places.cities), size=n_households, p=places.city_weights)
    household_language = np.where(rng.random(n_households) < places.swedish_share[city], "sv", "fi")
    addresses = Addresses(np.empty(0, dtype=object), np.empty(0, dtype=object), np.empty(0, dtype=np.int64))
    household_address = addresses.add(rng, city)

    # Members
    household = np.repeat(np.arange(n_households), size)
    member = np.arange(len(household)) - np.repeat(cum[:n_households] - size, size)
    hkind = kind[household]
    role = np.where(member == 0, HEAD,
                    np.where(hkind == "flatmates", MATE,
                             np.where((member == 1) & np.isin(hkind, ["couple", "family"]), PARTNER, CHILD)))
    role = np.where(hkind == "single", HEAD, role).astype(object)
    n = len(household)

    # Ages: children first, parents 20-38 years older than their oldest child.
    ages, age_p = _age_weights()
    head_age = rng.choice(ages, size=n_households, p=age_p)
    flat_age = rng.integers(19, 36, n)
    child_base = rng.integers(18, 31, n_households)
    has_children = np.isin(kind, ["family", "single_parent", "parent_child"])
    head_age = np.where(has_children, np.minimum(95, child_base + 8 + rng.integers(20, 31, n_households)), head_age)
    child_age = child_base[household] + rng.integers(0, 9, n)
    minor = (role == CHILD) & (rng.random(n) < rates["minor"])
    child_age = np.where(minor, rng.integers(16, 18, n), child_age)
    age = np.select([role == HEAD, role == PARTNER, role == CHILD],
                    [head_age[household], np.clip(head_age[household] + np.rint(rng.normal(0, 3.5, n)).astype(int), 18, 95),
                     child_age], flat_age)
    age = np.where((hkind == "flatmates") & (role == HEAD), flat_age, age)
    # Birth dates: the age was reached within the last year, so never in the future.
    start_ordinal = today.toordinal()
    birth_ordinal = start_ordinal - np.floor(age * 365.2425).astype(np.int64) - rng.integers(1, 365, n)

    # Sex: partners mostly of the other sex.
    sex = np.where(rng.random(n) < 0.5, "F", "M").astype(object)
    head_index = np.repeat(cum[:n_households] - size, size)
    other = np.where(sex[head_index] == "F", "M", "F")
    sex = np.where((role == PARTNER) & (rng.random(n) < 0.95), other, sex).astype(object)

    # Twins: the second child shares the first child's birth date.
    first_child = head_index + np.where(np.isin(hkind, ["family"]), 2, 1)
    twin = (role == CHILD) & (member == first_child - head_index + 1) & (rng.random(n) < rates["twins"])
    twin &= first_child < n
    birth_ordinal = np.where(twin, birth_ordinal[np.minimum(first_child, n - 1)], birth_ordinal)
    twin_pair = twin.copy()
    twin_pair[first_child[twin]] = True

    language = household_language[household].astype(object)
    # Mixed-language couples: a partner speaking the other language.
    switch = (role == PARTNER) & (rng.random(n) < np.where(language == "sv", 0.25, 0.004))
    language = np.where(switch, np.where(language == "sv", "fi", "sv"), language).astype(object)

    # Names
    first_names = _first_names(rng, sex, language, rates)
    own_surname = _surnames(rng, language, rates)
    family_surname = own_surname[head_index]
    u = rng.random(n)
    last_name = own_surname.copy()
    partner_same = (role == PARTNER) & (u < rates["couple_same_surname"])
    partner_double = (role == PARTNER) & (u >= rates["couple_same_surname"]) & \
        (u < rates["couple_same_surname"] + rates["couple_double_surname"])
    last_name[partner_same] = family_surname[partner_same]
    last_name[partner_double] = [f"{a}-{b}" if "-" not in a + b and a != b else b
                                 for a, b in zip(own_surname[partner_double], family_surname[partner_double])]
    child = role == CHILD
    last_name[child] = np.where(rng.random(child.sum()) < 0.95, family_surname[child], own_surname[child])

    # Junior: a son with his father's exact names, or named after him: his father's first
    # given name and his own others ("Matti Juhani", son of "Matti Kalevi").
    junior = child & (sex == "M") & (sex[head_index] == "M") & (member == first_child - head_index)
    junior &= rng.random(n) < rates["junior"]
    own_names = first_names[junior]  # the juniors' own, before their father's replace them
    first_names[junior] = first_names[head_index[junior]]
    # Drawn from a spawned generator: the main stream (every other draw) stays as it was.
    named_after = junior & (np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0]).random(n)
                            < rates["junior_named_after"])
    first_names[named_after] = [f"{father.split()[0]} {' '.join(own.split()[1:]) or own.split()[0]}"
                                for father, own in zip(first_names[named_after], own_names[named_after[junior]])]
    last_name[junior] = last_name[head_index[junior]]

    partner = np.full(n, -1)
    partner_rows = np.flatnonzero(role == PARTNER)
    partner[partner_rows] = head_index[partner_rows]
    partner[head_index[partner_rows]] = partner_rows

    # Identity codes
    birth = np.array(birth_ordinal, dtype="int64") - datetime.date(1970, 1, 1).toordinal()
    birth_date = birth.astype("datetime64[D]")
    years = birth_date.astype("datetime64[Y]").astype(int) + 1970
    months = birth_date.astype("datetime64[M]").astype(int) % 12 + 1
    days = (birth_date - birth_date.astype("datetime64[M]")).astype(int) + 1
    new_sign = rng.random(n) < rates["new_century_sign"]
    pick = rng.choice(5, size=n, p=[0.6, 0.2, 0.1, 0.06, 0.04])
    sign = np.where(years >= 2000,
                    np.where(new_sign, np.array(list("BCDEF"))[pick], "A"),
                    np.where(new_sign, np.array(list("YXWVU"))[pick], "-"))
    temporary = rng.random(n) < rates["temporary_code"]
    classic = (sign == "-") | (sign == "A")
    individual = _individual_numbers(rng, birth, sign, sex == "M", temporary, classic, rates)
    personal_id = identifiers.hetu_array(days, months, years, sign, individual)

    # Contact details
    email = _emails(rng, first_names, last_name, years)
    shared = np.flatnonzero((role == PARTNER) & (rng.random(n) < rates["shared_email"]))
    email[shared] = email[head_index[shared]]
    mobile_prefix = np.array(pools.MOBILE_PREFIXES, dtype=object)[
        rng.choice(len(pools.MOBILE_PREFIXES), size=n, p=pools.MOBILE_PREFIX_WEIGHTS)]
    mobile = _unique_numbers(rng, mobile_prefix, 7)
    mobile[(rng.random(n) < rates["no_mobile"]) & (age > 60)] = ""
    old_household = head_age > 65
    has_landline = rng.random(n_households) < np.where(old_household, rates["landline_old"], rates["landline_young"])
    landline_h = np.full(n_households, "", dtype=object)
    lh = np.flatnonzero(has_landline)
    landline_h[lh] = _unique_numbers(rng, places.area_code[city[lh]], 7)
    landline = landline_h[household]

    # Bank accounts: partners sometimes share the head's (a joint account).
    bban = np.where(rng.random(n) < rates["has_account"], _accounts(rng, n), 0)
    joint = (role == PARTNER) & (bban[head_index] > 0) & (rng.random(n) < rates["joint_account"])
    bban[joint] = bban[head_index[joint]]
    iban = np.full(n, "", dtype=object)
    has = bban > 0
    iban[has] = identifiers.iban_array(bban[has])

    return Population(
        household_city=city, household_address=household_address,
        household=household, role=role, sex=sex, language=language, birth_date=birth_date,
        personal_id=personal_id, temporary_code=temporary, first_names=first_names, last_name=last_name,
        partner=partner, junior=junior, twin=twin_pair, household_kind=kind.astype(object), email=email, mobile=mobile, landline=landline, bban=bban, iban=iban,
        marketing_prohibited=rng.random(n) < rates["marketing_prohibited"], addresses=addresses,
    )
