"""The online-service reader (pipeline/channels/web.py) on small synthetic files."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.channels import web
from pipeline.channels.base import UnreadableFile
from pipeline.codes import Flag, Reason
from schemas.canonical import READ_ERROR_COLUMNS, STAGED_COLUMNS

CHECK_CHARACTERS = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def temporary_code(ddmmyy: str, sign: str, individual: int) -> str:
    """A well-formed identity code with a temporary (900-999) number: never a real person's."""
    return f"{ddmmyy}{sign}{individual}{CHECK_CHARACTERS[int(ddmmyy + str(individual)) % 31]}"


def submission(n: int = 1, **changes) -> dict:
    record = {
        "id": f"W-20261124-{n:06d}", "submitted_at": "2026-11-24T18:03:11+02:00", "authenticated": True,
        "person": {"first_names": "Åsa Éva", "last_name": "Äijälä-Öljy",
                   "personal_id": temporary_code("120385", "-", 900 + n % 100)},
        "contact": {"email": f"osa{n}@example.fi", "phone": "+358 40 123 4567",
                    "address": {"street": "Kuusitie 5 B 12", "postal_code": "00100", "city": "Ünelmä"}},
        "billing": {"iban": "FI21 1234 5600 0007 85"},
        "service": {"product": "electricity", "metering_point": "643007574000125688"},
        "consents": {"direct_marketing_prohibited": False},
        "language": "fi",
    }
    record.update(changes)
    return record


def write(tmp_path, lines, name="web_20261124.jsonl", ending="\n"):
    path = tmp_path / name
    text = ending.join(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines)
    path.write_bytes((text + ending).encode("utf-8"))
    return path


def both_ways(path):
    """Read fast and slowly; they must agree exactly."""
    fast, slow = web.read(path), web.read(path, fast_path=False)
    pd.testing.assert_frame_equal(fast.records, slow.records)
    pd.testing.assert_frame_equal(fast.errors, slow.errors)
    return fast


def test_module_contract():
    assert web.CHANNEL == "web"


def test_full_submission_maps_onto_staged_columns(tmp_path):
    record = submission()
    result = both_ways(write(tmp_path, [record]))
    assert list(result.records.columns) == list(STAGED_COLUMNS)
    assert list(result.errors.columns) == list(READ_ERROR_COLUMNS)
    row = result.records.iloc[0]
    assert row["source_record_id"] == record["id"]
    assert row["first_names"] == "Åsa Éva" and row["last_name"] == "Äijälä-Öljy"
    assert pd.isna(row["full_name"]) and pd.isna(row["name_order"])
    assert row["personal_id"] == record["person"]["personal_id"]
    assert row["email"] == record["contact"]["email"] and row["phone"] == "+358 40 123 4567"
    assert row["street_address"] == "Kuusitie 5 B 12"
    assert row["postal_code"] == "00100" and row["city"] == "Ünelmä"
    assert row["account"] == "FI21 1234 5600 0007 85"
    assert row["product"] == "electricity" and row["metering_point"] == "643007574000125688"
    assert row["observed_at"] == pd.Timestamp("2026-11-24T16:03:11Z")
    assert result.records["identity_verified"].tolist() == [True]
    assert result.records["marketing_prohibited"].tolist() == [False]
    assert row["channel"] == "web" and row["record_number"] == 1 and row["read_flags"] == ""


def test_absent_and_null_keys(tmp_path):
    lines = [
        submission(1, person=None, billing=None),                      # null objects
        {"id": "W-2", "contact": {"address": {"city": "  Ünelmä "}}},  # most keys absent, a partial address
        {"id": "W-3", "person": {"first_names": None, "last_name": ""}, "consents": {}},
        {},                                                            # an object with nothing in it
    ]
    records = both_ways(write(tmp_path, lines)).records
    assert len(records) == 4
    assert records["first_names"].isna().all()
    assert records["last_name"].isna().all()       # "" is NA like null and absent
    assert records["account"].isna().tolist() == [True, True, True, True]
    assert records["city"].tolist()[:2] == ["Ünelmä", "Ünelmä"]
    assert pd.isna(records["source_record_id"].iloc[3])  # no id: still a record, for the normaliser to quarantine
    assert records["identity_verified"].tolist() == [True, False, False, False]
    assert records["marketing_prohibited"].tolist() == [False, pd.NA, pd.NA, pd.NA]
    assert records["observed_at"].isna().tolist() == [False, True, True, True]


def test_malformed_lines_are_their_own_problem(tmp_path):
    lines = [
        submission(1),                          # line 1
        '{"id": "W-2", "person": {',            # 2: not JSON
        "",                                     # 3: blank, skipped
        '["W-3"]',                              # 4: JSON but not an object
        "null",                                 # 5
        '{"id": "W-6", "person": "Åsa"}',       # 6: text where an object belongs
        '{"id": "W-7", "contact": {"phone": ["040"]}}',  # 7: a list where text belongs
        '{"id": "W-8"} {"id": "W-9"}',          # 8: two objects on one line
        "   ",                                  # 9: blank
        submission(10),                         # 10
    ]
    result = both_ways(write(tmp_path, lines))
    assert result.records["record_number"].tolist() == [1, 10]
    assert result.records["source_record_id"].tolist() == ["W-20261124-000001", "W-20261124-000010"]
    errors = result.errors
    assert errors["record_number"].tolist() == [2, 4, 5, 6, 7, 8]
    assert set(errors["reason"]) == {Reason.MALFORMED_RECORD.value}
    assert errors["raw"].tolist() == [lines[i - 1] for i in (2, 4, 5, 6, 7, 8)]
    assert errors["source_record_id"].tolist()[3:5] == ["W-6", "W-7"]  # objects keep their id
    assert errors["source_record_id"].isna().tolist() == [True, True, True, False, False, True]


@pytest.mark.parametrize("typed, expected", [
    ("2026-11-24T18:03:11+02:00", datetime(2026, 11, 24, 16, 3, 11, tzinfo=timezone.utc)),
    ("2026-06-28T18:03:11+03:00", datetime(2026, 6, 28, 15, 3, 11, tzinfo=timezone.utc)),
    ("2026-06-28T18:03:11.250+0300", datetime(2026, 6, 28, 15, 3, 11, 250000, tzinfo=timezone.utc)),
    ("2026-06-28T15:03:11Z", datetime(2026, 6, 28, 15, 3, 11, tzinfo=timezone.utc)),
    ("2026-06-28T10:03:11-05:00", datetime(2026, 6, 28, 15, 3, 11, tzinfo=timezone.utc)),
    ("2026-06-28T18:03:11", None),       # no offset: which zone is a guess
    ("2026-02-30T18:03:11+02:00", None),
    ("28.6.2026 18:03", None),
    ("", None),
])
def test_submitted_at_to_utc(tmp_path, typed, expected):
    lines = [submission(1, submitted_at=typed), submission(2)]
    records = both_ways(write(tmp_path, lines)).records
    observed = records["observed_at"].iloc[0]
    if expected is None:
        assert pd.isna(observed)
    else:
        assert observed == pd.Timestamp(expected)
    # one bad time does not disturb the others
    assert records["observed_at"].iloc[1] == pd.Timestamp("2026-11-24T18:03:11+02:00")


def test_submitted_at_offset_arithmetic_matches_python(tmp_path):
    stamps = [datetime(2026, 3, 29, 0, 30, tzinfo=timezone(timedelta(hours=h, minutes=m)))
              for h, m in ((2, 0), (3, 0), (5, 30), (-4, 0))]
    lines = [submission(i, submitted_at=stamp.isoformat()) for i, stamp in enumerate(stamps)]
    records = both_ways(write(tmp_path, lines)).records
    assert records["observed_at"].tolist() == [pd.Timestamp(stamp.astimezone(timezone.utc)) for stamp in stamps]


def test_authenticated_and_marketing_answers(tmp_path):
    answers = [(True, True), (False, False), (None, None), ("yes", "no"), (1, 0)]
    lines = [submission(i, authenticated=a, consents={"direct_marketing_prohibited": m})
             for i, (a, m) in enumerate(answers)]
    lines.append({"id": "W-absent"})
    records = both_ways(write(tmp_path, lines)).records
    assert records["identity_verified"].tolist() == [True, False, False, False, False, False]
    assert records["marketing_prohibited"].tolist() == [True, False, pd.NA, pd.NA, pd.NA, pd.NA]
    both = f"{Flag.IDENTITY_CHECK_UNRECOGNISED.value} {Flag.MARKETING_ANSWER_UNRECOGNISED.value}"
    assert records["read_flags"].tolist() == ["", "", "", both, both, ""]


def test_numbers_where_text_belongs_keep_their_digits(tmp_path):
    line = ('{"id": 20261124000123, "contact": {"address": {"postal_code": 49400}}, '
            '"service": {"metering_point": 643007574000125688}, "billing": {"iban": 1.50}}')
    records = both_ways(write(tmp_path, [line])).records
    row = records.iloc[0]
    assert row["source_record_id"] == "20261124000123"
    assert row["postal_code"] == "49400"
    assert row["metering_point"] == "643007574000125688"
    assert row["account"] == "1.50"


def test_crlf_and_bom_read_the_same(tmp_path):
    lines = [submission(1), submission(2)]
    plain = web.read(write(tmp_path, lines, name="web_1.jsonl"))
    crlf = web.read(write(tmp_path, lines, name="web_2.jsonl", ending="\r\n"))
    bom_path = tmp_path / "web_3.jsonl"
    bom_path.write_bytes(b"\xef\xbb\xbf" + (tmp_path / "web_1.jsonl").read_bytes())
    pd.testing.assert_frame_equal(plain.records, crlf.records)
    pd.testing.assert_frame_equal(plain.records, web.read(bom_path).records)


def test_duplicate_ids_are_all_kept(tmp_path):
    records = both_ways(write(tmp_path, [submission(1), submission(1), submission(2)])).records
    assert records["source_record_id"].tolist() == ["W-20261124-000001"] * 2 + ["W-20261124-000002"]


def test_unknown_key_quarantines_its_line_only(tmp_path):
    # A value typed where a key belongs: the key itself is a person's identity code.
    secret = temporary_code("010101", "-", 955)
    lines = [
        submission(1),
        submission(2, person={"last_name": "Ström", secret: "x"}),              # 2: nested unknown key
        submission(3),
        '{"id": "W-4", "' + secret + '": null}',                               # 4: unknown even when null
        submission(5, contact={"address": {"street": "Kuusitie 1", "floor": "2"}}),  # 5: deep inside
        submission(6),
    ]
    result = both_ways(write(tmp_path, lines))
    assert result.records["record_number"].tolist() == [1, 3, 6]
    errors = result.errors
    assert errors["record_number"].tolist() == [2, 4, 5]
    assert set(errors["reason"]) == {Reason.MALFORMED_RECORD.value}
    assert errors["source_record_id"].tolist() == ["W-20261124-000002", "W-4", "W-20261124-000005"]
    assert result.count == len(lines)  # every line is a record or a read error: the file's counts add up
    # The raw line is kept for the steward (it goes to the quarantine table, nowhere else) ...
    assert secret in errors["raw"].iloc[0]
    # ... and nothing else the reader returns carries the key.
    others = errors.drop(columns=["raw"]).astype(str).to_numpy().ravel().tolist() + \
        result.records.astype(str).to_numpy().ravel().tolist()
    assert not any(secret in text for text in others), "the unknown key reached a value other than raw"


def test_unknown_key_never_reaches_the_quarantine_detail(tmp_path):
    """Through the intake: the file loads, the line is quarantined, no detail or message names the key."""
    from pipeline.intake import build_batch, discover, read_all

    secret = temporary_code("020202", "A", 977)
    (tmp_path / "web").mkdir()
    write(tmp_path / "web", [submission(1), submission(2, billing={"iban": "FI21 1234 5600 0007 85", secret: 1}),
                             submission(3)])
    reads = read_all(discover(tmp_path, settle_seconds=0))  # just written, no .ready marker: no settle wait
    assert [r.reason for r in reads] == [None], "the file must not be quarantined whole"
    batch = build_batch(reads, today=datetime(2026, 11, 25).date())
    assert len(batch.accepted) == 2 and len(batch.quarantined) == 1
    assert batch.files["records_read"].tolist() == [3]
    assert batch.files["file_detail"].isna().all()
    row = batch.quarantined.iloc[0]
    assert row["reasons"] == Reason.MALFORMED_RECORD.value and row["record_number"] == 2
    assert pd.isna(row["detail"])
    assert secret in row["raw_values"]  # for the steward, in the register only
    assert not any(secret in str(value) for name, value in row.items() if name != "raw_values")


@pytest.mark.parametrize("content, reason", [
    (b"", Reason.FILE_EMPTY),
    (b"\n  \n", Reason.FILE_EMPTY),
    (b"\xef\xbb\xbf", Reason.FILE_EMPTY),
    (b'{"id": "W-1", "person": {"last_name": "\xc4ij\xe4l\xe4"}}\n', Reason.FILE_ENCODING),  # cp1252, not UTF-8
])
def test_files_that_cannot_be_read(tmp_path, content, reason):
    path = tmp_path / "web_20261124.jsonl"
    path.write_bytes(content)
    with pytest.raises(UnreadableFile) as caught:
        web.read(path)
    assert caught.value.reason is reason
    assert path.name in caught.value.detail


def test_clean_file_takes_the_fast_path(tmp_path, monkeypatch):
    path = write(tmp_path, [submission(i) for i in range(50)])

    def refuse(*args, **kwargs):
        raise AssertionError("json.loads path used for a clean file")

    monkeypatch.setattr(web, "_gather_slowly", refuse)
    assert len(web.read(path).records) == 50


def test_bad_lines_in_a_large_file_are_read_around(tmp_path, monkeypatch):
    # Small stretches so a handful of bad lines exercise the halving; results must not change.
    monkeypatch.setattr(web, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(web, "SLOW_BYTES", 512)
    lines: list[object] = [submission(i) for i in range(400)]
    for position in (3, 150, 151, 399):
        lines[position] = "{not json"
    lines[200] = submission(200, service={"metering_point": 643007574000125688})  # a number: pyarrow refuses
    lines[250] = ""
    path = write(tmp_path, lines)
    result = both_ways(path)
    assert result.errors["record_number"].tolist() == [4, 151, 152, 400]
    assert len(result.records) == 400 - 4 - 1
    assert result.records["record_number"].is_monotonic_increasing
    assert result.records.loc[result.records["record_number"] == 201, "metering_point"].tolist() == \
        ["643007574000125688"]


texts = st.one_of(st.none(), st.text(max_size=12), st.sampled_from([" 00100 ", "", "Äijälä", "643007574000125688"]))
objects = st.fixed_dictionaries({}, optional={
    "id": texts,
    "submitted_at": st.one_of(texts, st.sampled_from(["2026-11-24T18:03:11+02:00", "2026-06-28T15:03:11Z"])),
    "authenticated": st.one_of(st.none(), st.booleans(), st.just("yes")),
    "person": st.one_of(st.none(), st.fixed_dictionaries({}, optional={"first_names": texts, "last_name": texts})),
    "contact": st.one_of(st.none(), st.fixed_dictionaries({}, optional={
        "phone": st.one_of(texts, st.integers(0, 10**18)),
        "address": st.one_of(st.none(), st.fixed_dictionaries({}, optional={"city": texts}))})),
    "consents": st.one_of(st.none(), st.fixed_dictionaries({}, optional={
        "direct_marketing_prohibited": st.one_of(st.none(), st.booleans(), st.just(0))})),
})
lines_strategy = st.lists(st.one_of(objects, objects, objects,
                                    st.sampled_from(["", "null", "[]", "{", '{"id": "x"} {}', '{"person": "x"}',
                                                    '{"id": "\\ud800"}', '{"id": "\\ud83d\\ude00"}',
                                                    '{"id": "x", "nickname": "y"}', '{"person": {"x": null}}'])),
                          min_size=1, max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=lines_strategy)
def test_fast_and_slow_paths_agree(tmp_path, lines):
    path = write(tmp_path, lines, name="web_prop.jsonl")
    if not any(line not in ("",) for line in lines):
        with pytest.raises(UnreadableFile):
            web.read(path)
        return
    result = both_ways(path)
    assert result.count == sum(1 for line in lines if line != "")


def test_one_impossible_date_does_not_change_how_others_are_read(tmp_path):
    # Arrow reads the column in one go and refuses it whole for 30 February; pandas
    # then reads it value by value. Every other value must come out the same.
    forms = ["2026-06-28T18:03:11+03:00", "2026-06-28 18:03:11+03:00", "2026-06-28T18:03+03:00",
             "2026-06-28T18:03:11.123456789+03:00", "2026-06-28T18:03:11+0300", "2026-06-28T15:03:11Z",
             "2026-12-31T23:59:59-12:00", "2026-06-28T18:03:11+03:00x"]
    lines = [submission(i, submitted_at=form) for i, form in enumerate(forms)]
    clean = web.read(write(tmp_path, lines, name="web_1.jsonl")).records["observed_at"]
    mixed = web.read(write(tmp_path, lines + [submission(99, submitted_at="2026-02-30T10:00:00Z")],
                           name="web_2.jsonl")).records["observed_at"]
    pd.testing.assert_series_equal(clean, mixed.iloc[:-1])
    assert clean.notna().tolist() == [True] * 7 + [False]
    assert pd.isna(mixed.iloc[-1])


def test_escapes_decode_the_same_both_ways(tmp_path):
    line = ('{"id": "W-1", "person": {"last_name": "\\u00c4ij\\u00e4l\\u00e4 \\"Aki\\"", '
            '"first_names": "\\u00c5sa\\tEva"}, "contact": {"email": "osa\\/x@example.fi"}}')
    row = both_ways(write(tmp_path, [line])).records.iloc[0]
    assert row["last_name"] == 'Äijälä "Aki"'
    assert row["first_names"] == "Åsa\tEva"
    assert row["email"] == "osa/x@example.fi"
