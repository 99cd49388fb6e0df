"""`register model train`: a new model learnt from the register's own records, on SQLite
and PostgreSQL, written beside (never over) the current one, with a report of weights,
counts and thresholds and the stewards' decisions as labels. No value in the report.

A small generated register (the project's generator) is loaded, its open reviews
decided (accepted and rejected in turn), and the model re-estimated with few random
pairs for speed.
"""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.intake import build_batch, discover, read_all
from pipeline.matching.model import MODEL_PATH, MatchModel
from pipeline.matching.retrain import (
    MIN_LABELS,
    RetrainError,
    ThresholdRow,
    _advice,
    model_file_name,
    retrain_from_register,
)
from pipeline.register import steward
from synth import generate
from test_register_resolve import NOW, TODAY, load_batch, table

ROOT = Path(__file__).resolve().parents[1]
U_PAIRS = 1e5


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("retrain-zone")
    generate(out, people=1500, days=5, seed=21)
    return out / "landing"


def _decide_every_open_review(engine) -> tuple[int, int]:
    accepted = rejected = 0
    for i, (review_id,) in enumerate(table(engine, "SELECT review_id FROM review_queue WHERE status = 'open' "
                                                   "ORDER BY review_id")):
        try:
            steward.decide_review(engine, review_id, accept=i % 2 == 0, by="steward.labels", now=NOW)
        except steward.StewardError:
            continue  # an earlier decision settled it (merged, or two codes)
        accepted, rejected = accepted + (i % 2 == 0), rejected + (i % 2 == 1)
    return accepted, rejected


def _personal_values(engine) -> set[str]:
    rows = table(engine, "SELECT personal_id, first_names, last_name, street_address, phone, email, iban "
                         "FROM source_record")
    return {str(v) for row in rows for v in row if v and len(str(v)) >= 4}


def test_a_model_learnt_from_the_register_is_a_new_file_with_a_report(register_engine, landing, tmp_path, capsys):
    load_batch(register_engine, build_batch(read_all(discover(landing)), TODAY))
    accepted, rejected = _decide_every_open_review(register_engine)
    assert accepted >= 1 and rejected >= 1, "the generated register gave the steward nothing to decide"
    before = hashlib.sha256(MODEL_PATH.read_bytes()).hexdigest()
    current = MatchModel.load()
    out = tmp_path / "models"

    url = register_engine.url.render_as_string(hide_password=False)
    assert main(["--database-url", url, "model", "train", "--out-dir", str(out), "--u-max-pairs", str(U_PAIRS)]) == 0
    said = capsys.readouterr().out
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 2, f"{len(files)} files written, expected the model and its report"
    model_file = next(out.glob("model-*.json"))
    new = MatchModel.load(model_file)
    assert model_file.name == model_file_name(new.version) and new.version != current.version
    assert stat.S_IMODE(model_file.stat().st_mode) == 0o600
    assert hashlib.sha256(MODEL_PATH.read_bytes()).hexdigest() == before, "the current model was changed"
    assert new.trained["register"]["records"] == table(register_engine, "SELECT COUNT(*) FROM source_record")[0][0]
    assert new.term_frequencies["last_name"], "no term frequencies learnt from the register"
    assert set(new.levels) == set(current.levels)  # the declared comparisons, not a fork of them
    # Namesakes counted from the register's own codes: the e-mail's weight between them.
    assert new.namesakes and new.namesakes["pairs"] >= new.namesakes["same_email"] >= 0
    assert new.namesakes["pairs"] > 0, "the generated register gave no namesakes under two codes"
    assert new.namesake_email_weight is not None

    # The report: side by side, labels counted, thresholds advised; no value of any record.
    done = retrain_from_register(register_engine, out, u_max_pairs=U_PAIRS)
    assert done.already_present and done.model_path == model_file
    report = done.report
    assert (report.labels_accepted, report.labels_rejected) == (accepted, rejected)
    compared = {(r.model_part, r.comparison, r.level) for r in report.levels}
    for name, levels in current.levels.items():
        for gamma, level in levels.items():
            if gamma >= 0:
                assert ("general", name, level.label) in compared, f"{name} level {gamma} missing from the report"
    assert all(r.current is not None and r.new is not None for r in report.levels if r.model_part == "general")
    for model in ("current", "new"):
        rows = {r.threshold: r for r in report.thresholds if r.model == model}
        assert {0.8, 0.95} <= set(rows)
        assert all(r.accepted_above + r.rejected_above == r.pairs_above for r in rows.values())
        assert rows[0.8].pairs_above >= rows[0.95].pairs_above
    assert report.advice and report.markdown() in said
    assert report.namesake_email["new"] == pytest.approx(new.namesake_email_weight)
    assert "## E-mail shared by namesakes" in report.markdown()
    text = done.report_path.read_text(encoding="utf-8")
    assert text == report.markdown()
    leaked = [v for v in _personal_values(register_engine) if v in text or v in said]
    assert not leaked, f"{len(leaked)} personal values in the report"


def test_too_few_records_is_a_clear_error(register_engine, tmp_path):
    with pytest.raises(RetrainError, match="0 source records"):
        retrain_from_register(register_engine, tmp_path, u_max_pairs=U_PAIRS)
    assert not (tmp_path / "models").exists()


def _rows(model: str, probabilities: list[float], same: list[bool], grid: list[float]) -> list[ThresholdRow]:
    from pipeline.matching.retrain import _threshold_rows

    return _threshold_rows(model, np.array(probabilities), np.array(same), grid)


def test_the_advice_follows_the_labels():
    grid = [0.5, 0.8, 0.9, 0.95, 0.99]
    # Accepted pairs score 0.85-0.999; rejected ones up to 0.93: link above 0.93, review at or below 0.85.
    probabilities = [0.85, 0.92, 0.96, 0.999] * 6 + [0.6, 0.7, 0.93] * 3
    same = [True] * 24 + [False] * 9
    rows = _rows("new", probabilities, same, grid)
    advice = _advice(rows, len(same), link=0.95, review=0.8)
    assert advice[0].startswith("Link threshold: 0.95 ")
    assert advice[1].startswith("Review threshold: 0.8 ")
    assert _advice(rows, MIN_LABELS - 1, link=0.95, review=0.8)[0].startswith("Too few steward decisions")


def test_the_nightly_job_never_retrains():
    orchestration = [*[str(p.relative_to(ROOT)) for p in (ROOT / "pipeline" / "orchestration").glob("*.py")],
                     *[str(p.relative_to(ROOT)) for p in (ROOT / "assets").glob("*.py")]]
    importing = [name for name in orchestration if "retrain" in (ROOT / name).read_text(encoding="utf-8")
                 or "train_model" in (ROOT / name).read_text(encoding="utf-8")]
    assert importing == []
