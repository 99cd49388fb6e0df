"""The pools the generator samples from: names, places, banks, words.

Names, municipalities and street-name parts come from Faker's fi_FI and sv_SE
providers (read once as lists, never called per record). Faker has no Finnish
postal codes, so each municipality gets a consistent synthetic set of codes
(the same on every run and for every seed): larger towns get more codes, and
the capital region's codes start with zeros as real ones do, so that
spreadsheets can lose them. Population weights and Swedish-speaking shares of the
larger and the bilingual municipalities are rounded public figures; the rest get
a small default.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# Synthetic mail domains only (reserved example names): never a real provider.
EMAIL_DOMAINS: tuple[str, ...] = ("example.fi", "example.com", "example.net", "example.org",
                                  "posti.example", "koti.example")
EMAIL_DOMAIN_WEIGHTS = np.array([0.34, 0.26, 0.16, 0.10, 0.08, 0.06])

# Finnish bank groups: (bank code prefix, weight). The first digits decide the BIC
# (Nordea 1/2, Handelsbanken 31, SEB 33, Danske 34 and 8, S-Pankki 36/39,
# Aktia 405/497, savings banks 4xx, POP banks 47x, OP 5, Ålandsbanken 6).
BANK_CODES: tuple[tuple[str, float], ...] = (
    ("1", 0.22), ("2", 0.03), ("31", 0.03), ("33", 0.01), ("34", 0.01), ("36", 0.04), ("39", 0.02),
    ("405", 0.03), ("497", 0.01), ("425", 0.02), ("440", 0.02), ("471", 0.02), ("474", 0.01),
    ("5", 0.38), ("6", 0.01), ("8", 0.14),
)

PRODUCTS: tuple[str, ...] = ("electricity", "natural_gas", "district_heating", "broadband", "tv")
PRODUCT_WEIGHTS = np.array([0.55, 0.03, 0.12, 0.18, 0.12])
METERED_PRODUCTS = {"electricity": "007", "natural_gas": "021", "district_heating": "045"}

# How each channel names the products.
PRODUCT_FI = {"electricity": "Sähkö", "natural_gas": "Maakaasu", "district_heating": "Kaukolämpö",
              "broadband": "Laajakaista", "tv": "TV"}
# Free text as customers write it (mail, e-mail), by language.
PRODUCT_FREE_TEXT: dict[str, dict[str, tuple[str, ...]]] = {
    "fi": {"electricity": ("sähkö", "Sähkö", "sähkösopimus", "SÄHKÖ", "Sähkö "),
           "natural_gas": ("maakaasu", "Maakaasu", "kaasu"),
           "district_heating": ("kaukolämpö", "Kaukolämpö", "KAUKOLÄMPÖ"),
           "broadband": ("laajakaista", "Laajakaista", "nettiliittymä"),
           "tv": ("TV", "tv", "Tv")},
    "sv": {"electricity": ("el", "El", "elavtal"),
           "natural_gas": ("naturgas", "Naturgas", "gas"),
           "district_heating": ("fjärrvärme", "Fjärrvärme"),
           "broadband": ("bredband", "Bredband"),
           "tv": ("TV", "tv")},
    "en": {"electricity": ("electricity", "Electricity"),
           "natural_gas": ("natural gas",), "district_heating": ("district heating",),
           "broadband": ("broadband",), "tv": ("TV",)},
}
# Free text that names none of the products (the intake should flag it).
PRODUCT_UNKNOWN_TEXT: tuple[str, ...] = ("aurinkopaneelit", "lämpöpumppu", "sopimus", "solpaneler")

# Population (rounded) of the larger municipalities; others get DEFAULT_POPULATION.
POPULATION: dict[str, int] = {
    "Helsinki": 675_000, "Espoo": 315_000, "Tampere": 250_000, "Vantaa": 245_000, "Oulu": 215_000,
    "Turku": 200_000, "Jyväskylä": 147_000, "Kuopio": 125_000, "Lahti": 121_000, "Pori": 83_000,
    "Kouvola": 80_000, "Joensuu": 77_000, "Lappeenranta": 73_000, "Hämeenlinna": 68_000,
    "Vaasa": 68_000, "Seinäjoki": 65_000, "Rovaniemi": 65_000, "Mikkeli": 52_000, "Porvoo": 51_000,
    "Salo": 51_000, "Kotka": 51_000, "Kokkola": 48_000, "Hyvinkää": 47_000, "Lohja": 46_000,
    "Järvenpää": 45_000, "Nurmijärvi": 44_000, "Kirkkonummi": 41_000, "Tuusula": 39_000,
    "Rauma": 38_000, "Kerava": 38_000, "Kajaani": 36_000, "Raasepori": 27_000, "Sipoo": 22_000,
    "Pietarsaari": 19_000, "Mustasaari": 19_000, "Parainen": 15_000, "Loviisa": 14_000,
    "Maarianhamina": 12_000, "Kauniainen": 10_000, "Närpiö": 9_000, "Hanko": 8_000,
}
DEFAULT_POPULATION = 6_000

# Swedish names of bilingual municipalities (Swedish speakers write these).
SWEDISH_NAMES: dict[str, str] = {
    "Helsinki": "Helsingfors", "Espoo": "Esbo", "Vantaa": "Vanda", "Turku": "Åbo",
    "Tampere": "Tammerfors", "Oulu": "Uleåborg", "Vaasa": "Vasa", "Porvoo": "Borgå",
    "Kokkola": "Karleby", "Pietarsaari": "Jakobstad", "Raasepori": "Raseborg",
    "Kirkkonummi": "Kyrkslätt", "Sipoo": "Sibbo", "Loviisa": "Lovisa", "Kauniainen": "Grankulla",
    "Parainen": "Pargas", "Uusikaarlepyy": "Nykarleby", "Mustasaari": "Korsholm",
    "Närpiö": "Närpes", "Kristiinankaupunki": "Kristinestad", "Maalahti": "Malax",
    "Inkoo": "Ingå", "Hanko": "Hangö", "Kemiönsaari": "Kimitoön", "Kruunupyy": "Kronoby",
    "Luoto": "Larsmo", "Pedersören kunta": "Pedersöre", "Vöyri": "Vörå", "Lohja": "Lojo",
    "Maarianhamina": "Mariehamn", "Kaskinen": "Kaskö", "Lahti": "Lahtis",
    "Hämeenlinna": "Tavastehus",
}
# Share of Swedish speakers (rounded); the rest of the country gets DEFAULT_SWEDISH_SHARE.
SWEDISH_SHARE: dict[str, float] = {
    "Helsinki": 0.055, "Espoo": 0.065, "Vantaa": 0.02, "Turku": 0.05, "Vaasa": 0.22,
    "Porvoo": 0.27, "Kokkola": 0.12, "Pietarsaari": 0.54, "Raasepori": 0.65, "Kirkkonummi": 0.15,
    "Sipoo": 0.34, "Loviisa": 0.40, "Kauniainen": 0.32, "Parainen": 0.54, "Uusikaarlepyy": 0.87,
    "Mustasaari": 0.66, "Närpiö": 0.88, "Kristiinankaupunki": 0.54, "Maalahti": 0.85,
    "Inkoo": 0.52, "Hanko": 0.43, "Kemiönsaari": 0.70, "Kruunupyy": 0.80, "Luoto": 0.90,
    "Pedersören kunta": 0.90, "Vöyri": 0.80, "Maarianhamina": 0.85, "Korsnäs": 0.95,
    "Kaskinen": 0.30, "Lohja": 0.04,
}
DEFAULT_SWEDISH_SHARE = 0.003
ALAND = ("Brändö", "Eckerö", "Finström", "Föglö", "Geta", "Hammarland", "Jomala", "Kumlinge",
         "Kökar", "Lemland", "Lumparland", "Saltvik", "Sottunga", "Sund", "Vårdö", "Värdö")

# Landline area codes of the larger towns; others get one from AREA_CODES by a fixed rule.
AREA_CODE: dict[str, str] = {
    "Helsinki": "9", "Espoo": "9", "Vantaa": "9", "Kauniainen": "9", "Kirkkonummi": "9",
    "Sipoo": "9", "Kerava": "9", "Järvenpää": "9", "Tuusula": "9", "Nurmijärvi": "9",
    "Turku": "2", "Pori": "2", "Rauma": "2", "Salo": "2", "Parainen": "2", "Tampere": "3",
    "Lahti": "3", "Hämeenlinna": "3", "Oulu": "8", "Kajaani": "8", "Jyväskylä": "14",
    "Kuopio": "17", "Joensuu": "13", "Lappeenranta": "5", "Kotka": "5", "Kouvola": "5",
    "Mikkeli": "15", "Vaasa": "6", "Seinäjoki": "6", "Kokkola": "6", "Pietarsaari": "6",
    "Rovaniemi": "16", "Porvoo": "19", "Lohja": "19", "Raasepori": "19", "Hyvinkää": "19",
    "Loviisa": "19", "Hanko": "19", "Maarianhamina": "18",
}
AREA_CODES: tuple[str, ...] = ("2", "3", "5", "6", "8", "13", "14", "15", "16", "17", "19")

MOBILE_PREFIXES: tuple[str, ...] = ("40", "41", "44", "45", "46", "50")
MOBILE_PREFIX_WEIGHTS = np.array([0.30, 0.12, 0.20, 0.14, 0.06, 0.18])

# Fixed seed for everything that must not depend on the user's seed (postal codes, streets).
_POOL_SEED = 20261101


def _latin1(name: str) -> bool:
    # Phone exports are Windows-1252 and some mail is ISO-8859-1: keep names both can carry.
    try:
        name.encode("latin-1")
        name.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class NamePool:
    names: np.ndarray    # object array of str
    weights: np.ndarray  # probabilities, sum 1


def _pool(mapping) -> NamePool:
    items = [(n, float(w)) for n, w in (mapping.items() if hasattr(mapping, "items") else ((m, 1.0) for m in mapping))
             if _latin1(n)]
    names = np.array([n for n, _ in items], dtype=object)
    weights = np.array([w for _, w in items])
    return NamePool(names, weights / weights.sum())


@dataclass(frozen=True)
class Names:
    first: dict[tuple[str, str], NamePool]  # (language, sex 'F'/'M') -> pool
    last: dict[str, NamePool]               # language -> pool


@lru_cache(maxsize=1)
def names() -> Names:
    from faker.providers.person import fi_FI, sv_SE

    fi, sv = fi_FI.Provider, sv_SE.Provider
    return Names(
        first={("fi", "F"): _pool(fi.first_names_female), ("fi", "M"): _pool(fi.first_names_male),
               ("sv", "F"): _pool(sv.first_names_female), ("sv", "M"): _pool(sv.first_names_male)},
        last={"fi": _pool(fi.last_names), "sv": _pool(sv.last_names)},
    )


@dataclass(frozen=True)
class Places:
    cities: np.ndarray            # object array of Finnish names
    city_weights: np.ndarray      # probabilities
    city_swedish: np.ndarray      # Swedish name, or the Finnish one where there is none
    swedish_share: np.ndarray     # share of Swedish speakers per city
    area_code: np.ndarray         # landline area code (without the trunk 0)
    postal_codes: list[np.ndarray]  # per city: its postal codes (str, 5 digits)
    streets: list[np.ndarray]       # per city: its street names


@lru_cache(maxsize=1)
def places() -> Places:
    from faker.providers.address import fi_FI

    provider = fi_FI.Provider
    cities = sorted(set(provider.cities))
    rng = np.random.default_rng(_POOL_SEED)
    population = np.array([POPULATION.get(c, DEFAULT_POPULATION) for c in cities], dtype=float)
    swedish_share = np.array([0.85 if c in ALAND else SWEDISH_SHARE.get(c, DEFAULT_SWEDISH_SHARE)
                              for c in cities])
    area = np.array([AREA_CODE.get(c, "18" if c in ALAND else AREA_CODES[i % len(AREA_CODES)])
                     for i, c in enumerate(cities)], dtype=object)

    # Postal codes: three-digit prefixes handed out in a fixed order, the capital first
    # (so its codes start 00...); each prefix gives codes ending in 0.
    order = [cities.index("Helsinki")] + [i for i in rng.permutation(len(cities)) if cities[i] != "Helsinki"]
    postal_codes: list[np.ndarray] = [np.array([], dtype=object)] * len(cities)
    next_prefix = 1
    for i in order:
        prefixes = 1 + int(population[i] // 20_000)
        wanted = int(min(10 * prefixes, max(1, round(population[i] / 5_000))))
        codes = [f"{p:03d}{j}0" for p in range(next_prefix, next_prefix + prefixes) for j in range(10)]
        postal_codes[i] = np.array(sorted(str(c) for c in rng.choice(codes, size=wanted, replace=False)), dtype=object)
        next_prefix += prefixes + int(rng.integers(0, 2))
    assert next_prefix < 1000

    all_streets = sorted({p + s
                          for p in provider.street_prefixes for s in provider.street_suffixes})
    streets = []
    for i in range(len(cities)):
        count = int(np.clip(population[i] // 800, 15, len(all_streets)))
        streets.append(np.array([str(s) for s in rng.choice(all_streets, size=count, replace=False)], dtype=object))

    return Places(
        cities=np.array(cities, dtype=object),
        city_weights=population / population.sum(),
        city_swedish=np.array([SWEDISH_NAMES.get(c, c) for c in cities], dtype=object),
        swedish_share=swedish_share,
        area_code=area,
        postal_codes=postal_codes,
        streets=streets,
    )
