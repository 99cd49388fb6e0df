"""`register explain`: why each record sits in its customer, on SQLite and PostgreSQL.

Each way a record comes in is explained: the same valid code, a steward's decision
(who, when), the match weights field by field in words (recomputed with the frozen
model), the first record. Values are masked unless asked for; a merged customer's old
id resolves to its survivor. Synthetic people only.
"""

from __future__ import annotations

import re

from pipeline.cli import main
from pipeline.matching.model import MatchModel
from pipeline.register import steward
from pipeline.register.explain import explain_customer, explain_record
from test_marketing_doubt import ADULT, KALLE, PROHIBITING_CALL, open_review
from test_register_resolve import NOW, batch_of, customer_of, load_batch, record

SAME_CODE_LATER = record("in_person", "S-A", "2026-11-03T09:00", personal_id=ADULT["personal_id"],
                         identity_verified=True, **KALLE)
# No code; names, phone and e-mail agree with the adult, the birth date does not (a typing
# mistake): linked by the weights all the same.
CODELESS_MATCH = record("mail", "M-2", "2026-11-03T10:00", first_names="Kalle Johannes", last_name="Merkkinen",
                        phone=ADULT["phone"], email=ADULT["email"], birth_date="1971-01-01")


def _url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _explain(engine, capsys, *args: str) -> str:
    assert main(["--database-url", _url(engine), "explain", *args]) == 0
    return capsys.readouterr().out


def test_each_way_in_is_explained_and_values_are_masked_unless_asked(register_engine, capsys):
    load_batch(register_engine, batch_of("d1", [ADULT, SAME_CODE_LATER, CODELESS_MATCH, PROHIBITING_CALL]))
    owners = customer_of(register_engine)
    adult = owners[("web", "W-A")]
    assert owners[("in_person", "S-A")] == owners[("mail", "M-2")] == adult != owners[("phone", "P-X")]
    with register_engine.connect() as connection:
        found = explain_customer(connection, adult)
    by_record = {item.record: item for item in found.records}
    assert set(by_record) == {"web:W-A", "in_person:S-A", "mail:M-2"}
    assert by_record["web:W-A"].because == by_record["in_person:S-A"].because == "the same valid identity code"
    assert by_record["web:W-A"].same_code_records == 1
    weights = by_record["mail:M-2"]
    assert weights.because == "the match weights" and weights.strongest is not None
    fields = {f.field: f for f in weights.strongest.fields}
    assert set(fields) == {"first name", "last name", "birth date", "address", "phone", "e-mail", "bank account"}
    assert fields["phone"].level == "exact match" and fields["phone"].weight > 0
    assert fields["bank account"].level == "unknown on one side" and fields["bank account"].weight == 0
    assert fields["birth date"].level == "different" and fields["birth date"].weight < 0
    model = MatchModel.load()
    assert abs(weights.strongest.prior - model.prior_weight) < 1e-6
    total = weights.strongest.prior + sum(f.weight for f in weights.strongest.fields)
    assert abs(total - weights.strongest.match_weight) < 1e-2
    assert weights.strongest.probability >= 0.95
    assert found.open_reviews and found.held_from_marketing == ["prohibited"]
    assert "first name: exact match, +" in " ".join(found.open_reviews[0]["fields"])

    text = _explain(register_engine, capsys, "--customer", str(adult))
    assert re.search(r"phone: exact match, \+\d+\.\d", text)
    assert re.search(r"birth date: different, -\d+\.\d", text)
    assert "last name: exact match, +" in text
    assert KALLE["last_name"] not in text and ADULT["phone"] not in text and ADULT["personal_id"] not in text
    assert "M*******n" in text  # masked as the review screen masks it
    unmasked = _explain(register_engine, capsys, "--customer", str(adult), "--unmask")
    assert KALLE["last_name"] in unmasked and ADULT["phone"] in unmasked

    one = _explain(register_engine, capsys, "--record", "phone:P-X")
    assert "the first record: nothing else matched it" in one and "web:W-A" not in one
    assert KALLE["street_address"] not in one


def test_a_stewards_decision_and_a_merged_id_are_explained(register_engine, capsys):
    load_batch(register_engine, batch_of("d1", [ADULT, PROHIBITING_CALL]))
    owners = customer_of(register_engine)
    review_id = open_review(register_engine)
    steward.decide_review(register_engine, review_id, accept=True, by="steward.two", now=NOW)
    survivor = min(owners.values())
    merged_away = max(owners.values())
    with register_engine.connect() as connection:
        found = explain_customer(connection, merged_away)
        one = explain_record(connection, "phone:P-X")
    assert found.customer_id == survivor
    assert [m["merged_customer_id"] for m in found.merges] == [merged_away]
    assert found.merges[0]["decided_by"] == "steward.two"
    call = next(item for item in found.records if item.record == "phone:P-X")
    assert call.because == "a steward's decision"
    assert [(d.review_id, d.status, d.decided_by, d.other) for d in call.decisions] == \
        [(review_id, "accepted", "steward.two", "web:W-A")]
    assert call.strongest is not None and call.strongest.other == "web:W-A"
    assert [(f.field, f.level) for f in call.strongest.fields if f.weight != 0] == [
        ("first name", "exact match"), ("last name", "exact match"), ("address", "same postal code only")]
    assert [item.record for item in one.records] == ["phone:P-X"] and one.customer_id == survivor

    text = _explain(register_engine, capsys, "--customer", str(merged_away))
    assert f"customer {merged_away} was merged into {survivor}" in text
    assert f"review {review_id} with web:W-A: accepted by steward.two on {NOW.isoformat()}" in text
    assert re.search(r"address: [a-z ,]+, [+-]\d+\.\d", text)


def test_unknown_ids_are_an_error_without_values(register_engine, capsys):
    load_batch(register_engine, batch_of("d1", [ADULT]))
    url = _url(register_engine)
    assert main(["--database-url", url, "explain", "--customer", "999"]) == 2
    assert "no customer 999" in capsys.readouterr().err
    assert main(["--database-url", url, "explain", "--record", "web:W-NOPE"]) == 2
    assert main(["--database-url", url, "explain", "--record", "nonsense"]) == 2
    assert "CHANNEL:ID" in capsys.readouterr().err
