"""The varied noise profile (generator/synth/varied.py) and the scoring against the truth (truth.py).

Rates are checked on the typed values of about 20,000 records (no files written);
tags are checked against what was really done to each value; the per-kind and
per-household figures against a grouping small enough to count by hand.
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from stdnum.fi import hetu

from synth import GROUND_TRUTH_FILE, generate, plan as planning, population, truth as scoring, varied
from synth.cli import main
from synth.noise import Noiser
from synth.plan import CHANNELS, EMAIL, IN_PERSON, MAIL, PHONE, WEB

START = datetime.date(2026, 11, 1)


def digest(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world():
    """About 20,000 records of the varied profile, typed per channel (as generate does, without files)."""
    streams = np.random.SeedSequence(23).spawn(3)
    rng_people, rng_plan, rng_typed = (np.random.default_rng(s) for s in streams)
    pop = population.build(rng_people, 11_500, START, varied.POPULATION_RATES)
    counts = planning.records_per_person(rng_plan, len(pop))
    plan = planning.build(rng_plan, pop, counts, 7, START, varied.PLAN_RATES)
    nz = Noiser(rng_typed, 1.0)
    traits = varied.person_traits(rng_typed, pop)
    typed = {c: varied.type_channel(c, plan, pop, nz, traits) for c in range(len(CHANNELS))}
    assert 18_000 < len(plan) < 24_000
    return pop, plan, typed, traits


def tokens(t) -> list[set[str]]:
    return [set(s.split()) for s in t.tags]


def has(t, token: str) -> np.ndarray:
    return np.array([token in s for s in tokens(t)], dtype=bool)


def has_prefix(t, prefix: str) -> np.ndarray:
    return np.array([any(x.startswith(prefix) for x in s) for s in tokens(t)], dtype=bool)


def by_hand(plan, t, channel: int) -> np.ndarray:
    return ~plan.verified[t.index] if channel in (WEB, IN_PERSON) else np.ones(len(t.index), dtype=bool)


def near(observed: np.ndarray, eligible: np.ndarray, rate: float, label: str) -> None:
    n = int(eligible.sum())
    assert n > 0, label
    share = observed[eligible].mean()
    tolerance = 4 * np.sqrt(rate * (1 - rate) / n) + 0.01
    assert abs(share - rate) <= tolerance, (label, share, rate, n)


# --- the profile ------------------------------------------------------------------------------------

def test_varied_profile_is_deterministic_and_differs_from_default(tmp_path):
    kwargs = dict(people=150, days=3, seed=5)
    first = generate(tmp_path / "a", noise_profile="varied", **kwargs)
    second = generate(tmp_path / "b", noise_profile="varied", **kwargs)
    assert main(["--out", str(tmp_path / "c"), "--people", "150", "--days", "3", "--seed", "5",
                 "--noise-profile", "varied"]) == 0
    default = generate(tmp_path / "d", **kwargs)
    other_seed = generate(tmp_path / "e", noise_profile="varied", **dict(kwargs, seed=6))
    assert digest(first.out_dir) == digest(second.out_dir) == digest(tmp_path / "c")
    assert digest(first.out_dir) != digest(default.out_dir)
    assert digest(first.out_dir) != digest(other_seed.out_dir)
    with pytest.raises(ValueError):
        generate(tmp_path / "f", noise_profile="other", **kwargs)


def test_varied_zone_reads_and_its_truth_names_kinds_and_roles(tmp_path):
    from pipeline.channels import READERS

    generate(tmp_path, records=1500, days=2, seed=8, noise_profile="varied")
    truth = pd.read_csv(tmp_path / GROUND_TRUTH_FILE, dtype=str, keep_default_na=False)
    records = truth[truth["person_key"] != ""]
    assert set(records["role"]) == {"head", "partner", "child", "mate"}
    assert set(records["junior"]) == set(records["twin"]) == {"0", "1"}
    found = set(" ".join(records["noise"]).split())
    assert {"name:order_swapped", "first_names:first_only", "street:no_apartment", "personal_id:check_char",
            "phone:landline", "address:moved"} <= found
    for (channel, name), rows in truth.groupby(["channel", "file_name"]):
        if rows["expected_reason"].iloc[0] in ("file_unreadable", "file_empty"):
            continue
        result = READERS[channel](tmp_path / "landing" / channel / name)
        assert result.count == len(rows[rows["record_number"].astype(int) > 0]), name
        assert len(result.errors) == (rows["kind"] == "malformed").sum(), name


def heads_of(pop) -> np.ndarray:
    """Each person's household head (the head comes first in the household)."""
    heads = np.flatnonzero(pop.role == "head")
    return heads[np.searchsorted(heads, np.arange(len(pop)), side="right") - 1]


def test_households_are_harder_than_the_default(world):
    pop = world[0]
    default = population.build(np.random.default_rng(23), 11_500, START)
    for flag in ("junior", "twin"):
        assert getattr(pop, flag).mean() > 2 * getattr(default, flag).mean(), flag
    assert (pop.household_kind == "flatmates").mean() > 1.3 * (default.household_kind == "flatmates").mean()
    # juniors carry their father's exact names, or are named after him (his first given name,
    # their own others: about half); twins share a birth date; codes stay unique
    head_of = heads_of(pop)
    junior = np.flatnonzero(pop.junior)
    first = np.array([names.split()[0] for names in pop.first_names])
    assert (first[junior] == first[head_of[junior]]).all()
    exact = pop.first_names[junior] == pop.first_names[head_of[junior]]
    assert 0.3 < exact.mean() < 0.8
    assert (default.first_names[default.junior] == default.first_names[
        heads_of(default)[np.flatnonzero(default.junior)]]).all()
    assert (pop.last_name[junior] == pop.last_name[head_of[junior]]).all()
    twins = pd.DataFrame({"household": pop.household[pop.twin], "birth": pop.birth_date[pop.twin]})
    assert (twins.groupby("household")["birth"].nunique() == 1).all()
    assert len(set(pop.personal_id)) == len(pop)


def test_each_kind_occurs_at_its_rate(world):
    pop, plan, typed, traits = world
    for c, t in typed.items():
        person = plan.person[t.index]
        hand = by_hand(plan, t, c)
        true_first = pop.first_names[person]
        names = np.array([f.count(" ") + 1 for f in true_first])
        rate = {k: v[c] for k, v in varied.RATES.items()}
        near(has(t, "personal_id:missing"), hand, rate["personal_id:missing"], f"{c} missing code")
        invalid = has(t, "personal_id:wrong_digit") | has(t, "personal_id:swapped_digits") | \
            has(t, "personal_id:check_char") | has(t, "personal_id:century_sign")
        near(invalid, hand & ~has(t, "personal_id:missing"), rate["personal_id:invalid"], f"{c} invalid code")
        swap = "name:fields_swapped" if c in (WEB, IN_PERSON) else "name:order_swapped"
        near(has(t, swap), hand & ~has(t, "first_names:missing"), rate[swap], f"{c} {swap}")
        shortened = has(t, "first_names:first_only") | has(t, "first_names:second_only")
        near(shortened, hand & (names >= 2), rate["first_names:first_only"], f"{c} first only")
        near(has(t, "first_names:middle_dropped"), hand & (names >= 3),
             rate["first_names:middle_dropped"], f"{c} middle dropped")
        near(has_prefix(t, "first_names:typo_"), hand, rate["first_names:typo"], f"{c} typo")
        double = np.array(["-" in s for s in plan.last_name[t.index]]) & ~has(t, "last_name:former")
        near(has(t, "last_name:one_part"), hand & double, rate["last_name:one_part"], f"{c} one part")
        street = pop.addresses.street_address[plan.address[t.index]]
        flat = np.array([varied._split_flat(s) is not None for s in street]) & ~has(t, "address:missing")
        near(has(t, "street:no_apartment"), flat, rate["street:no_apartment"], f"{c} no apartment")
        both = (pop.landline[person] != "") & (pop.mobile[person] != "")
        near(has(t, "phone:landline"), both, rate["phone:landline"], f"{c} landline")
        if c != EMAIL:
            near(has(t, "email:missing"), np.ones(len(t.index), dtype=bool), rate["email:missing"], f"{c} email")
    # code-less records: more than the default's third in phone and e-mail
    for c in (PHONE, EMAIL):
        assert has(typed[c], "personal_id:missing").mean() > 0.5


def test_tags_say_what_was_done(world):
    pop, plan, typed, _ = world
    checked: dict[str, int] = {}

    def count(token: str, n: int) -> None:
        checked[token] = checked.get(token, 0) + n

    name_prefixes = ("name:", "first_names:", "last_name:")
    for c, t in typed.items():
        person = plan.person[t.index]
        true_first, true_last = pop.first_names[person], plan.last_name[t.index]
        marks = tokens(t)
        name_marks = [{x for x in s if x.startswith(name_prefixes)} for s in marks]
        for j, found in enumerate(name_marks):
            first, last = t.first_names[j], t.last_name[j]
            if not found:
                assert (first, last) == (true_first[j], true_last[j])
                assert not t.name_order_swapped[j]
                count("no name noise", 1)
            elif found == {"name:fields_swapped"}:
                assert (first, last) == (true_last[j], true_first[j])  # the surname field holds the given names
                count("name:fields_swapped", 1)
            elif found == {"name:order_swapped"}:
                if c == EMAIL:  # one line, written surname first
                    assert (first, last) == (true_last[j], true_first[j])
                else:
                    assert t.name_order_swapped[j] and (first, last) == (true_first[j], true_last[j])
                count("name:order_swapped", 1)
            elif found == {"first_names:middle_dropped"}:
                typed_names, names = first.split(" "), true_first[j].split(" ")
                assert len(typed_names) == len(names) - 1 and typed_names[0] == names[0]
                assert any(names[:k] + names[k + 1:] == typed_names for k in range(1, len(names)))
                count("first_names:middle_dropped", 1)
            elif found == {"first_names:second_only"}:
                assert first == true_first[j].split(" ")[1]
                count("first_names:second_only", 1)
            elif len(found) == 1 and next(iter(found)).startswith("first_names:typo_"):
                assert last == true_last[j] and first != true_first[j]
                assert abs(len(first) - len(true_first[j])) <= 1 and first[0] == true_first[j][0]
                if len(first) == len(true_first[j]):
                    assert sum(a != b for a, b in zip(first, true_first[j])) in (1, 2)
                count("first_names:typo", 1)
            elif found == {"last_name:one_part"}:
                assert last in true_last[j].split("-") and "-" in true_last[j]
                count("last_name:one_part", 1)
            elif found == {"last_name:former"}:
                assert last == pop.last_name[person[j]] != true_last[j]
                count("last_name:former", 1)
        # identity codes: the tags in personal_id_noise match what is written
        true_code = pop.personal_id[person]
        for j, ops in enumerate(t.personal_id_noise):
            ops = set(ops.split())
            written = t.personal_id[j]
            if ops == {"check_char"}:
                assert written[:10] == true_code[j][:10] and written[10] != true_code[j][10]
                assert not hetu.is_valid(written, allow_temporary=True)
                count("check_char", 1)
            elif ops == {"century_sign"}:
                assert [k for k in range(11) if written[k] != true_code[j][k]] == [6]
                count("century_sign", 1)
            elif ops == {"missing"}:
                assert written == ""
            elif not ops:
                assert written == true_code[j]
        # addresses, phones, e-mail
        street = pop.addresses.street_address[plan.address[t.index]]
        only = np.array([{x for x in m if x.startswith("street:")} == {"street:no_apartment"} for m in marks])
        for j in np.flatnonzero(only).tolist():
            assert street[j].startswith(t.street[j] + " ") and len(street[j].split()) - len(t.street[j].split()) == 2
            count("street:no_apartment", 1)
        for j in np.flatnonzero(has(t, "phone:other_member") & ~has(t, "phone:wrong_digit")
                                & ~has(t, "phone:missing")).tolist():
            digits = "358" + "".join(ch for ch in t.phone[j] if ch.isdigit()).lstrip("0").removeprefix("358")
            members = np.flatnonzero(pop.household == pop.household[person[j]])
            others = {m.lstrip("+") for m in pop.mobile[members[members != person[j]]]}
            assert digits in others
            count("phone:other_member", 1)
        for j in np.flatnonzero(has(t, "email:other_domain") & ~has(t, "email:typo") & ~has(t, "email:case")
                                & ~has(t, "email:spaces")).tolist():
            true_email = pop.email[person[j]]
            assert t.email[j].split("@")[0] == true_email.split("@")[0] and t.email[j] != true_email
            count("email:other_domain", 1)
    for token in ("no name noise", "name:fields_swapped", "name:order_swapped", "first_names:middle_dropped",
                  "first_names:second_only", "first_names:typo", "last_name:one_part", "last_name:former",
                  "check_char", "century_sign", "street:no_apartment", "phone:other_member", "email:other_domain"):
        assert checked.get(token, 0) > 0, token


# --- scoring against the truth ---------------------------------------------------------------------

def hand_made() -> tuple[pd.DataFrame, pd.Series]:
    """Four people in two households; seven records; a grouping with known figures.

    P1 (head of H1): r1 (a), r2, r3 (a b); P2 (his junior, H1): r4 (b), r5;
    P3 (H2, flatmates): r6 (a, moved); P4 (H2): r7.
    Customers: C1 = r1 r2 r4, C2 = r3, C3 = r5, C4 = r6 r7.
    """
    rows = [("r1", "P1", "H1", "a", "", "head", "family", "0"),
            ("r2", "P1", "H1", "", "", "head", "family", "0"),
            ("r3", "P1", "H1", "a b", "missing", "head", "family", "0"),
            ("r4", "P2", "H1", "b", "missing", "child", "family", "1"),
            ("r5", "P2", "H1", "", "wrong_digit", "child", "family", "1"),
            ("r6", "P3", "H2", "a", "", "head", "flatmates", "0"),
            ("r7", "P4", "H2", "", "", "mate", "flatmates", "0")]
    truth = pd.DataFrame(rows, columns=["source_record_id", "person_key", "household_key", "noise",
                                        "personal_id_noise", "role", "household_kind", "junior"])
    truth["channel"] = "web"
    truth["twin"] = "0"
    truth["events"] = np.where(truth["source_record_id"] == "r6", "moved", "")
    truth = truth.set_index(["channel", "source_record_id"])
    predicted = pd.Series(["C1", "C1", "C2", "C1", "C3", "C4", "C4"], index=truth.index)
    return truth, predicted


def test_report_on_a_hand_made_grouping():
    truth, predicted = hand_made()
    result = scoring.report(predicted, truth)
    # true pairs: P1 3, P2 1; predicted: C1 3, C4 1; right: (r1, r2)
    o = result["overall"]
    assert (o["true_pairs"], o["predicted_pairs"], o["false_pairs"], o["missed_pairs"]) == (4, 4, 3, 3)
    assert o["precision"] == o["recall"] == 0.25
    # kind a (r1 r3 r6): true pairs touching it (r1,r2) (r1,r3) (r2,r3): 3; predicted (r1,r2) (r1,r4) (r6,r7): 3;
    # right 1. Counting only pairs where both carry it would give 1 true pair, 0 predicted.
    a = result["by_kind"]["a"]
    assert (a["records"], a["true_pairs"], a["predicted_pairs"], a["false_pairs"]) == (3, 3, 3, 2)
    assert a["precision"] == pytest.approx(1 / 3) and a["recall"] == pytest.approx(1 / 3)
    # kind b (r3 r4): true (r1,r3) (r2,r3) (r4,r5); predicted (r1,r4) (r2,r4); none right
    b = result["by_kind"]["b"]
    assert (b["true_pairs"], b["predicted_pairs"], b["precision"], b["recall"], b["f1"]) == (3, 2, 0.0, 0.0, 0.0)
    # a life event: r6 has no true pair; its one predicted pair is false
    moved = result["by_kind"]["event:moved"]
    assert (moved["true_pairs"], moved["predicted_pairs"], moved["precision"], moved["recall"]) == (0, 1, 0.0, 1.0)
    # without a valid code: r3 r4 r5 (missing, missing, wrong digit): the true pair (r4, r5) is split
    w = result["without_code"]
    assert (w["records"], w["true_pairs"], w["predicted_pairs"], w["recall"], w["precision"]) == (3, 1, 0, 0.0, 1.0)
    # households: the junior merged with his father (2 record pairs), the flatmates (1)
    h = result["households"]
    assert h["merges"]["junior-father"] == {"person_pairs_in_data": 1, "person_pairs_merged": 1,
                                            "record_pairs_merged": 2}
    assert h["merges"]["flatmates"] == {"person_pairs_in_data": 1, "person_pairs_merged": 1,
                                        "record_pairs_merged": 1}
    assert h["merges"]["partners"]["person_pairs_in_data"] == 0
    assert (h["false_pairs_in_households"], h["false_pairs_across_households"]) == (3, 0)
    assert h["splits"]["head"] == {"people_with_2_records": 1, "people_split": 1}
    assert h["splits"]["junior"] == {"people_with_2_records": 1, "people_split": 1}
    assert h["splits"]["mate"] == {"people_with_2_records": 0, "people_split": 0}
    # a caller's own code-less mask, and records the grouping does not hold, are honoured
    mask = pd.Series([False] * 5 + [True, True], index=truth.index)
    partial = scoring.report(predicted.drop(("web", "r2")), truth, mask)
    assert partial["records"] == 6 and partial["without_code"]["predicted_pairs"] == 1
    assert partial["overall"]["true_pairs"] == 2 and partial["overall"]["predicted_pairs"] == 2
    lines = scoring.format_report(result)
    assert any(line.startswith("junior-father") for line in lines)


def test_report_reads_a_generated_truth(tmp_path):
    generate(tmp_path, records=800, days=2, seed=4, noise_profile="varied")
    truth = scoring.read_truth(tmp_path / GROUND_TRUTH_FILE)
    assert truth.index.is_unique
    perfect = scoring.report(truth["person_key"].copy(), truth)
    assert perfect["overall"]["f1"] == 1.0 and perfect["households"]["false_pairs_in_households"] == 0
    # every record alone: precision 1, recall 0 wherever there are true pairs
    alone = pd.Series(np.arange(len(truth)), index=truth.index)
    result = scoring.report(alone, truth)
    assert result["overall"]["predicted_pairs"] == 0 and result["overall"]["recall"] == 0.0
    assert all(r["predicted_pairs"] == 0 for r in result["by_kind"].values())
