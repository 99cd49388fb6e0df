"""The values of each record as typed in its channel, with honest noise.

Every channel starts from the person's true details at the record's time and
applies its own profile of noise (rates at noise level 1; `noise` scales them).
The mail room keys letters in by hand and has the most typing mistakes; the
web service with strong authentication and the service desk with an ID check
carry exact names and codes. Each change is tagged ("field:operation") for the
ground truth; changes to the identity code also go to `personal_id_noise`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from synth import identifiers, noise, pools
from synth.noise import Noiser
from synth.plan import EMAIL, IN_PERSON, MAIL, PHONE, WEB, Plan
from synth.population import Population


@dataclass(frozen=True)
class Profile:
    personal_id_missing: float
    personal_id_cosmetic: float   # lower case, inner or surrounding spaces
    personal_id_mistake: float    # wrong digit, swapped digits, letter O for zero
    first_name_only: float
    name_case: float
    name_typo: float
    name_ascii: float
    name_order_swapped: float
    spaces: float
    first_names_missing: float
    phone_missing: float
    phone_format: float
    phone_mistake: float
    email_missing: float
    email_case: float
    email_mistake: float
    address_missing: float
    street_variant: float
    postal_mistake: float
    city_upper: float
    account_missing: float
    account_domestic: float
    account_format: float
    account_mistake: float
    metering_missing: float
    metering_mistake: float
    product_missing: float
    product_unknown: float
    marketing_missing: float
    # The e-mail name at the wrong one of the big providers (aino.makinen@ at example.com,
    # not example.fi): a slip of the customer or of whoever keys it, and often a namesake's
    # address. Not in the e-mail channel, whose sender is the mailbox itself.
    email_provider: float = 0.0
    # Another member's mobile given for this one (a parent's on a child's contract, one
    # partner's for the other).
    phone_other_member: float = 0.0


# Base rates at noise level 1 (the mail room has the most typing mistakes; a third or more
# of phone and e-mail records come without an identity code).
PROFILES: dict[int, Profile] = {
    WEB: Profile(personal_id_missing=0.12, personal_id_cosmetic=0.05, personal_id_mistake=0.02,
        first_name_only=0.15, name_case=0.04, name_typo=0.01, name_ascii=0.02,
        name_order_swapped=0.0, spaces=0.03, first_names_missing=0.005, phone_missing=0.08,
        phone_format=0.6, phone_mistake=0.01, email_missing=0.03, email_case=0.04,
        email_mistake=0.01, address_missing=0.02, street_variant=0.08, postal_mistake=0.005,
        city_upper=0.05, account_missing=0.35, account_domestic=0.0, account_format=0.5,
        account_mistake=0.01, metering_missing=0.3, metering_mistake=0.01, product_missing=0.0,
        product_unknown=0.0, marketing_missing=0.05, email_provider=0.01, phone_other_member=0.005),
    PHONE: Profile(personal_id_missing=0.4, personal_id_cosmetic=0.03, personal_id_mistake=0.03,
        first_name_only=0.35, name_case=0.06, name_typo=0.03, name_ascii=0.05,
        name_order_swapped=0.015, spaces=0.04, first_names_missing=0.02, phone_missing=0.05,
        phone_format=0.6, phone_mistake=0.02, email_missing=0.35, email_case=0.03,
        email_mistake=0.03, address_missing=0.05, street_variant=0.12, postal_mistake=0.01,
        city_upper=0.05, account_missing=0.45, account_domestic=0.3, account_format=0.5,
        account_mistake=0.03, metering_missing=0.5, metering_mistake=0.02, product_missing=0.01,
        product_unknown=0.0, marketing_missing=0.3, email_provider=0.03, phone_other_member=0.02),
    MAIL: Profile(personal_id_missing=0.1, personal_id_cosmetic=0.08, personal_id_mistake=0.07,
        first_name_only=0.15, name_case=0.12, name_typo=0.05, name_ascii=0.02,
        name_order_swapped=0.02, spaces=0.06, first_names_missing=0.005, phone_missing=0.3,
        phone_format=0.6, phone_mistake=0.04, email_missing=0.5, email_case=0.08,
        email_mistake=0.05, address_missing=0.01, street_variant=0.15, postal_mistake=0.03,
        city_upper=0.6, account_missing=0.4, account_domestic=0.35, account_format=0.5,
        account_mistake=0.05, metering_missing=0.45, metering_mistake=0.04, product_missing=0.02,
        product_unknown=0.01, marketing_missing=0.02, email_provider=0.03, phone_other_member=0.01),
    EMAIL: Profile(personal_id_missing=0.45, personal_id_cosmetic=0.08, personal_id_mistake=0.03,
        first_name_only=0.3, name_case=0.03, name_typo=0.01, name_ascii=0.03,
        name_order_swapped=0.0, spaces=0.05, first_names_missing=0.01, phone_missing=0.3,
        phone_format=0.6, phone_mistake=0.01, email_missing=0.0, email_case=0.05,
        email_mistake=0.0, address_missing=0.15, street_variant=0.1, postal_mistake=0.01,
        city_upper=0.05, account_missing=0.5, account_domestic=0.1, account_format=0.5,
        account_mistake=0.02, metering_missing=0.5, metering_mistake=0.02, product_missing=0.03,
        product_unknown=0.01, marketing_missing=0.4, phone_other_member=0.01),
    IN_PERSON: Profile(personal_id_missing=0.03, personal_id_cosmetic=0.02, personal_id_mistake=0.01,
        first_name_only=0.05, name_case=0.03, name_typo=0.01, name_ascii=0.0,
        name_order_swapped=0.0, spaces=0.03, first_names_missing=0.0, phone_missing=0.1,
        phone_format=0.5, phone_mistake=0.01, email_missing=0.2, email_case=0.03,
        email_mistake=0.01, address_missing=0.02, street_variant=0.08, postal_mistake=0.005,
        city_upper=0.05, account_missing=0.3, account_domestic=0.0, account_format=0.5,
        account_mistake=0.01, metering_missing=0.3, metering_mistake=0.01, product_missing=0.01,
        product_unknown=0.0, marketing_missing=0.1, email_provider=0.01, phone_other_member=0.005),
}


@dataclass
class Typed:
    """One channel's records as typed: parallel object arrays over `index` (rows of the plan)."""

    index: np.ndarray
    first_names: np.ndarray
    last_name: np.ndarray
    personal_id: np.ndarray
    street: np.ndarray
    postal_code: np.ndarray
    city: np.ndarray
    phone: np.ndarray
    email: np.ndarray
    account: np.ndarray
    product: np.ndarray            # channel wording ('' missing)
    metering_point: np.ndarray
    marketing: np.ndarray          # True / False / None (not stated)
    name_order_swapped: np.ndarray  # bool
    language: np.ndarray
    tags: np.ndarray               # "field:operation ..." per record
    personal_id_noise: np.ndarray  # "operation ..." per record
    extra: dict[str, np.ndarray] = field(default_factory=dict)


# Many Finns go by a given name other than their first (the call name, "kutsumanimi", of the
# population register): a form filled in by hand with one given name carries that one.
CALL_NAME_NOT_FIRST = 0.12  # of people with two or more given names
CALL_NAME_THIRD = 0.25      # of those with three or more: the third rather than the second
# One later given name left out when all of them are keyed by hand (three or more names).
MIDDLE_NAME_DROPPED = {WEB: 0.03, PHONE: 0.10, MAIL: 0.07, EMAIL: 0.05, IN_PERSON: 0.02}


def _unit_hash(values: np.ndarray, salt: bytes) -> np.ndarray:
    """A number in [0, 1) per value, fixed by the value: the same person in every channel."""
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values.tolist()):
        digest = hashlib.blake2b(str(value).encode(), digest_size=8, key=salt).digest()
        out[i] = int.from_bytes(digest, "big") / 2.0 ** 64
    return out


def call_names(first_names: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The given name each person goes by. Read from a hash of the identity code, so every
    channel gives the same one and the zone's random stream is not touched.

    >>> call_names(np.array(['Aino Maria', 'Aino'], dtype=object), np.array(['a', 'b'], dtype=object)).tolist()
    ['Aino', 'Aino']
    """
    u = _unit_hash(codes, b"call-name")
    out = np.empty(len(first_names), dtype=object)
    for i, (names, draw) in enumerate(zip(first_names.tolist(), u.tolist())):
        parts = names.split(" ")
        k = 0
        if len(parts) >= 2 and draw < CALL_NAME_NOT_FIRST:
            k = 2 if len(parts) >= 3 and draw < CALL_NAME_NOT_FIRST * CALL_NAME_THIRD else 1
        out[i] = parts[k]
    return out


# --- formatting helpers --------------------------------------------------------------

def _split_number(e164: str) -> tuple[str, str]:
    """Area (or mobile prefix) and subscriber part of a +358 number."""
    national = e164[4:]
    size = 2 if national[0] in "14" or national.startswith("50") else 1
    return national[:size], national[size:]


def format_phone(e164: str, style: int) -> str:
    """A Finnish number as people write it.

    >>> [format_phone('+358401234567', s) for s in range(6)]
    ['040 123 4567', '0401234567', '040-1234567', '+358 40 123 4567', '+358401234567', '00358401234567']
    """
    area, rest = _split_number(e164)
    if style == 0:
        return f"0{area} {rest[:3]} {rest[3:]}"
    if style == 1:
        return f"0{area}{rest}"
    if style == 2:
        return f"0{area}-{rest}"
    if style == 3:
        return f"+358 {area} {rest[:3]} {rest[3:]}"
    if style == 4:
        return e164
    return "00358" + area + rest


def personal_id_spaces(code: str, u: float, _v: float = 0.0) -> str:
    """Spaces inside an identity code, as people type them.

    >>> personal_id_spaces('120385-1232', 0.0)
    '120385 -1232'
    """
    options = (code[:6] + " " + code[6:], code[:7] + " " + code[7:],
               code[:2] + " " + code[2:4] + " " + code[4:], code[:6] + " " + code[6] + " " + code[7:])
    return options[min(int(u * len(options)), len(options) - 1)]


_ABBREVIATIONS = (("katu ", "k. "), ("tie ", "t. "), ("kuja ", "kj. "), ("polku ", "p. "), ("bulevardi ", "bulev. "))


def street_variant(street: str, u: float, v: float = 0.0) -> str:
    """A street address written another way.

    >>> street_variant('Rautatienkatu 5 B 12', 0.0)
    'Rautatienkatu 5 b 12'
    >>> street_variant('Rautatienkatu 5 B 12', 0.3)
    'Rautatienkatu 5B12'
    >>> street_variant('Rautatienkatu 5 B 12', 0.6)
    'Rautatienk. 5 B 12'
    """
    parts = street.rsplit(" ", 3)
    style = min(int(u * 4), 3)
    if style == 0 and len(parts) == 4 and len(parts[2]) == 1:
        return f"{parts[0]} {parts[1]} {parts[2].lower()} {parts[3]}"
    if style == 1 and len(parts) == 4 and len(parts[2]) == 1:
        return f"{parts[0]} {parts[1]}{parts[2]}{parts[3]}"
    if style == 1 and len(parts) == 4 and parts[2] == "as.":
        return f"{parts[0]} {parts[1]} as {parts[3]}"
    if style == 2:
        for long, short in _ABBREVIATIONS:
            if long in street:
                return street.replace(long, short, 1)
    if style == 3 and len(parts) == 4 and len(parts[2]) == 1:
        return f"{parts[0]} {parts[1]} {parts[2]}{parts[3]}"
    return street.upper() if v < 0.3 else street


def _email_case(value: str, u: float, _v: float = 0.0) -> str:
    if u < 0.6:
        return value[:1].upper() + value[1:]
    if u < 0.8:
        return value.upper()
    user, _, domain = value.partition("@")
    return ".".join(p.capitalize() for p in user.split(".")) + "@" + domain


def _email_typo(value: str, u: float, v: float) -> str:
    user, _, domain = value.partition("@")
    typed = noise.swap_adjacent_letters(user, u) if v < 0.5 else noise.wrong_letter(user, u, v)
    return typed + "@" + domain


def _email_provider(value: str, u: float, _v: float = 0.0) -> str:
    """The same name at another of the generator's providers.

    >>> _email_provider("aino.makinen@example.fi", 0.0)
    'aino.makinen@example.com'
    """
    user, _, domain = value.partition("@")
    others = [d for d in pools.EMAIL_DOMAINS if d != domain]
    return f"{user}@{others[min(int(u * len(others)), len(others) - 1)]}"


def _metering_spaces(value: str, _u: float = 0.0, _v: float = 0.0) -> str:
    return " ".join(value[i:i + 3] for i in range(0, 18, 3))


def _pick_function(functions, weights, rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(len(functions), size=n, p=np.asarray(weights) / np.sum(weights))


def _apply_one_of(nz: Noiser, values: np.ndarray, mask: np.ndarray, options, tags, field_name: str,
                  tag_noise: np.ndarray | None = None) -> None:
    """Apply one of several (name, function, weight) to each masked value."""
    choice = _pick_function([o[1] for o in options], [o[2] for o in options], nz.rng, len(values))
    for k, (name, function, _) in enumerate(options):
        changed = nz.apply(values, mask & (choice == k), function, tags, f"{field_name}:{name}")
        if tag_noise is not None:
            noise.add_tag(tag_noise, changed, name)


# --- the channel typing -----------------------------------------------------------------

def type_channel(channel: int, plan: Plan, pop: Population, nz: Noiser) -> Typed:
    """The records of one channel, typed with that channel's noise."""
    profile = PROFILES[channel]
    index = np.flatnonzero(plan.channel == channel)
    n = len(index)
    person = plan.person[index]
    rng = nz.rng
    places = pools.places()
    tags = np.full(n, "", dtype=object)
    pid_noise = np.full(n, "", dtype=object)
    language = pop.language[person]

    # Exact names and code where the identity was verified electronically or from an ID.
    exact = plan.verified[index] if channel in (WEB, IN_PERSON) else np.zeros(n, dtype=bool)
    by_hand = ~exact

    # Identity code
    pid = pop.personal_id[person].copy()
    missing = nz.choose(n, profile.personal_id_missing, by_hand if channel != IN_PERSON else None)
    nz.blank(pid, missing, tags, "personal_id:missing")
    noise.add_tag(pid_noise, missing, "missing")
    mistake = nz.choose(n, profile.personal_id_mistake, by_hand)
    _apply_one_of(nz, pid, mistake, (("wrong_digit", noise.wrong_digit, 0.45),
                                     ("swapped_digits", noise.swap_adjacent_digits, 0.35),
                                     ("letter_o", noise.letter_o_for_zero, 0.20)),
                  tags, "personal_id", pid_noise)
    cosmetic = nz.choose(n, profile.personal_id_cosmetic, by_hand)
    _apply_one_of(nz, pid, cosmetic, (("lower_case", noise.lower, 0.4),
                                      ("inner_spaces", personal_id_spaces, 0.35),
                                      ("surrounding_spaces", noise.surrounding_spaces, 0.25)),
                  tags, "personal_id", pid_noise)

    # Names
    first = pop.first_names[person].copy()
    last = plan.last_name[index].copy()
    several = np.array([" " in f for f in first], dtype=bool)
    one_name = nz.choose(n, profile.first_name_only, by_hand & several)
    # The one name is the call name; these draws come from a spawned generator, so the rest
    # of the zone is what it was before call names and dropped middle names were written.
    spare = Noiser(rng.spawn(1)[0], nz.level)
    call = call_names(pop.first_names[person], pop.personal_id[person])
    not_first = one_name & (call != np.array([f.split(" ", 1)[0] for f in first], dtype=object))
    first[one_name] = call[one_name]
    noise.add_tag(tags, one_name & ~not_first, "first_names:first_only")
    noise.add_tag(tags, not_first, "first_names:call_name")
    three = np.array([f.count(" ") >= 2 for f in first], dtype=bool)
    spare.apply(first, spare.choose(n, MIDDLE_NAME_DROPPED[channel], by_hand & three), noise.drop_a_middle_name,
                tags, "first_names:middle_dropped")
    ascii_mask = nz.choose(n, profile.name_ascii, by_hand)
    nz.apply(first, ascii_mask, noise.ascii_fold, tags, "first_names:ascii")
    nz.apply(last, ascii_mask, noise.ascii_fold, tags, "last_name:ascii")
    typo = nz.choose(n, profile.name_typo, by_hand)
    which = rng.random(n) < 0.5
    for values, name, mask in ((first, "first_names", typo & which), (last, "last_name", typo & ~which)):
        _apply_one_of(nz, values, mask, (("typo", noise.wrong_letter, 0.5),
                                         ("swapped_letters", noise.swap_adjacent_letters, 0.5)), tags, name)
    case = nz.choose(n, profile.name_case, by_hand)
    upper = rng.random(n) < 0.7
    for values, name in ((first, "first_names"), (last, "last_name")):
        nz.apply(values, case & upper, noise.upper, tags, f"{name}:upper")
        nz.apply(values, case & ~upper, noise.lower, tags, f"{name}:lower")
    nz.apply(first, nz.choose(n, profile.spaces), noise.doubled_space, tags, "first_names:spaces")
    nz.apply(last, nz.choose(n, profile.spaces), noise.surrounding_spaces, tags, "last_name:spaces")
    nz.blank(first, nz.choose(n, profile.first_names_missing, by_hand), tags, "first_names:missing")
    swapped = nz.choose(n, profile.name_order_swapped)
    noise.add_tag(tags, swapped, "name:order_swapped")

    # Phone: the mobile, or the household's landline.
    mobile, landline = pop.mobile[person], pop.landline[person]
    use_landline = (landline != "") & ((mobile == "") | (rng.random(n) < 0.35))
    phone = np.where(use_landline, landline, mobile).astype(object)
    # Drawn from a spawned generator: the rest of a zone is as it was before lent mobiles existed.
    lent = Noiser(rng.spawn(1)[0], nz.level)
    household_size = np.bincount(pop.household)
    first_member = np.r_[0, np.cumsum(household_size)[:-1]][pop.household[person]]  # members are contiguous
    size = household_size[pop.household[person]]
    step = 1 + (lent.rng.random(n) * np.maximum(size - 1, 1)).astype(np.int64)
    member = first_member + (person - first_member + step) % size
    other = lent.choose(n, profile.phone_other_member, (size > 1) & ~use_landline & (phone != ""))
    other &= pop.mobile[member] != ""
    phone[other] = pop.mobile[member][other]
    noise.add_tag(tags, other, "phone:other_member")
    nz.blank(phone, nz.choose(n, profile.phone_missing), tags, "phone:missing")
    wrong = nz.choose(n, profile.phone_mistake) & (phone != "")
    wrong_idx = np.flatnonzero(wrong)
    if len(wrong_idx):
        u = rng.random((len(wrong_idx), 2))
        for j, i in enumerate(wrong_idx.tolist()):
            phone[i] = phone[i][:4] + noise.wrong_digit(phone[i][4:], u[j, 0], u[j, 1])
        noise.add_tag(tags, wrong, "phone:wrong_digit")
    style = np.where(nz.choose(n, profile.phone_format), rng.integers(1, 6, n), 0)
    for i in np.flatnonzero(phone != "").tolist():
        phone[i] = format_phone(phone[i], int(style[i]))
    noise.add_tag(tags, (style > 0) & (phone != ""), "phone:format")

    # E-mail
    email = pop.email[person].copy()
    if channel != EMAIL:
        nz.blank(email, nz.choose(n, profile.email_missing), tags, "email:missing")
    nz.apply(email, nz.choose(n, profile.email_mistake), _email_typo, tags, "email:typo")
    # Drawn from a spawned generator: the rest of a zone is as it was before this slip existed.
    provider = Noiser(rng.spawn(1)[0], nz.level)
    provider.apply(email, provider.choose(n, profile.email_provider), _email_provider, tags, "email:provider")
    nz.apply(email, nz.choose(n, profile.email_case), _email_case, tags, "email:case")
    if channel != EMAIL:
        nz.apply(email, nz.choose(n, profile.spaces), noise.surrounding_spaces, tags, "email:spaces")

    # Address; Swedish speakers write the Swedish name of a bilingual town.
    address = plan.address[index]
    street = pop.addresses.street_address[address].copy()
    postal = pop.addresses.postal_code[address].copy()
    city_index = pop.addresses.city[address]
    city = np.where(language == "sv", places.city_swedish[city_index], places.cities[city_index]).astype(object)
    noise.add_tag(tags, city != places.cities[city_index], "city:swedish")
    gone = nz.choose(n, profile.address_missing)
    for values in (street, postal, city):
        values[gone] = ""
    noise.add_tag(tags, gone, "address:missing")
    part = nz.choose(n, profile.address_missing / 2, ~gone)
    which_part = rng.integers(0, 3, n)
    for k, (values, name) in enumerate(((street, "street"), (postal, "postal_code"), (city, "city"))):
        nz.blank(values, part & (which_part == k), tags, f"{name}:missing")
    nz.apply(street, nz.choose(n, profile.street_variant), street_variant, tags, "street:variant")
    street_typo = nz.choose(n, profile.name_typo)
    _apply_one_of(nz, street, street_typo, (("typo", noise.wrong_letter, 0.5),
                                            ("swapped_letters", noise.swap_adjacent_letters, 0.5)), tags, "street")
    nz.apply(street, nz.choose(n, profile.spaces), noise.doubled_space, tags, "street:spaces")
    nz.apply(postal, nz.choose(n, profile.postal_mistake), noise.wrong_digit, tags, "postal_code:wrong_digit")
    nz.apply(city, nz.choose(n, profile.city_upper), noise.upper, tags, "city:upper")
    nz.apply(city, nz.choose(n, profile.name_typo / 2), noise.wrong_letter, tags, "city:typo")

    # Bank account: printed IBAN, compact, lower case, or the old domestic form.
    iban = pop.iban[person]
    account = np.array([identifiers.format_iban(v) if v else "" for v in iban.tolist()], dtype=object)
    nz.blank(account, nz.choose(n, profile.account_missing), tags, "account:missing")
    domestic = nz.choose(n, profile.account_domestic) & (account != "")
    bban = pop.bban[person]
    for i in np.flatnonzero(domestic).tolist():
        account[i] = identifiers.domestic_account(f"{bban[i]:014d}")
    noise.add_tag(tags, domestic, "account:domestic")
    _apply_one_of(nz, account, nz.choose(n, profile.account_format, ~domestic),
                  (("compact", lambda v, u, w: v.replace(" ", ""), 0.7),
                   ("lower_case", noise.lower, 0.1),
                   ("compact_lower_case", lambda v, u, w: v.replace(" ", "").lower(), 0.1),
                   ("spaces", noise.doubled_space, 0.1)), tags, "account")
    _apply_one_of(nz, account, nz.choose(n, profile.account_mistake),
                  (("wrong_digit", noise.wrong_digit, 0.5), ("swapped_digits", noise.swap_adjacent_digits, 0.3),
                   ("letter_o", noise.letter_o_for_zero, 0.2)), tags, "account")

    # Metering point and product
    metering = plan.metering_point[index].copy()
    nz.blank(metering, nz.choose(n, profile.metering_missing), tags, "metering_point:missing")
    _apply_one_of(nz, metering, nz.choose(n, profile.metering_mistake),
                  (("wrong_digit", noise.wrong_digit, 0.6), ("swapped_digits", noise.swap_adjacent_digits, 0.4)),
                  tags, "metering_point")
    nz.apply(metering, nz.choose(n, profile.spaces), _metering_spaces, tags, "metering_point:spaces")

    product_code = plan.product[index]
    product = _product_words(channel, product_code, language, rng)
    unknown = nz.choose(n, profile.product_unknown)
    product[unknown] = np.array(pools.PRODUCT_UNKNOWN_TEXT, dtype=object)[rng.integers(0, len(pools.PRODUCT_UNKNOWN_TEXT), n)][unknown]
    noise.add_tag(tags, unknown, "product:unknown")
    nz.blank(product, nz.choose(n, profile.product_missing, ~unknown), tags, "product:missing")

    # Direct-marketing prohibition: stated, or not stated at all.
    marketing = plan.marketing_prohibited[index].astype(object)
    unstated = nz.choose(n, profile.marketing_missing)
    marketing[unstated] = None
    noise.add_tag(tags, unstated, "marketing:missing")

    return Typed(index=index, first_names=first, last_name=last, personal_id=pid, street=street,
                 postal_code=postal, city=city, phone=phone, email=email, account=account, product=product,
                 metering_point=metering, marketing=marketing, name_order_swapped=swapped, language=language,
                 tags=tags, personal_id_noise=pid_noise)


def _product_words(channel: int, code: np.ndarray, language: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(code)
    if channel == WEB:
        return np.array(pools.PRODUCTS, dtype=object)[code]
    if channel in (PHONE, IN_PERSON):
        return np.array([pools.PRODUCT_FI[p] for p in pools.PRODUCTS], dtype=object)[code]
    # Free text in the writer's language, sometimes in English.
    out = np.empty(n, dtype=object)
    lang = np.where(rng.random(n) < 0.05, "en", language)
    u = rng.random(n)
    for i in range(n):
        words = pools.PRODUCT_FREE_TEXT[lang[i]][pools.PRODUCTS[code[i]]]
        out[i] = words[min(int(u[i] * len(words)), len(words) - 1)]
    return out

