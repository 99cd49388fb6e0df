"""Which records the people send: channel, time, product and the state of their life.

A person sends one or several records (skewed: most send one). Between two of a
person's records life may change: they move (alone, or the whole household
moves), take a new surname at marriage, or give or withdraw a direct-marketing
prohibition. Records before the change carry the old state, records after it
the new one, and the ground truth names the change (`events`).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth import identifiers, pools
from synth.population import Population

CHANNELS: tuple[str, ...] = ("web", "phone", "mail", "email", "in_person")
WEB, PHONE, MAIL, EMAIL, IN_PERSON = range(5)
CHANNEL_MIX = np.array([0.50, 0.20, 0.10, 0.10, 0.10])

# Records per person: 1..10, skewed.
RECORDS_PER_PERSON = np.arange(1, 11)
RECORDS_PER_PERSON_P = np.array([0.62, 0.20, 0.08, 0.04, 0.02, 0.015, 0.01, 0.007, 0.005, 0.003])
RECORDS_PER_PERSON_P = RECORDS_PER_PERSON_P / RECORDS_PER_PERSON_P.sum()
MEAN_RECORDS_PER_PERSON = float((RECORDS_PER_PERSON * RECORDS_PER_PERSON_P).sum())

# Relative volume by weekday (Mon..Sun) and by hour, per channel.
_WEEKDAY = {
    WEB: [1, 1, 1, 1, 0.9, 0.7, 0.8], PHONE: [1, 1, 1, 1, 0.9, 0.3, 0.05],
    MAIL: [1.2, 1, 1, 1, 1, 0.05, 0.02], EMAIL: [1, 1, 1, 1, 0.9, 0.5, 0.5],
    IN_PERSON: [1, 1, 1, 1, 1, 0.4, 0.05],
}
_OFFICE_HOURS = [0] * 8 + [1, 1.2, 1.2, 1.1, 1, 1, 1, 0.9, 0.7, 0.3] + [0] * 6
_HOURS = {
    WEB: [0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.6, 0.8, 1, 1, 1, 1, 1, 1, 1, 1, 1.1, 1.3, 1.5, 1.6, 1.4, 1, 0.5],
    PHONE: _OFFICE_HOURS, MAIL: [1] + [0] * 23, EMAIL: [0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.4, 0.8, 1, 1, 1, 1, 1,
                                                       1, 1, 1, 1, 1, 1, 1, 1, 0.9, 0.6, 0.4],
    IN_PERSON: [0] * 9 + [1, 1.2, 1.2, 1.1, 1, 1, 1, 0.8] + [0] * 7,
}

RATES = {
    "household_move": 0.05,      # of households with two or more records
    "move_alone": 0.04,          # of people with two or more records
    "surname_change": 0.03,      # of people aged 20-55 with two or more records
    "marketing_change": 0.06,    # of people with two or more records
    "same_product_again": 0.55,  # a later record about the product of the first one
    "web_authenticated": 0.65,
    "identity_checked": 0.88,    # at the service desk
}


@dataclass
class Plan:
    """One row per intended record, sorted by person then time."""

    person: np.ndarray        # person index
    channel: np.ndarray       # 0..4
    day: np.ndarray           # 0..days-1
    seconds: np.ndarray       # local seconds since the first day's midnight
    order: np.ndarray         # the record's place among the person's records
    address: np.ndarray       # address id in force
    last_name: np.ndarray     # surname in force (object str)
    marketing_prohibited: np.ndarray  # bool, in force
    product: np.ndarray       # index into pools.PRODUCTS
    metering_point: np.ndarray  # object str, '' for products without one
    verified: np.ndarray      # web: strong authentication; in_person: identity checked
    events: np.ndarray        # object str: life changes in force ('' none)
    source_record_id: np.ndarray  # object str
    start: datetime.date
    days: int

    def __len__(self) -> int:
        return len(self.person)


def records_per_person(rng: np.random.Generator, n_people: int) -> np.ndarray:
    return rng.choice(RECORDS_PER_PERSON, size=n_people, p=RECORDS_PER_PERSON_P)


def metering_points(address: np.ndarray, product: np.ndarray) -> np.ndarray:
    """The GSRN of an address's connection for a metered product ('' otherwise).

    Same address and product, same metering point: household members share it.
    """
    out = np.full(len(address), "", dtype=object)
    for p, company in pools.METERED_PRODUCTS.items():
        where = np.flatnonzero(product == pools.PRODUCTS.index(p))
        if len(where):
            # A fixed bijective scramble of the address id, so neighbours do not look alike.
            serial = (address[where].astype(np.int64) * 7_919_113 + 12_345) % 10 ** 11
            seventeen = int("643" + company) * 10 ** 11 + serial
            out[where] = identifiers.gsrn_array(seventeen)
    return out


def _times(rng: np.random.Generator, channel: np.ndarray, days: int, start: datetime.date) -> tuple[np.ndarray, np.ndarray]:
    n = len(channel)
    day = np.zeros(n, dtype=np.int64)
    seconds = np.zeros(n, dtype=np.int64)
    weekdays = [(start.weekday() + d) % 7 for d in range(days)]
    for c in range(len(CHANNELS)):
        where = np.flatnonzero(channel == c)
        if not len(where):
            continue
        w = np.array([_WEEKDAY[c][wd] for wd in weekdays], dtype=float)
        day[where] = rng.choice(days, size=len(where), p=w / w.sum())
        h = np.array(_HOURS[c], dtype=float)
        hour = rng.choice(24, size=len(where), p=h / h.sum())
        within = np.zeros(len(where), dtype=np.int64) if c == MAIL else rng.integers(0, 3600, len(where))
        seconds[where] = day[where] * 86400 + hour * 3600 + within
    return day, seconds


def _ids(rng: np.random.Generator, channel: np.ndarray, day: np.ndarray, seconds: np.ndarray,
         start: datetime.date, sender_domain: np.ndarray) -> np.ndarray:
    """Record ids, unique per channel, numbered in time order."""
    n = len(channel)
    ids = np.empty(n, dtype=object)
    order = np.lexsort((np.arange(n), seconds))
    frame = pd.DataFrame({"channel": channel[order], "day": day[order]})
    per_day = frame.groupby(["channel", "day"], sort=False).cumcount().to_numpy() + 1
    per_channel = frame.groupby("channel", sort=False).cumcount().to_numpy() + 1
    sequence_in_day = np.empty(n, dtype=np.int64)
    sequence_in_day[order] = per_day
    sequence = np.empty(n, dtype=np.int64)
    sequence[order] = per_channel
    dates = {d: (start + datetime.timedelta(days=d)).strftime("%Y%m%d") for d in np.unique(day).tolist()}
    first_ticket = int(rng.integers(1_000_000, 4_000_000))
    first_visit = int(rng.integers(10_000, 90_000))
    hex_part = rng.integers(0, 2 ** 62, n)
    for c, make in (
        (WEB, lambda i: f"W-{dates[day[i]]}-{sequence_in_day[i]:06d}"),
        (MAIL, lambda i: f"M-{dates[day[i]]}-{sequence_in_day[i]:05d}"),
        (PHONE, lambda i: f"T{first_ticket + sequence[i]}"),
        (IN_PERSON, lambda i: f"A-{first_visit + sequence[i]:06d}"),
        (EMAIL, lambda i: f"<{hex_part[i]:016x}.{seconds[i]}@{sender_domain[i]}>"),
    ):
        where = np.flatnonzero(channel == c)
        ids[where] = [make(i) for i in where.tolist()]
    return ids


def build(rng: np.random.Generator, pop: Population, counts: np.ndarray, days: int,
          start: datetime.date, rates: dict | None = None) -> Plan:
    """Records for every person: counts[p] records for person p (0 for none).

    `rates` replaces RATES (a noise profile's life events: synth.varied).
    """
    rates = RATES if rates is None else {**RATES, **rates}
    person = np.repeat(np.arange(len(pop)), counts)
    n = len(person)
    channel = rng.choice(len(CHANNELS), size=n, p=CHANNEL_MIX)
    day, seconds = _times(rng, channel, days, start)
    # Sort by person, then time: a person's life runs forward through their records.
    sort = np.lexsort((rng.random(n), seconds, person))
    person, channel, day, seconds = person[sort], channel[sort], day[sort], seconds[sort]
    first_of_person = np.r_[0, np.cumsum(counts)[:-1]]
    order = np.arange(n) - np.repeat(first_of_person, counts)
    k = np.repeat(counts, counts)

    # The moment of a personal change: between two of the person's records.
    switch_at = np.where(counts > 1, 1 + (rng.random(len(counts)) * (counts - 1)).astype(np.int64), 0)
    after_personal = (order >= np.repeat(switch_at, counts)) & (k > 1)
    multi = counts > 1
    n_people = len(pop)

    events = np.full(n, "", dtype=object)

    def mark(mask: np.ndarray, name: str) -> None:
        for i in np.flatnonzero(mask).tolist():
            events[i] = events[i] + " " + name if events[i] else name

    # Household moves: the whole household, at one moment within its records.
    addresses = pop.addresses
    address = pop.household_address[pop.household[person]].copy()
    household_of_record = pop.household[person]
    per_household = np.bincount(household_of_record, minlength=pop.households)
    moving = np.flatnonzero((per_household > 1) & (rng.random(pop.households) < rates["household_move"]))
    if len(moving):
        lo = pd.Series(seconds).groupby(household_of_record).min().reindex(moving).to_numpy()
        hi = pd.Series(seconds).groupby(household_of_record).max().reindex(moving).to_numpy()
        moment = np.full(pop.households, np.iinfo(np.int64).max)
        moment[moving] = lo + 1 + (rng.random(len(moving)) * np.maximum(hi - lo - 1, 0)).astype(np.int64)
        same_city = rng.random(len(moving)) < 0.6
        new_city = np.where(same_city, pop.household_city[moving],
                            rng.choice(len(pools.places().cities), size=len(moving), p=pools.places().city_weights))
        new_address = np.full(pop.households, -1)
        new_address[moving] = addresses.add(rng, new_city)
        moved = seconds >= moment[household_of_record]
        address = np.where(moved, new_address[household_of_record], address)
        mark(moved, "household_moved")

    # Moving alone (out of a shared home, or a single person moving).
    alone = multi & (rng.random(n_people) < rates["move_alone"])
    alone_people = np.flatnonzero(alone)
    if len(alone_people):
        city = np.where(rng.random(len(alone_people)) < 0.6, pop.household_city[pop.household[alone_people]],
                        rng.choice(len(pools.places().cities), size=len(alone_people), p=pools.places().city_weights))
        new_address = np.full(n_people, -1)
        new_address[alone_people] = addresses.add(rng, city)
        moved = alone[person] & after_personal
        address = np.where(moved, new_address[person], address)
        mark(moved, "moved")

    # Surname change at marriage: the partner's surname, a double name, or a new one.
    age = (np.datetime64(start) - pop.birth_date).astype(int) // 365
    change = multi & (age >= 20) & (age <= 55) & (rng.random(n_people) < rates["surname_change"])
    last_name = pop.last_name[person].copy()
    changers = np.flatnonzero(change)
    if len(changers):
        new = np.empty(len(changers), dtype=object)
        fresh = pools.names().last["fi"]
        fresh_names = fresh.names[rng.choice(len(fresh.names), size=len(changers), p=fresh.weights)]
        style = rng.random(len(changers))
        for j, p in enumerate(changers.tolist()):
            old = pop.last_name[p]
            partner = pop.partner[p]
            if partner >= 0 and pop.last_name[partner] != old and style[j] < 0.7:
                new[j] = pop.last_name[partner]
            elif style[j] < 0.85 and "-" not in old and fresh_names[j] != old:
                new[j] = f"{old}-{fresh_names[j]}"
            else:
                new[j] = fresh_names[j] if fresh_names[j] != old else fresh_names[j] + "-" + old
        new_name = np.empty(n_people, dtype=object)
        new_name[changers] = new
        renamed = change[person] & after_personal
        last_name[renamed] = new_name[person[renamed]]
        mark(renamed, "surname_changed")

    # Direct-marketing prohibition given, or withdrawn, later.
    flip = multi & (rng.random(n_people) < rates["marketing_change"])
    marketing = pop.marketing_prohibited[person].copy()
    flipped = flip[person] & after_personal
    marketing[flipped] = ~marketing[flipped]
    mark(flipped & marketing, "marketing_prohibited")
    mark(flipped & ~marketing, "marketing_prohibition_withdrawn")

    # Products: later records often concern the first record's product again.
    product = rng.choice(len(pools.PRODUCTS), size=n, p=pools.PRODUCT_WEIGHTS)
    first_product = product[np.repeat(first_of_person, counts)]
    product = np.where((order > 0) & (rng.random(n) < rates["same_product_again"]), first_product, product)

    verified = np.where(channel == 0, rng.random(n) < rates["web_authenticated"],
                        (channel == IN_PERSON) & (rng.random(n) < rates["identity_checked"]))
    sender_domain = np.array([e.partition("@")[2] for e in pop.email[person]], dtype=object)
    ids = _ids(rng, channel, day, seconds, start, sender_domain)

    return Plan(person=person, channel=channel, day=day, seconds=seconds, order=order, address=address,
                last_name=last_name, marketing_prohibited=marketing, product=product,
                metering_point=metering_points(address, product), verified=verified, events=events,
                source_record_id=ids, start=start, days=days)

