"""The probabilistic match model: Splink 5 (Fellegi–Sunter) models and their frozen tables.

The model compares two records on names, birth date, address, phone, e-mail and
bank account (`comparisons()`). Each comparison has levels (exact, close,
different, unknown); each level an m probability (how often one person's two
records show it) and a u probability (how often two different people's do).
`train.py` trains them without labels; `model.json` beside this module is the
versioned, trained model:

    {"format": 1, "version": "1.<digest>", "trained": {...},
     "blocking_keys": [["phone"], ...],
     "term_frequencies": {"first_name": {value: frequency}, "last_name": {...}},
     "splink_settings": {Splink's settings dict: the general model},
     "household_settings": {Splink's settings dict: the household model},
     "namesakes": {"pairs": n, "same_email": k}}

`namesakes`: of the pairs of records with the same first name and surname, both with an
e-mail address, under two different valid codes (surely two people), how many share the
address: u of an e-mail agreement between namesakes (`NAMESAKE_LEVELS`).

The version is a digest of the trained parameters: equal models, equal versions.

Term frequencies (a common surname says less than a rare one) are frozen into
the model at training (values seen at least twice) and registered as fixed
lookups when scoring (`linker.table_management.register_term_frequency_lookup`),
so a pair gets the same probability whichever batch it is scored in
(docs/register_rules.md rule 3). A name not in the lookup gets no adjustment: the level's
average weight.

Blocking: the candidate pairs are the records equal on every column of at least
one of `BLOCKING_KEYS`, each a plain equality on `match_features` columns, so
the register can fetch a new batch's candidates by the same keys in SQL.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

MODEL_PATH = Path(__file__).with_name("model.json")
MODEL_FORMAT = 1
UNIQUE_ID = "record_key"
TF_COLUMNS: tuple[str, ...] = ("first_name", "last_name")

# The address levels that say "the same home": pairs at these levels are scored with the
# household model (see `MatchModel.household_settings`).
ADDRESS_SAME = "same address"
ADDRESS_SAME_PART_UNKNOWN = "same street and house number, postal code or apartment unknown or one digit off"
ADDRESS_SAME_STREET_MISTYPED = "same house number, apartment and postal code, street name typed differently"
HOUSEHOLD_LEVELS: tuple[str, ...] = (ADDRESS_SAME, ADDRESS_SAME_PART_UNKNOWN, ADDRESS_SAME_STREET_MISTYPED)
# The household model is trained on the pairs at the same address.
HOUSEHOLD_TRAINING_RULE = ('l.street_key = r.street_key AND l.postal_code = r.postal_code '
                           'AND l.apartment IS NOT DISTINCT FROM r.apartment')

# Every name part the same, in another order or another field (surname written first,
# given names typed into the surname field): a level of both name comparisons.
SAME_NAMES_REORDERED = "the same names in another order or field"
SAME_NAMES_REORDERED_SQL = "name_sorted_l = name_sorted_r"
# Contact levels between "exact" and "different": a typing slip, or the same e-mail name at
# another provider.
PHONE_ONE_DIGIT_OFF = "one digit off"
# Every name of one record among the other's, in any order or field, each allowed a typing
# slip, one at least exact: names swapped and a letter mistyped, or a middle name missing as
# well ("Karlsson" / "Anna Mill" for Anna Milla Karlsson).
NAMES_AMONG_ONE_LETTER_OFF = "every name of one among the other's names, one letter off allowed"
EMAIL_NEAR = "one letter off, or the same name at another domain (the same digits)"
# The same first given name, but each record has a further given name the other lacks (each
# allowed a typing slip, a hyphen or a space): "Matti Juhani" and "Matti Kalevi". A son named
# after his father, or two namesakes, far more often than one person's records, whose middle
# names are only ever dropped, not replaced. "Matti" against "Matti Juhani" is no conflict.
GIVEN_NAMES_CONFLICT = "the same first given name, other given names different"
# A landline is a home's number, not a person's: every member at home shares it, so there it
# says little of which member wrote. Its own level lets the household model learn that apart
# from a mobile's weight. Finnish mobiles begin +358 4 and +358 50; other Finnish numbers are
# fixed lines (or services), a foreign number counts as a person's.
PHONE_SAME_LANDLINE = "the same landline (a home's number)"
# Two numbers, one of them a landline: one person calls from home or from their mobile as two
# members do, so this says little either way; "different" is left to two persons' numbers.
PHONE_OTHER_WITH_LANDLINE = "different numbers, one a landline"


def _is_landline(side: str) -> str:
    return f"(phone_{side} LIKE '+358%' AND NOT (phone_{side} LIKE '+3584%' OR phone_{side} LIKE '+35850%'))"


# Levels that never count for a match, whatever EM finds (weight at most 0): what they say for
# one, the names already said.
NEAR_NAMES_NEVER_FOR: tuple[tuple[str, str], ...] = (("email", EMAIL_NEAR),)
# Namesakes (the same first given name and surname, whatever their middle names) share an
# e-mail address far more often than strangers do: addresses are made of names (aino.makinen@
# at one provider is another Aino Mäkinen's at the next), and a slip of the provider gives a
# namesake's. Random pairs cannot measure it, so training counts it where the register knows
# two people for sure: records of one name under two different valid codes
# (`MatchModel.namesakes`). When both names agree, the e-mail weighs at most log2(m / u among
# namesakes), and a shared e-mail does not make the pair a household's.
EMAIL_EXACT = "Exact match on email"
NAMESAKE_LEVELS: dict[str, tuple[str, ...]] = {
    "first_name": ("Exact match on first_name", "all given names exact", SAME_NAMES_REORDERED, GIVEN_NAMES_CONFLICT),
    "last_name": ("Exact match on last_name", SAME_NAMES_REORDERED),
}
# At home, never for a match either: a family's mobiles are often consecutive numbers (one
# subscription each, bought together), so one digit off there is a relative, not a slip.
HOUSEHOLD_NEVER_FOR: tuple[tuple[str, str], ...] = (("phone", PHONE_ONE_DIGIT_OFF),)

# Candidate pairs: records equal on all columns of at least one key. New keys go at the
# end: a key's number is part of its hash in the register's `match_key` index.
BLOCKING_KEYS: list[tuple[str, ...]] = [
    ("phone",),
    ("email",),
    ("iban",),
    ("name_key", "postal_code"),
    ("last_name", "street_key"),
    ("first_name", "street_key"),
    ("first_name", "birth_date"),
    ("last_name", "birth_date"),
    # Every name part, in any order or field, in one postal code area: names written surname
    # first or in the wrong field (the first name and surname keys above then differ). Not
    # the names alone: across a country of namesakes, two records that share nothing but the
    # full names are too often two people to be compared at all.
    ("name_sorted", "postal_code"),
]
# Doubt only (docs/register_rules.md rule 5): a record without a valid code that prohibits
# direct marketing (a *doubt anchor*) is also paired with every record of its first given
# name and surname, either way round and whichever field they were typed into (`doubt_name`),
# wherever it lives: the person who said no by phone from a new address, sharing nothing else
# with their listed customer. Such a pair may be reviewed, so the doubt holds that customer
# off the marketing list; it never links (a name alone is a namesake's too often). Keyed in
# `match_key` after the blocking keys (`pipeline.matching.blocking.held_keys`).
DOUBT_BLOCKING_KEYS: list[tuple[str, ...]] = [("doubt_name",)]


def comparisons() -> list:
    """The comparisons of the project's model (Splink comparison creators)."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    def tokens(column: str, side: str) -> str:
        return f"string_split({column}_{side}, ' ')"

    def near_all(one: str, other: str) -> str:  # each name of `one` within one letter of a name of `other`
        return (f"list_bool_and(list_transform({tokens('name_tokens', one)}, lambda a: list_bool_or("
                f"list_transform({tokens('name_tokens', other)}, lambda b: damerau_levenshtein(a, b) <= 1))))")

    def given(side: str) -> str:  # the given names, a hyphenated one as its parts
        return f"string_split(replace(first_names_all_{side}, '-', ' '), ' ')"

    def placed(one: str, other: str) -> str:  # each given name of `one` after its first found in `other`'s names
        later = f"list_transform(string_split(first_names_all_{one}, ' ')[2:], lambda x: replace(x, '-', ''))"
        names = (f"list_concat({tokens('name_tokens', other)}, "
                 f"list_transform(string_split(first_names_all_{other}, ' '), lambda x: replace(x, '-', '')))")
        written_together = f"replace(replace(name_tokens_{other}, ' ', ''), '-', '')"  # Annaliisa for Anna-Liisa
        return (f"list_bool_and(list_transform({later}, lambda a: contains({written_together}, a) OR "
                f"list_bool_or(list_transform({names}, lambda b: damerau_levenshtein(a, b) <= 1))))")

    first_name = cl.CustomComparison(
        output_column_name="first_name",
        comparison_description="first given name (all given names when both gave several)",
        comparison_levels=[
            cll.NullLevel("first_name"),
            cll.CustomLevel("first_names_all_l = first_names_all_r AND contains(first_names_all_l, ' ')",
                            "all given names exact"),
            cll.CustomLevel("first_name_l = first_name_r AND contains(first_names_all_l, ' ') "
                            f"AND contains(first_names_all_r, ' ') AND NOT {placed('l', 'r')} "
                            f"AND NOT {placed('r', 'l')}", GIVEN_NAMES_CONFLICT),
            cll.ExactMatchLevel("first_name", term_frequency_adjustments=True),
            cll.CustomLevel(SAME_NAMES_REORDERED_SQL, SAME_NAMES_REORDERED),
            cll.JaroWinklerLevel("first_name", 0.92),
            cll.JaroWinklerLevel("first_name", 0.88),
            cll.CustomLevel("damerau_levenshtein(first_name_l, first_name_r) <= 1", "one letter off"),
            cll.CustomLevel(f"list_has_all({given('r')}, {given('l')}) OR list_has_all({given('l')}, {given('r')})",
                            "the given names of one among the other's given names"),
            cll.CustomLevel(f"list_has_all({tokens('name_tokens', 'r')}, {tokens('name_tokens', 'l')}) "
                            f"OR list_has_all({tokens('name_tokens', 'l')}, {tokens('name_tokens', 'r')})",
                            "every name of one among the other's names"),
            # One name in common first: a cheap test that spares most pairs the nested one.
            cll.CustomLevel(f"list_has_any({tokens('name_tokens', 'l')}, {tokens('name_tokens', 'r')}) "
                            f"AND ({near_all('l', 'r')} OR {near_all('r', 'l')})", NAMES_AMONG_ONE_LETTER_OFF),
            cll.CustomLevel(f"list_contains({tokens('name_tokens', 'r')}, first_name_l) "
                            f"OR list_contains({tokens('name_tokens', 'l')}, first_name_r)",
                            "first name among the other's names"),
            cll.ElseLevel(),
        ],
    )
    last_name = cl.CustomComparison(
        output_column_name="last_name",
        comparison_description="surname",
        comparison_levels=[
            cll.NullLevel("last_name"),
            cll.ExactMatchLevel("last_name", term_frequency_adjustments=True),
            cll.CustomLevel(SAME_NAMES_REORDERED_SQL, SAME_NAMES_REORDERED),
            cll.JaroWinklerLevel("last_name", 0.92),
            cll.JaroWinklerLevel("last_name", 0.88),
            cll.CustomLevel("list_has_any(string_split(last_name_l, '-'), string_split(name_tokens_r, ' ')) "
                            "OR list_has_any(string_split(last_name_r, '-'), string_split(name_tokens_l, ' '))",
                            "a surname part among the other's names"),
            cll.ElseLevel(),
        ],
    )
    birth_date = cl.CustomComparison(
        output_column_name="birth_date",
        comparison_description="birth date (from a valid or an invalid identity code)",
        comparison_levels=[
            cll.NullLevel("birth_date"),
            cll.ExactMatchLevel("birth_date"),
            cll.CustomLevel("substr(birth_date_l, 1, 7) = substr(birth_date_r, 1, 7) "
                            "OR damerau_levenshtein(birth_date_l, birth_date_r) <= 1",
                            "same year and month, or one digit off"),
            cll.ElseLevel(),
        ],
    )
    same_apartment = "apartment_l IS NOT DISTINCT FROM apartment_r"
    apartment_fits = f"({same_apartment} OR apartment_l IS NULL OR apartment_r IS NULL)"
    address = cl.CustomComparison(
        output_column_name="address",
        comparison_description="street (name and house number), apartment and postal code",
        comparison_levels=[
            {"sql_condition": "(street_key_l IS NULL OR street_key_r IS NULL) "
                              "AND (postal_code_l IS NULL OR postal_code_r IS NULL)",
             "label_for_charts": "address unknown", "is_null_level": True},
            cll.CustomLevel(f"street_key_l = street_key_r AND postal_code_l = postal_code_r AND {same_apartment}",
                            ADDRESS_SAME),
            cll.CustomLevel("street_key_l = street_key_r AND (postal_code_l = postal_code_r OR postal_code_l IS NULL "
                            "OR postal_code_r IS NULL OR damerau_levenshtein(postal_code_l, postal_code_r) <= 1) "
                            f"AND {apartment_fits}", ADDRESS_SAME_PART_UNKNOWN),
            cll.CustomLevel("postal_code_l = postal_code_r "
                            "AND split_part(street_key_l, ' ', 2) = split_part(street_key_r, ' ', 2) "
                            f"AND jaro_winkler_similarity(street_key_l, street_key_r) >= 0.9 AND {apartment_fits}",
                            ADDRESS_SAME_STREET_MISTYPED),
            cll.CustomLevel("street_key_l = street_key_r AND postal_code_l = postal_code_r",
                            "same building, another apartment"),
            cll.CustomLevel("street_key_l = street_key_r", "same street and house number, another postal code"),
            cll.CustomLevel("postal_code_l = postal_code_r", "same postal code only"),
            cll.ElseLevel(),
        ],
    )

    def exact(column: str, description: str, *near: Any):
        return cl.CustomComparison(
            output_column_name=column, comparison_description=description,
            comparison_levels=[cll.NullLevel(column), cll.ExactMatchLevel(column), *near, cll.ElseLevel()])

    # A digit or a letter typed wrong, missing, doubled or two swapped: one edit apart. Two
    # people's numbers seldom are (a household's mobiles differ in several digits).
    phone_off = cll.CustomLevel("damerau_levenshtein(phone_l, phone_r) <= 1", PHONE_ONE_DIGIT_OFF)
    # E-mail addresses are made of names (aino.makinen@, amakinen@, makinen.aino@): a namesake
    # has the same name with a dot more or less or at another provider, as a typing slip does.
    # Near an address is no evidence for a match that the names do not already give: the
    # level never counts for one (`NEAR_NAMES_NEVER_FOR`). Nor is it "different": a person
    # with a second mailbox keeps the weight of the rest of the record. A number that differs
    # (kari.pekkala@ and kari.pekkala2@) is how a provider tells namesakes apart: different.
    email_near = cll.CustomLevel(
        "(damerau_levenshtein(email_l, email_r) <= 1 OR email_local_l = email_local_r) "
        "AND regexp_replace(email_l, '[^0-9]', '', 'g') = regexp_replace(email_r, '[^0-9]', '', 'g')", EMAIL_NEAR)
    phone = cl.CustomComparison(
        output_column_name="phone", comparison_description="phone number (E.164)",
        comparison_levels=[cll.NullLevel("phone"),
                           cll.CustomLevel(f"phone_l = phone_r AND {_is_landline('l')}", PHONE_SAME_LANDLINE),
                           cll.ExactMatchLevel("phone"), phone_off,
                           cll.CustomLevel(f"{_is_landline('l')} OR {_is_landline('r')}", PHONE_OTHER_WITH_LANDLINE),
                           cll.ElseLevel()])
    return [first_name, last_name, birth_date, address, phone,
            exact("email", "e-mail address", email_near),
            exact("iban", "bank account")]


def settings_creator(**overrides: Any):
    """Splink settings for the project's model, untrained."""
    from splink import SettingsCreator, block_on

    options: dict[str, Any] = dict(
        link_type="dedupe_only",
        unique_id_column_name=UNIQUE_ID,
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=[block_on(*key) for key in BLOCKING_KEYS],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=True,
        additional_columns_to_retain=["has_personal_id"],
        probability_two_random_records_match=1e-5,
    )
    options.update(overrides)
    return SettingsCreator(**options)


def term_frequencies(features: pd.DataFrame, column: str, min_count: int = 2) -> dict[str, float]:
    """A column's value frequencies (share of records that have a value), as Splink
    computes them, for values seen at least `min_count` times: a value seen once is
    mostly a typing mistake, and a rare name says no more than an unseen one."""
    counts = features[column].dropna().value_counts()
    total = int(counts.sum())
    kept = counts[counts >= min_count].sort_index()
    return {str(value): float(f"{count / total:.6g}") for value, count in kept.items()}


@dataclass(frozen=True)
class Level:
    """One level of a comparison: its gamma value, label and weight (log2 m/u)."""

    gamma: int
    label: str
    weight: float


def level_table(splink_settings: dict[str, Any]) -> dict[str, dict[int, Level]]:
    """Per comparison, its levels by gamma value, from a trained Splink settings dict."""
    from splink import SettingsCreator

    settings = SettingsCreator.from_path_or_dict(copy.deepcopy(splink_settings)).get_settings("duckdb")
    table: dict[str, dict[int, Level]] = {}
    for comparison in settings.comparisons:
        levels = {}
        for level in comparison.comparison_levels:
            if level.is_null_level:
                weight = 0.0
            else:
                weight = math.log2(level.m_probability / level.u_probability)
            levels[level.comparison_vector_value] = Level(level.comparison_vector_value, level.label_for_charts, weight)
        table[comparison.output_column_name] = levels
    return table


def logit2(probability: float) -> float:
    """log2 of the odds: the weight of a prior probability."""
    return math.log2(probability / (1.0 - probability))


@dataclass(frozen=True)
class MatchModel:
    """A trained model: Splink settings with m and u, frozen term frequencies, and the
    household model.

    The general model's u probabilities come from random pairs of records. Members
    of one household are not random pairs: they share the address, usually the
    surname, often a landline, an e-mail address or an account, so under the
    general model these agreements add up to a sure match although the first names
    differ. Pairs at the same address (`HOUSEHOLD_LEVELS`) are therefore scored
    with the household model: the same comparisons but the address, m and u and
    the prior trained by expectation maximisation on pairs at the same address
    only, where u is how often two members of one household agree.
    """

    version: str
    splink_settings: dict[str, Any]
    term_frequencies: dict[str, dict[str, float]]
    household_settings: dict[str, Any] | None = None
    trained: dict[str, Any] = field(default_factory=dict)
    blocking_keys: tuple[tuple[str, ...], ...] = tuple(BLOCKING_KEYS)
    namesakes: dict[str, int] | None = None

    @classmethod
    def load(cls, path: Path | str | None = None) -> MatchModel:
        """The model in `path` (default: the versioned model.json), read once and cached."""
        return _load(str(Path(path) if path is not None else MODEL_PATH))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MatchModel:
        if data.get("format") != MODEL_FORMAT:
            raise ValueError(f"match model: format {data.get('format')!r} is not {MODEL_FORMAT}")
        return cls(version=str(data["version"]), splink_settings=data["splink_settings"],
                   term_frequencies={k: dict(v) for k, v in data["term_frequencies"].items()},
                   household_settings=data.get("household_settings"),
                   trained=dict(data.get("trained", {})),
                   blocking_keys=tuple(tuple(k) for k in data.get("blocking_keys", BLOCKING_KEYS)),
                   namesakes=dict(data["namesakes"]) if data.get("namesakes") else None)

    def to_dict(self) -> dict[str, Any]:
        return {"format": MODEL_FORMAT, "version": self.version, "trained": self.trained,
                "blocking_keys": [list(k) for k in self.blocking_keys],
                "term_frequencies": self.term_frequencies, "splink_settings": self.splink_settings,
                "household_settings": self.household_settings, "namesakes": self.namesakes}

    def save(self, path: Path | str = MODEL_PATH) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        _load.cache_clear()
        return path

    def tf_frame(self, column: str) -> pd.DataFrame:
        """The frozen lookup for a column as Splink's term-frequency table."""
        table = self.term_frequencies.get(column, {})
        return pd.DataFrame({column: pd.Series(list(table.keys()), dtype=object),
                             f"tf_{column}": pd.Series(list(table.values()), dtype="float64")})

    @property
    def blocking_rules(self) -> list[tuple[str, ...]]:
        return [tuple(k) for k in self.blocking_keys]

    @functools.cached_property
    def prior_weight(self) -> float:
        return logit2(self.splink_settings["probability_two_random_records_match"])

    @functools.cached_property
    def levels(self) -> dict[str, dict[int, Level]]:
        return level_table(self.splink_settings)

    @functools.cached_property
    def household_prior_weight(self) -> float | None:
        if self.household_settings is None:
            return None
        return logit2(self.household_settings["probability_two_random_records_match"])

    @functools.cached_property
    def namesake_email_weight(self) -> float | None:
        """The most an e-mail agreement weighs between records of the same names
        (`namesake_weight`); None for a model trained without the count."""
        if not self.namesakes:
            return None
        exact = next((level for comparison in self.splink_settings.get("comparisons", [])
                      if comparison["output_column_name"] == "email"
                      for level in comparison["comparison_levels"]
                      if level.get("label_for_charts") == EMAIL_EXACT), None)
        if exact is None or not exact.get("m_probability"):
            return None
        return namesake_weight(exact["m_probability"], self.namesakes)

    @functools.cached_property
    def household_levels(self) -> dict[str, dict[int, Level]] | None:
        return level_table(self.household_settings) if self.household_settings is not None else None


def namesake_weight(m_probability: float, namesakes: dict[str, int]) -> float:
    """log2 of an e-mail agreement's m over its u among namesakes, with one more sharing
    pair and one more pair counted on either side: a register with few namesakes gives a
    cautious weight, never an infinite one.

    >>> round(namesake_weight(0.9, {"pairs": 99_998, "same_email": 99}), 2)
    9.81
    >>> round(namesake_weight(0.9, {"pairs": 0, "same_email": 0}), 2)  # nothing counted: a coin toss
    0.85
    """
    u = (namesakes["same_email"] + 1) / (namesakes["pairs"] + 2)
    return math.log2(m_probability / u)


def parameters_digest(*parts: Any) -> str:
    """A short content hash of the trained parameters: equal models, equal digests."""
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(payload.encode("ascii")).hexdigest()[:12]


@functools.lru_cache(maxsize=4)
def _load(path: str) -> MatchModel:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return MatchModel.from_dict(data)
