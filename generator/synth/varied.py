"""The `varied` noise profile: a second, independently written way of getting values wrong.

The default profile (synth.typed) is what the matcher was tuned on. This
one is written apart from it and from the matcher, with other rates and other
kinds of mistakes, to measure how the matcher does on noise it has not seen:
`generate(..., noise_profile="varied")`, `register-synth --noise-profile varied`.
It is harder on purpose, and each kind is still what real customer records show.

Every change is tagged in the ground truth's `noise` column with its own
"field:operation" token (below), so accuracy can be reported per kind
(synth.truth). Changes to the identity code also go to `personal_id_noise`.

Households (population rates replaced; the default in brackets)
----------------------------------------------------------------

=========================  ==========  =============================================
rate                       varied      meaning
=========================  ==========  =============================================
junior                     0.30 (0.10) of households whose head is a man with a son
                                       as first child: the son has his exact names
junior_named_after         0.50 (0)    of those sons: only his first given name, the
                                       others the son's own ("Matti Juhani", son of
                                       "Matti Kalevi")
twins                      0.25 (0.08) of households with two or more children
two_person_kinds           .62/.15/.23 couple / parent and child / flatmates
                                       (.72/.15/.13)
larger_kinds               .68/.14/.18 family / single parent / flatmates (.75/.15/.10)
landline_old / _young      0.55 / 0.15 households with a landline, head over 65 / not
                                       (0.35 / 0.06); every member gives the same one
shared_email               0.30 (0.10) of partners: the head's e-mail address
joint_account              0.50 (0.25) of partners whose head has an account
hyphenated_first_name      0.06 (0.03) of people
double_surname             0.05 (0.02) of people
couple_double_surname      0.15 (0.08) of partners: a double surname at marriage
couple_same_surname        0.60 (0.65) of partners
household_move             0.12 (0.05) of households with two or more records
move_alone                 0.10 (0.04) of people with two or more records
surname_change             0.08 (0.03) of people aged 20-55 with two or more records
web_authenticated          0.55 (0.65) web records with strong identification
identity_checked           0.80 (0.88) service-desk records checked from an ID
=========================  ==========  =============================================

Typing, per channel (rates at noise level 1: `noise` scales them)
-----------------------------------------------------------------

Records with verified identity (web with strong identification, service desk
with an ID check) carry the official names and code exactly; the name and code
kinds apply to the others ("by hand"). "of eligible" rates apply only to values
that can take the change (a middle name needs three given names).

==================================  =====  =====  =====  =====  =========  ===========================
token                               web    phone  mail   email  in_person  applies to
==================================  =====  =====  =====  =====  =========  ===========================
personal_id:missing                 .20    .55    .18    .60    .05        by hand
personal_id: wrong_digit, swapped_  .03    .07    .10    .06    .02        by hand; split .35/.20/.25/.20
digits, check_char, century_sign
personal_id: lower_case, inner_     .06    .05    .10    .10    .02        by hand; split .4/.35/.25
spaces, surrounding_spaces
name:order_swapped                  -      .12    .08    .05    -          surname first in the name
                                                                           (phone: given names first)
name:fields_swapped                 .02    -      -      -      .01        given names in the surname
                                                                           field and the surname in the
                                                                           given-names field
name:all_in_first_names             .01    -      -      -      .005       whole name in given names
first_names:first_only              .20    .35    .15    .35    .05        of by hand with 2+ names
first_names:second_only             (the same rate, for the 15 % of people who go by their second name)
first_names:middle_dropped          .15    .20    .20    .15    .05        of by hand with 3+ names
first_names:reordered               .02    .04    .03    .03    .01        of by hand with 2+ names
first_names:hyphen_space /          .25    .45    .30    .30    .10        of hyphenated given names;
first_names:hyphen_joined                                                  split .6/.4
first_names:typo_key / _missing /   .02    .07    .09    .03    .01        by hand; split .35/.25/.2/.2
_doubled / _swapped                                                        (never the first letter)
last_name:typo_*                    .01    .035   .045   .015   .005       the same kinds in the surname
last_name:one_part                  .20    .40    .25    .35    .05        of double surnames
last_name:hyphen_space              .05    .08    .06    .05    .02        of double surnames
last_name:former                    .10    .30    .25    .30    .02        of records after a surname
                                                                           change: the earlier surname
name:upper / name:lower             .04    .05    .15    .04    .02        by hand; split .7/.3
name:ascii                          .04    .08    .03    .06    .01        by hand (ä ö å written a o a)
name:spaces                         .03    .04    .06    .05    .03        all
first_names:missing                 .005   .02    .005   .01    0          by hand
address:missing                     .02    .06    0      .20    .03        all
street:no_apartment                 .06    .15    .08    .15    .04        of flats: "Katu 5" for
                                                                           "Katu 5 B 12"
street:apartment_written            .15    .20    .25    .20    .15        of flats: B12, b 12, b12,
                                                                           B as. 12; as 12, as.12
street:abbreviated                  .06    .12    .12    .10    .06        katu k., tie t., kuja kj.,
                                                                           polku p., bulevardi bulev.
street:typo                         .01    .04    .05    .02    .01        all
street:upper                        .03    .03    .10    .03    .02        all
postal_code:wrong_digit             .005   .02    .03    .01    .005       all
city:upper / city:typo              .05/.005  .05/.02  .5/.03  .05/.01  .05/.005
address:moved                       (tag only: the record carries the address after a move)
phone:missing                       .08    .03    .35    .35    .10        all
phone:landline                      .30    .60    .50    .30    .40        of households with a landline
phone:other_member                  .01    .05    .02    .02    .01        another household member's
                                                                           mobile
phone:wrong_digit                   .01    .03    .05    .01    .01        all
phone:format                        .70    .70    .70    .70    .70        national, spaces, dashes,
                                                                           international
email:missing                       .03    .40    .55    0      .25        all but the sender's
email:other_domain                  .03    .05    .05    .06    .03        the same name at another
                                                                           domain
email:case                          .05    .04    .10    .05    .03        all
email:typo                          .01    .04    .06    0      .01        all
email:shared / account:joint        (tag only: the address or account is another member's too)
account:missing                     .35    .50    .40    .55    .30        all
account:domestic                    0      .30    .35    .10    0          old domestic form
account:compact                     .50    .50    .50    .50    .50        IBAN without spaces
account:wrong_digit                 .01    .03    .05    .02    .01        all
metering_point:missing              .30    .50    .45    .50    .30        all
metering_point:wrong_digit          .01    .02    .04    .02    .01        all
marketing:missing                   .05    .30    .02    .40    .10        all
==================================  =====  =====  =====  =====  =========  ===========================
"""

from __future__ import annotations

import numpy as np

from synth import identifiers, noise, pools
from synth.noise import Noiser, add_tag
from synth.plan import EMAIL, IN_PERSON, MAIL, PHONE, WEB, Plan
from synth.population import Population
from synth.typed import Typed, _product_words, format_phone, personal_id_spaces

POPULATION_RATES = {
    "junior": 0.30,
    "junior_named_after": 0.50,
    "twins": 0.25,
    "two_person_kinds": (0.62, 0.15, 0.23),
    "larger_kinds": (0.68, 0.14, 0.18),
    "landline_old": 0.55,
    "landline_young": 0.15,
    "shared_email": 0.30,
    "joint_account": 0.50,
    "hyphenated_first_name": 0.06,
    "double_surname": 0.05,
    "couple_double_surname": 0.15,
    "couple_same_surname": 0.60,
}

PLAN_RATES = {
    "household_move": 0.12,
    "move_alone": 0.10,
    "surname_change": 0.08,
    "web_authenticated": 0.55,
    "identity_checked": 0.80,
}

# Share of people (with two or more given names) who go by their second name.
SECOND_NAME_CALLERS = 0.15

# Per channel: web, phone, mail, email, in_person (see the table above).
RATES: dict[str, tuple[float, float, float, float, float]] = {
    "personal_id:missing": (0.20, 0.55, 0.18, 0.60, 0.05),
    "personal_id:invalid": (0.03, 0.07, 0.10, 0.06, 0.02),
    "personal_id:cosmetic": (0.06, 0.05, 0.10, 0.10, 0.02),
    "name:order_swapped": (0.0, 0.12, 0.08, 0.05, 0.0),
    "name:fields_swapped": (0.02, 0.0, 0.0, 0.0, 0.01),
    "name:all_in_first_names": (0.01, 0.0, 0.0, 0.0, 0.005),
    "first_names:first_only": (0.20, 0.35, 0.15, 0.35, 0.05),
    "first_names:middle_dropped": (0.15, 0.20, 0.20, 0.15, 0.05),
    "first_names:reordered": (0.02, 0.04, 0.03, 0.03, 0.01),
    "first_names:hyphen": (0.25, 0.45, 0.30, 0.30, 0.10),
    "first_names:typo": (0.02, 0.07, 0.09, 0.03, 0.01),
    "last_name:typo": (0.01, 0.035, 0.045, 0.015, 0.005),
    "last_name:one_part": (0.20, 0.40, 0.25, 0.35, 0.05),
    "last_name:hyphen_space": (0.05, 0.08, 0.06, 0.05, 0.02),
    "last_name:former": (0.10, 0.30, 0.25, 0.30, 0.02),
    "name:case": (0.04, 0.05, 0.15, 0.04, 0.02),
    "name:ascii": (0.04, 0.08, 0.03, 0.06, 0.01),
    "name:spaces": (0.03, 0.04, 0.06, 0.05, 0.03),
    "first_names:missing": (0.005, 0.02, 0.005, 0.01, 0.0),
    "address:missing": (0.02, 0.06, 0.0, 0.20, 0.03),
    "street:no_apartment": (0.06, 0.15, 0.08, 0.15, 0.04),
    "street:apartment_written": (0.15, 0.20, 0.25, 0.20, 0.15),
    "street:abbreviated": (0.06, 0.12, 0.12, 0.10, 0.06),
    "street:typo": (0.01, 0.04, 0.05, 0.02, 0.01),
    "street:upper": (0.03, 0.03, 0.10, 0.03, 0.02),
    "postal_code:wrong_digit": (0.005, 0.02, 0.03, 0.01, 0.005),
    "city:upper": (0.05, 0.05, 0.5, 0.05, 0.05),
    "city:typo": (0.005, 0.02, 0.03, 0.01, 0.005),
    "phone:missing": (0.08, 0.03, 0.35, 0.35, 0.10),
    "phone:landline": (0.30, 0.60, 0.50, 0.30, 0.40),
    "phone:other_member": (0.01, 0.05, 0.02, 0.02, 0.01),
    "phone:wrong_digit": (0.01, 0.03, 0.05, 0.01, 0.01),
    "phone:format": (0.70, 0.70, 0.70, 0.70, 0.70),
    "email:missing": (0.03, 0.40, 0.55, 0.0, 0.25),
    "email:other_domain": (0.03, 0.05, 0.05, 0.06, 0.03),
    "email:case": (0.05, 0.04, 0.10, 0.05, 0.03),
    "email:typo": (0.01, 0.04, 0.06, 0.0, 0.01),
    "email:spaces": (0.02, 0.02, 0.03, 0.0, 0.02),
    "account:missing": (0.35, 0.50, 0.40, 0.55, 0.30),
    "account:domestic": (0.0, 0.30, 0.35, 0.10, 0.0),
    "account:format": (0.5, 0.5, 0.5, 0.5, 0.5),
    "account:wrong_digit": (0.01, 0.03, 0.05, 0.02, 0.01),
    "metering_point:missing": (0.30, 0.50, 0.45, 0.50, 0.30),
    "metering_point:wrong_digit": (0.01, 0.02, 0.04, 0.02, 0.01),
    "metering_point:spaces": (0.03, 0.03, 0.05, 0.03, 0.03),
    "product:missing": (0.0, 0.01, 0.02, 0.03, 0.01),
    "marketing:missing": (0.05, 0.30, 0.02, 0.40, 0.10),
}

# How one kind splits into its tokens.
PERSONAL_ID_INVALID = (("wrong_digit", 0.35), ("swapped_digits", 0.20), ("check_char", 0.25),
                       ("century_sign", 0.20))
PERSONAL_ID_COSMETIC = (("lower_case", 0.4), ("inner_spaces", 0.35), ("surrounding_spaces", 0.25))
TYPOS = (("typo_key", 0.35), ("typo_missing", 0.25), ("typo_doubled", 0.20), ("typo_swapped", 0.20))
HYPHEN = (("hyphen_space", 0.6), ("hyphen_joined", 0.4))
CASE_UPPER = 0.7


# --- the operations ------------------------------------------------------------------------------

_CHECK_CHARS = "0123456789ABCDEFHJKLMNPRSTUVWXY"
# The century sign people type by mistake: the classic sign out of habit, or the neighbouring century.
_SIGN_SLIPS = {"-": "+A", "+": "-", "A": "-", "Y": "-", "X": "-", "W": "-", "V": "-", "U": "-",
               "B": "A", "C": "A", "D": "A", "E": "A", "F": "A"}


def _at(options: str, u: float) -> str:
    return options[min(int(u * len(options)), len(options) - 1)]


def check_char_wrong(code: str, u: float, _v: float = 0.0) -> str:
    """Another check character (the last one).

    >>> check_char_wrong('120385-1232', 0.0)
    '120385-1233'
    """
    if len(code) != 11 or code[-1] not in _CHECK_CHARS:
        return code
    i = _CHECK_CHARS.index(code[-1])
    return code[:-1] + _CHECK_CHARS[(i + 1 + int(u * (len(_CHECK_CHARS) - 1))) % len(_CHECK_CHARS)]


def century_sign_wrong(code: str, u: float, _v: float = 0.0) -> str:
    """Another century sign: the classic '-' for a new one, or the neighbouring century.

    >>> century_sign_wrong('120385Y1232', 0.0), century_sign_wrong('120385-1232', 0.9)
    ('120385-1232', '120385A1232')
    """
    if len(code) != 11 or code[6] not in _SIGN_SLIPS:
        return code
    return code[:6] + _at(_SIGN_SLIPS[code[6]], u) + code[7:]


def _letters(value: str) -> list[int]:
    """Positions of letters other than the first of each name (initials are rarely mistyped)."""
    return [i for i, ch in enumerate(value) if ch.isalpha() and i > 0 and value[i - 1].isalpha()]


def typo_key(value: str, u: float, v: float) -> str:
    """A neighbouring key for one letter (not an initial).

    >>> typo_key('Aino', 0.0, 0.0)
    'Auno'
    """
    positions = [i for i in _letters(value) if value[i].lower() in noise._NEIGHBOURS]
    if not positions:
        return value
    i = noise._pick(positions, u)
    options = noise._NEIGHBOURS[value[i].lower()]
    new = _at(options, v)
    return value[:i] + (new.upper() if value[i].isupper() else new) + value[i + 1:]


def _word_length(value: str, i: int) -> int:
    start = max(value.rfind(" ", 0, i), value.rfind("-", 0, i)) + 1
    ends = [e for e in (value.find(" ", i), value.find("-", i)) if e >= 0]
    return (min(ends) if ends else len(value)) - start


def typo_missing(value: str, u: float, _v: float = 0.0) -> str:
    """One letter left out (not an initial, not from a name of three letters or fewer).

    >>> typo_missing('Aino', 0.0), typo_missing('Eva', 0.0)
    ('Ano', 'Eva')
    """
    positions = [i for i in _letters(value) if _word_length(value, i) > 3]
    if not positions:
        return value
    i = noise._pick(positions, u)
    return value[:i] + value[i + 1:]


def typo_doubled(value: str, u: float, _v: float = 0.0) -> str:
    """One letter typed twice.

    >>> typo_doubled('Aino', 0.0)
    'Aiino'
    """
    positions = _letters(value)
    if not positions:
        return value
    i = noise._pick(positions, u)
    return value[:i] + value[i] + value[i:]


def typo_swapped(value: str, u: float, _v: float = 0.0) -> str:
    """Two neighbouring letters swapped (not an initial).

    >>> typo_swapped('Aino', 0.0)
    'Anio'
    """
    positions = [i for i in _letters(value) if i + 1 < len(value) and value[i + 1].isalpha()
                 and value[i] != value[i + 1]]
    if not positions:
        return value
    i = noise._pick(positions, u)
    return value[:i] + value[i + 1] + value[i] + value[i + 2:]


_TYPO_FUNCTIONS = {"typo_key": typo_key, "typo_missing": typo_missing, "typo_doubled": typo_doubled,
                   "typo_swapped": typo_swapped}


def middle_dropped(value: str, u: float, _v: float = 0.0) -> str:
    """One of the later given names left out (three or more names).

    >>> middle_dropped('Aino Maria Sofia', 0.0)
    'Aino Sofia'
    """
    return noise.drop_a_middle_name(value, u)


def second_only(value: str, _u: float = 0.0, _v: float = 0.0) -> str:
    """Only the second given name: the one the person goes by.

    >>> second_only('Aino Maria Sofia')
    'Maria'
    """
    names = value.split(" ")
    return names[1] if len(names) > 1 else value


def reordered(value: str, u: float, _v: float = 0.0) -> str:
    """Two given names in the other order (the call name put first).

    >>> reordered('Aino Maria Sofia', 0.0)
    'Maria Aino Sofia'
    """
    names = value.split(" ")
    if len(names) < 2:
        return value
    k = 1 + min(int(u * (len(names) - 1)), len(names) - 2)
    names[0], names[k] = names[k], names[0]
    return " ".join(names)


def hyphen_space(value: str, _u: float = 0.0, _v: float = 0.0) -> str:
    """'Anna-Liisa' written 'Anna Liisa'."""
    return value.replace("-", " ")


def hyphen_joined(value: str, _u: float = 0.0, _v: float = 0.0) -> str:
    """'Anna-Liisa' written 'Annaliisa'.

    >>> hyphen_joined('Anna-Liisa Maria')
    'Annaliisa Maria'
    """
    out = value
    while "-" in out:
        i = out.index("-")
        out = out[:i] + out[i + 1:i + 2].lower() + out[i + 2:]
    return out


def one_part(value: str, u: float, _v: float = 0.0) -> str:
    """One part of a double surname.

    >>> one_part('Virtanen-Korhonen', 0.0), one_part('Virtanen-Korhonen', 0.9)
    ('Virtanen', 'Korhonen')
    """
    parts = value.split("-")
    if len(parts) < 2:
        return value
    return parts[min(int(u * len(parts)), len(parts) - 1)]


_ABBREVIATED = (("bulevardi", "bulev."), ("puistokatu", "pk."), ("puistotie", "pt."), ("katu", "k."),
                ("kuja", "kj."), ("polku", "p."), ("tie", "t."))


def _split_flat(street: str) -> tuple[str, str, str] | None:
    """('Rautatienkatu 5', 'B', '12') for a flat's address, None for a house's."""
    parts = street.rsplit(" ", 2)
    if len(parts) == 3 and parts[2].isdigit() and (parts[1] == "as." or (len(parts[1]) == 1 and parts[1].isalpha())) \
            and parts[0][-1:].isdigit():
        return parts[0], parts[1], parts[2]
    return None


def no_apartment(street: str, _u: float = 0.0, _v: float = 0.0) -> str:
    """The building only, without the staircase and flat.

    >>> no_apartment('Rautatienkatu 5 B 12')
    'Rautatienkatu 5'
    """
    flat = _split_flat(street)
    return flat[0] if flat else street


def apartment_written(street: str, u: float, _v: float = 0.0) -> str:
    """The staircase and flat written another way.

    >>> [apartment_written('Rautatienkatu 5 B 12', u) for u in (0.0, 0.3, 0.5, 0.8)]
    ['Rautatienkatu 5 B12', 'Rautatienkatu 5 b 12', 'Rautatienkatu 5 b12', 'Rautatienkatu 5 B as. 12']
    >>> [apartment_written('Rautatienkatu 5 as. 12', u) for u in (0.0, 0.5, 0.9)]
    ['Rautatienkatu 5 as 12', 'Rautatienkatu 5 as.12', 'Rautatienkatu 5 asunto 12']
    """
    flat = _split_flat(street)
    if not flat:
        return street
    building, stair, number = flat
    if stair == "as.":
        style = ("as {}", "as.{}", "asunto {}")[min(int(u * 3), 2)]
        return f"{building} {style.format(number)}"
    style = min(int(u * 4), 3)
    written = (f"{stair}{number}", f"{stair.lower()} {number}", f"{stair.lower()}{number}",
               f"{stair} as. {number}")[style]
    return f"{building} {written}"


def abbreviated(street: str, _u: float = 0.0, _v: float = 0.0) -> str:
    """The street type shortened: 'Rautatienkatu 5' -> 'Rautatienk. 5'.

    >>> abbreviated('Rautatienkatu 5 B 12'), abbreviated('Vanha Rajatie 3')
    ('Rautatienk. 5 B 12', 'Vanha Rajat. 3')
    """
    words = street.split(" ")
    # The street name ends before the house number.
    end = next((k for k, w in enumerate(words) if w[:1].isdigit()), len(words))
    if end == 0:
        return street
    last = words[end - 1]
    for long, short in _ABBREVIATED:
        if last.lower().endswith(long) and len(last) > len(long):
            words[end - 1] = last[:-len(long)] + short
            return " ".join(words)
        if last.lower() == long and end >= 2:  # 'Gustav Pauligin katu'
            words[end - 1] = short
            return " ".join(words)
    return street


def other_domain(email: str, u: float, _v: float = 0.0) -> str:
    """The same name at another of the e-mail domains."""
    user, _, domain = email.partition("@")
    others = [d for d in pools.EMAIL_DOMAINS if d != domain]
    return f"{user}@{others[min(int(u * len(others)), len(others) - 1)]}"


def email_case(email: str, u: float, _v: float = 0.0) -> str:
    """Capitals somewhere: 'Aino.Makinen@Example.fi', all capitals, or a capital initial."""
    user, _, domain = email.partition("@")
    if u < 0.4:
        return ".".join(p.capitalize() for p in user.split(".")) + "@" + domain.capitalize()
    if u < 0.6:
        return email.upper()
    return email[:1].upper() + email[1:]


def email_typo(email: str, u: float, v: float) -> str:
    user, _, domain = email.partition("@")
    function = _TYPO_FUNCTIONS[TYPOS[min(int(v * len(TYPOS)), len(TYPOS) - 1)][0]]
    return function(user, u, v) + "@" + domain


# --- per record ----------------------------------------------------------------------------------

def person_traits(rng: np.random.Generator, pop: Population) -> dict[str, np.ndarray]:
    """Traits that hold for a person in every channel: going by the second given name."""
    several = np.array([" " in f for f in pop.first_names], dtype=bool)
    return {"second_name_caller": several & (rng.random(len(pop)) < SECOND_NAME_CALLERS)}


def _split(nz: Noiser, mask: np.ndarray, parts) -> list[np.ndarray]:
    """Split a mask among tokens by their shares."""
    weights = np.array([w for _, w in parts], dtype=float)
    cut = np.cumsum(weights / weights.sum())
    u = nz.rng.random(len(mask))
    which = np.minimum(np.searchsorted(cut, u, side="right"), len(parts) - 1)
    return [mask & (which == k) for k in range(len(parts))]


def _household_peers(pop: Population) -> tuple[np.ndarray, np.ndarray]:
    """First person and size of each person's household (members are contiguous)."""
    sizes = np.bincount(pop.household, minlength=pop.households)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    return starts[pop.household], sizes[pop.household]


def _shared_within_household(pop: Population, values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Per person: the value is also another member's of the same household."""
    keys = np.array([f"{h}\x00{v}" for h, v in zip(pop.household.tolist(), values.tolist())], dtype=object)
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return present & (counts[inverse] > 1)


def type_channel(channel: int, plan: Plan, pop: Population, nz: Noiser,
                 traits: dict[str, np.ndarray]) -> Typed:
    """The records of one channel, typed with the varied profile's noise."""
    index = np.flatnonzero(plan.channel == channel)
    n = len(index)
    person = plan.person[index]
    rng = nz.rng
    places = pools.places()
    tags = np.full(n, "", dtype=object)
    pid_noise = np.full(n, "", dtype=object)
    language = pop.language[person]

    def rate(kind: str) -> float:
        return RATES[kind][channel]

    def choose(kind: str, where: np.ndarray | None = None) -> np.ndarray:
        return nz.choose(n, rate(kind), where)

    exact = plan.verified[index] if channel in (WEB, IN_PERSON) else np.zeros(n, dtype=bool)
    by_hand = ~exact

    # Identity code
    pid = pop.personal_id[person].copy()
    missing = choose("personal_id:missing", by_hand)
    nz.blank(pid, missing, tags, "personal_id:missing")
    add_tag(pid_noise, missing, "missing")
    functions = {"wrong_digit": noise.wrong_digit, "swapped_digits": noise.swap_adjacent_digits,
                 "check_char": check_char_wrong, "century_sign": century_sign_wrong,
                 "lower_case": noise.lower, "inner_spaces": personal_id_spaces,
                 "surrounding_spaces": noise.surrounding_spaces}
    for kind, parts in (("personal_id:invalid", PERSONAL_ID_INVALID), ("personal_id:cosmetic", PERSONAL_ID_COSMETIC)):
        for (name, _), mask in zip(parts, _split(nz, choose(kind, by_hand), parts)):
            changed = nz.apply(pid, mask, functions[name], tags, f"personal_id:{name}")
            add_tag(pid_noise, changed, name)

    # Names: the surname in force, or the earlier one after a change.
    first = pop.first_names[person].copy()
    last = plan.last_name[index].copy()
    renamed = np.array(["surname_changed" in e for e in plan.events[index]], dtype=bool)
    former = choose("last_name:former", by_hand & renamed)
    last[former] = pop.last_name[person][former]
    add_tag(tags, former & (last != plan.last_name[index]), "last_name:former")

    # Given names: shortened or reordered (one of these at most).
    count = np.array([f.count(" ") + 1 for f in first], dtype=int)
    caller = traits["second_name_caller"][person]
    a, b, c = (nz.rate(rate(k)) for k in ("first_names:first_only", "first_names:middle_dropped",
                                            "first_names:reordered"))
    u = rng.random(n)
    shortened = by_hand & (u < a) & (count >= 2)
    nz.apply(first, shortened & ~caller, noise.first_name_only, tags, "first_names:first_only")
    nz.apply(first, shortened & caller, second_only, tags, "first_names:second_only")
    nz.apply(first, by_hand & (u >= a) & (u < a + b) & (count >= 3), middle_dropped, tags,
             "first_names:middle_dropped")
    nz.apply(first, by_hand & (u >= a + b) & (u < a + b + c) & (count >= 2), reordered, tags,
             "first_names:reordered")
    hyphenated = np.array(["-" in f for f in first], dtype=bool)
    for (name, _), mask in zip(HYPHEN, _split(nz, choose("first_names:hyphen", by_hand & hyphenated), HYPHEN)):
        nz.apply(first, mask, hyphen_space if name == "hyphen_space" else hyphen_joined, tags, f"first_names:{name}")

    # Double surnames: one part only, or a space for the hyphen.
    double = np.array(["-" in s for s in last], dtype=bool)
    u = rng.random(n)
    one = by_hand & double & (u < nz.rate(rate("last_name:one_part")))
    nz.apply(last, one, one_part, tags, "last_name:one_part")
    spaced = by_hand & double & ~one & (u >= 1 - nz.rate(rate("last_name:hyphen_space")))
    nz.apply(last, spaced, hyphen_space, tags, "last_name:hyphen_space")

    # Typos: given names, surname.
    for values, field_name in ((first, "first_names"), (last, "last_name")):
        chosen = choose(f"{field_name}:typo", by_hand)
        for (name, _), mask in zip(TYPOS, _split(nz, chosen, TYPOS)):
            nz.apply(values, mask, _TYPO_FUNCTIONS[name], tags, f"{field_name}:{name}")

    # Letters: ascii, case, spaces.
    ascii_mask = choose("name:ascii", by_hand)
    changed = nz.apply(first, ascii_mask, noise.ascii_fold, None, "") | \
        nz.apply(last, ascii_mask, noise.ascii_fold, None, "")
    add_tag(tags, changed, "name:ascii")
    case = choose("name:case", by_hand)
    upper = rng.random(n) < CASE_UPPER
    for mask, function, token in ((case & upper, noise.upper, "name:upper"), (case & ~upper, noise.lower, "name:lower")):
        changed = nz.apply(first, mask, function, None, "") | nz.apply(last, mask, function, None, "")
        add_tag(tags, changed, token)
    spaces = choose("name:spaces")
    changed = nz.apply(first, spaces, noise.doubled_space, None, "") | \
        nz.apply(last, spaces, noise.surrounding_spaces, None, "")
    add_tag(tags, changed, "name:spaces")
    nz.blank(first, choose("first_names:missing", by_hand), tags, "first_names:missing")

    # Names in the wrong place: the order of a one-field name, or the two fields.
    swapped = np.zeros(n, dtype=bool)
    if channel in (PHONE, MAIL):
        swapped = choose("name:order_swapped", by_hand) & (first != "") & (last != "")
        add_tag(tags, swapped, "name:order_swapped")
    elif channel == EMAIL:  # one line, given names first: the fields swapped write the surname first
        flip = choose("name:order_swapped", by_hand) & (first != "") & (last != "")
        first[flip], last[flip] = last[flip], first[flip].copy()
        add_tag(tags, flip, "name:order_swapped")
    else:
        flip = choose("name:fields_swapped", by_hand) & (first != "") & (last != "")
        first[flip], last[flip] = last[flip], first[flip].copy()
        add_tag(tags, flip, "name:fields_swapped")
        together = choose("name:all_in_first_names", by_hand & ~flip) & (first != "") & (last != "")
        first[together] = first[together] + " " + last[together]
        last[together] = ""
        add_tag(tags, together, "name:all_in_first_names")

    # Phone: the mobile, the household's landline, or another member's mobile.
    mobile, landline = pop.mobile[person], pop.landline[person]
    use_landline = (landline != "") & ((mobile == "") | (rng.random(n) < nz.rate(rate("phone:landline"))))
    phone = np.where(use_landline, landline, mobile).astype(object)
    add_tag(tags, use_landline, "phone:landline")
    start, size = _household_peers(pop)
    step = 1 + (rng.random(n) * np.maximum(size[person] - 1, 1)).astype(np.int64)
    peer = start[person] + (person - start[person] + step) % size[person]
    other = choose("phone:other_member", (size[person] > 1) & ~use_landline) & (pop.mobile[peer] != "")
    phone[other] = pop.mobile[peer][other]
    add_tag(tags, other, "phone:other_member")
    nz.blank(phone, choose("phone:missing"), tags, "phone:missing")
    wrong = choose("phone:wrong_digit") & (phone != "")
    nz.apply(phone, wrong, lambda v, x, y: v[:4] + noise.wrong_digit(v[4:], x, y), tags, "phone:wrong_digit")
    style = np.where(choose("phone:format"), rng.integers(0, 6, n), 4)  # 4: E.164 as stored
    present = phone != ""
    for i in np.flatnonzero(present).tolist():
        phone[i] = format_phone(phone[i], int(style[i]))
    add_tag(tags, present & (style != 4), "phone:format")

    # E-mail
    email = pop.email[person].copy()
    if channel != EMAIL:
        nz.blank(email, choose("email:missing"), tags, "email:missing")
    add_tag(tags, _shared_within_household(pop, pop.email, pop.email != "")[person] & (email != ""), "email:shared")
    nz.apply(email, choose("email:other_domain"), other_domain, tags, "email:other_domain")
    nz.apply(email, choose("email:typo"), email_typo, tags, "email:typo")
    nz.apply(email, choose("email:case"), email_case, tags, "email:case")
    nz.apply(email, choose("email:spaces"), noise.surrounding_spaces, tags, "email:spaces")

    # Address in force (after a move, the new one); Swedish speakers write the Swedish town name.
    address = plan.address[index]
    moved = np.array([("moved" in e) for e in plan.events[index]], dtype=bool)
    add_tag(tags, moved, "address:moved")
    street = pop.addresses.street_address[address].copy()
    postal = pop.addresses.postal_code[address].copy()
    city_index = pop.addresses.city[address]
    city = np.where(language == "sv", places.city_swedish[city_index], places.cities[city_index]).astype(object)
    add_tag(tags, city != places.cities[city_index], "city:swedish")
    gone = choose("address:missing")
    for values in (street, postal, city):
        values[gone] = ""
    add_tag(tags, gone, "address:missing")
    flat = np.array([_split_flat(s) is not None for s in street], dtype=bool)
    u = rng.random(n)
    bare = flat & (u < nz.rate(rate("street:no_apartment")))
    nz.apply(street, bare, no_apartment, tags, "street:no_apartment")
    nz.apply(street, flat & ~bare & (u >= 1 - nz.rate(rate("street:apartment_written"))), apartment_written, tags,
             "street:apartment_written")
    nz.apply(street, choose("street:abbreviated"), abbreviated, tags, "street:abbreviated")
    nz.apply(street, choose("street:typo"), typo_key, tags, "street:typo")
    nz.apply(street, choose("street:upper"), noise.upper, tags, "street:upper")
    nz.apply(postal, choose("postal_code:wrong_digit"), noise.wrong_digit, tags, "postal_code:wrong_digit")
    nz.apply(city, choose("city:upper"), noise.upper, tags, "city:upper")
    nz.apply(city, choose("city:typo"), typo_key, tags, "city:typo")

    # Bank account
    iban = pop.iban[person]
    account = np.array([identifiers.format_iban(v) if v else "" for v in iban.tolist()], dtype=object)
    nz.blank(account, choose("account:missing"), tags, "account:missing")
    add_tag(tags, _shared_within_household(pop, pop.bban, pop.bban > 0)[person] & (account != ""), "account:joint")
    domestic = choose("account:domestic") & (account != "")
    bban = pop.bban[person]
    for i in np.flatnonzero(domestic).tolist():
        account[i] = identifiers.domestic_account(f"{bban[i]:014d}")
    add_tag(tags, domestic, "account:domestic")
    nz.apply(account, choose("account:format", ~domestic), lambda v, x, y: v.replace(" ", ""), tags,
             "account:compact")
    nz.apply(account, choose("account:wrong_digit"), noise.wrong_digit, tags, "account:wrong_digit")

    # Metering point, product, direct-marketing prohibition
    metering = plan.metering_point[index].copy()
    nz.blank(metering, choose("metering_point:missing"), tags, "metering_point:missing")
    nz.apply(metering, choose("metering_point:wrong_digit"), noise.wrong_digit, tags, "metering_point:wrong_digit")
    nz.apply(metering, choose("metering_point:spaces"), lambda v, x, y: " ".join(v[i:i + 3] for i in range(0, 18, 3)),
             tags, "metering_point:spaces")
    product = _product_words(channel, plan.product[index], language, rng)
    nz.blank(product, choose("product:missing"), tags, "product:missing")
    marketing = plan.marketing_prohibited[index].astype(object)
    unstated = choose("marketing:missing")
    marketing[unstated] = None
    add_tag(tags, unstated, "marketing:missing")

    return Typed(index=index, first_names=first, last_name=last, personal_id=pid, street=street,
                 postal_code=postal, city=city, phone=phone, email=email, account=account, product=product,
                 metering_point=metering, marketing=marketing, name_order_swapped=swapped, language=language,
                 tags=tags, personal_id_noise=pid_noise)
