"""Learn the match model from the register's own records: `register model train`.

The model in `model.json` was trained on generated data. A utility's real records
have their own names, noise and households, so the model can be re-estimated from
them, unsupervised as Splink does and exactly as `train.train_model` does it (the
model's declared comparisons, blocking keys and training rules are reused, not
copied): term frequencies from the register's records, u from random pairs of
them, m by expectation maximisation, the household model on pairs at one address.

- *A new file, never the current one.* The model is written to
  `<out dir>/model-<version>.json` (the version is a digest of the parameters;
  an existing file is never overwritten), mode 0600: its term-frequency tables hold
  the register's frequent names. Adopting it is a release decision: review the
  report, then put the file in place of `pipeline/matching/model.json`. Nothing
  at night retrains or switches the model by itself.
- *A report* beside it (`model-<version>.report.md`) compares it with the current
  model: the prior, and each comparison level's match weight side by side (general
  and household models), and how many names each term-frequency table holds.
- *Steward decisions are labels.* Each accepted review is a pair of records of one
  person, each rejected review a pair of two people. Both models score every
  decided pair; at the thresholds (and a grid around them) the report gives the
  share of pairs above the threshold that stewards accepted (precision) and the
  share of accepted pairs above it (recall), and says where to set the link and
  review thresholds. The labelled pairs are the ones the model was unsure of, not a
  random sample: the report says how many there are and advises nothing below
  `MIN_LABELS`.

Counts, weights and thresholds only: no value of a record reaches the report,
the log or the exception messages.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline.matching.model import TF_COLUMNS, MatchModel
from pipeline.matching.rescore import score_listed_pairs
from pipeline.matching.settings import MatchSettings
from pipeline.matching.train import U_MAX_PAIRS, train_model

MIN_LABELS = 20            # fewer decided reviews than this: report, but advise nothing
TARGET_PRECISION = 0.99    # of linked pairs, among the labelled ones
TARGET_RECALL = 0.99       # of accepted pairs kept at least in review
THRESHOLD_GRID: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99, 0.995, 0.999)
FILE_MODE = 0o600


class RetrainError(Exception):
    """The register cannot give a model (too few records); the message holds counts only."""


# --- reading the register ---------------------------------------------------------------------------

def register_records(connection: sa.Connection) -> pd.DataFrame:
    """Every source record held, as the resolver reads them (erased records are gone already)."""
    from pipeline.register.resolve import read_records_by_key

    keys = [int(k) for k in connection.exec_driver_sql("SELECT source_record_pk FROM source_record").scalars()]
    return read_records_by_key(connection, keys).sort_values("record_key", kind="stable").reset_index(drop=True)


def steward_labels(connection: sa.Connection) -> pd.DataFrame:
    """Decided reviews as labelled pairs: key_l, key_r, same_person (accepted = True)."""
    rows = connection.exec_driver_sql(
        "SELECT left_source_record_pk, right_source_record_pk, status FROM review_queue "
        "WHERE status IN ('accepted', 'rejected') AND left_source_record_pk IS NOT NULL "
        "AND right_source_record_pk IS NOT NULL ORDER BY review_id").all()
    return pd.DataFrame({"key_l": [int(r[0]) for r in rows], "key_r": [int(r[1]) for r in rows],
                         "same_person": [r[2] == "accepted" for r in rows]})


# --- the report -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LevelWeights:
    model_part: str   # "general" or "household"
    comparison: str
    level: str
    current: float | None
    new: float | None


@dataclass(frozen=True)
class ThresholdRow:
    model: str        # "current" or "new"
    threshold: float
    pairs_above: int
    accepted_above: int
    rejected_above: int
    precision: float | None
    recall: float | None


@dataclass
class RetrainReport:
    current_version: str
    new_version: str
    records: int
    records_by_channel: dict[str, int]
    labels_accepted: int
    labels_rejected: int
    link_threshold: float
    review_threshold: float
    priors: dict[str, dict[str, float | None]]
    term_frequency_names: dict[str, dict[str, int]]
    levels: list[LevelWeights] = field(default_factory=list)
    # The e-mail's most between records of the same names, and the register's count behind it.
    namesake_email: dict[str, Any] = field(default_factory=dict)
    thresholds: list[ThresholdRow] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        """The report for a reviewer: counts, weights and thresholds only."""
        lines = [f"# Match model retrained from the register: {self.new_version}", "",
                 f"Current model {self.current_version}; new model {self.new_version}, estimated from "
                 f"{self.records} source records ("
                 + ", ".join(f"{c} {n}" for c, n in sorted(self.records_by_channel.items())) + ").",
                 f"Steward decisions used as labels: {self.labels_accepted} accepted (one person), "
                 f"{self.labels_rejected} rejected (two people).", "",
                 "## Prior (match weight of two random records)", "", "| model | current | new |", "| --- | --- | --- |"]
        lines += [f"| {part} | {_w(v['current'])} | {_w(v['new'])} |" for part, v in self.priors.items()]
        lines += ["", "## Term frequencies (names seen at least twice)", "", "| column | current | new |",
                  "| --- | --- | --- |"]
        lines += [f"| {c} | {v['current']} | {v['new']} |" for c, v in self.term_frequency_names.items()]
        if self.namesake_email:
            counts = self.namesake_email.get("counts") or {}
            lines += ["", "## E-mail shared by namesakes (the most it weighs when both names agree)", "",
                      f"Of {counts.get('pairs', 0)} pairs of records with the same first name and surname under "
                      f"two different valid codes, {counts.get('same_email', 0)} share an e-mail address.", "",
                      "| current | new |", "| --- | --- |",
                      f"| {_w(self.namesake_email.get('current'))} | {_w(self.namesake_email.get('new'))} |"]
        lines += ["", "## Match weight per comparison level (log2 m/u)", "",
                  "| model | comparison | level | current | new | change |", "| --- | --- | --- | --- | --- | --- |"]
        for row in self.levels:
            change = _w(row.new - row.current) if row.new is not None and row.current is not None else ""
            lines.append(f"| {row.model_part} | {row.comparison} | {row.level} | {_w(row.current)} | {_w(row.new)} "
                         f"| {change} |")
        lines += ["", "## Steward decisions at each threshold", "",
                  "Precision: the share of decided pairs at or above the threshold that stewards accepted. "
                  "Recall: the share of accepted pairs at or above it. The decided pairs are the ones a model "
                  "was unsure of, not a random sample.", "",
                  "| model | threshold | pairs above | accepted | rejected | precision | recall |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for row in self.thresholds:
            lines.append(f"| {row.model} | {row.threshold} | {row.pairs_above} | {row.accepted_above} | "
                         f"{row.rejected_above} | {_p(row.precision)} | {_p(row.recall)} |")
        lines += ["", "## Where to set the thresholds", ""] + [f"- {a}" for a in self.advice]
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _w(value: float | None) -> str:
    return "" if value is None else f"{value:+.2f}"


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _level_rows(current: MatchModel, new: MatchModel) -> list[LevelWeights]:
    rows: list[LevelWeights] = []
    for part, old_table, new_table in (("general", current.levels, new.levels),
                                       ("household", current.household_levels or {}, new.household_levels or {})):
        for comparison in dict.fromkeys([*old_table, *new_table]):
            old_levels, new_levels = old_table.get(comparison, {}), new_table.get(comparison, {})
            for gamma in sorted(set(old_levels) | set(new_levels), reverse=True):
                if gamma < 0:
                    continue  # the null level weighs nothing in either
                old, fresh = old_levels.get(gamma), new_levels.get(gamma)
                rows.append(LevelWeights(part, comparison, (fresh or old).label,
                                         round(old.weight, 4) if old else None, round(fresh.weight, 4) if fresh else None))
    return rows


def _threshold_rows(name: str, probability: np.ndarray, same_person: np.ndarray,
                    grid: list[float]) -> list[ThresholdRow]:
    rows = []
    accepted_total = int(same_person.sum())
    for threshold in grid:
        above = probability >= threshold
        accepted = int((above & same_person).sum())
        rejected = int((above & ~same_person).sum())
        rows.append(ThresholdRow(name, threshold, int(above.sum()), accepted, rejected,
                                 accepted / int(above.sum()) if above.any() else None,
                                 accepted / accepted_total if accepted_total else None))
    return rows


def _advice(rows: list[ThresholdRow], labels: int, link: float, review: float) -> list[str]:
    if labels < MIN_LABELS:
        return [f"Too few steward decisions to advise ({labels}, at least {MIN_LABELS} wanted): keep the "
                f"thresholds (link {link}, review {review}) and decide more reviews before the next retraining."]
    new = [r for r in rows if r.model == "new"]
    precise = [r for r in new if r.precision is not None and r.precision >= TARGET_PRECISION]
    link_at = min((r.threshold for r in precise if r.threshold >= review), default=None)
    kept = [r for r in new if r.recall is not None and r.recall >= TARGET_RECALL]
    review_at = max((r.threshold for r in kept if link_at is None or r.threshold <= link_at), default=None)
    advice = []
    if link_at is None:
        advice.append(f"Link threshold: no threshold reaches precision {TARGET_PRECISION} on the decided pairs; "
                      f"keep {link} and look at the rejected pairs with the highest probabilities.")
    else:
        advice.append(f"Link threshold: {link_at} (the lowest at or above the review threshold where stewards "
                      f"accepted at least {TARGET_PRECISION:.0%} of the decided pairs; now {link}).")
    if review_at is None:
        advice.append(f"Review threshold: keep {review}: no threshold keeps {TARGET_RECALL:.0%} of the accepted "
                      "pairs in review.")
    else:
        advice.append(f"Review threshold: {review_at} (the highest that still keeps {TARGET_RECALL:.0%} of the "
                      f"pairs stewards accepted in review or linked; now {review}).")
    return advice


# --- the whole retraining -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Retrained:
    model_path: Path
    report_path: Path
    report: RetrainReport
    already_present: bool


def model_file_name(version: str) -> str:
    return f"model-{version}.json"


def _write_new(path: Path, text: str) -> bool:
    """Write `text` to a new 0600 file; False (and nothing written) if the file exists."""
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    return True


def retrain_from_register(engine: sa.Engine, out_dir: Path | str, *, current: MatchModel | None = None,
                          link_threshold: float = MatchSettings.link_threshold,
                          review_threshold: float = MatchSettings.review_threshold, seed: int = 0,
                          u_max_pairs: float = U_MAX_PAIRS, now: dt.datetime | None = None) -> Retrained:
    """Estimate a new model from the register's records, write it and its report (see the module doc)."""
    current = current or MatchModel.load()
    now = now or dt.datetime.now(dt.timezone.utc)
    with engine.connect() as connection:
        records = register_records(connection)
        labels = steward_labels(connection)
    if len(records) < 2:
        raise RetrainError(f"the register holds {len(records)} source records: too few to estimate a model")
    try:
        new = train_model(records, seed=seed, u_max_pairs=u_max_pairs,
                          info={"register": {"records": int(len(records)), "trained_at": now.isoformat(),
                                             "labels": int(len(labels))}})
    except ValueError as error:  # EM on too few pairs: probabilities underflow (Splink's message names none)
        raise RetrainError(f"the register's {len(records)} source records are too few to estimate a model "
                           f"({type(error).__name__} in training)") from None

    grid = sorted(set(THRESHOLD_GRID) | {link_threshold, review_threshold})
    same_person = labels["same_person"].to_numpy(bool)
    rows: list[ThresholdRow] = []
    for name, model in (("current", current), ("new", new)):
        rows += _threshold_rows(name, score_listed_pairs(records, labels, model), same_person, grid)
    report = RetrainReport(
        current_version=current.version, new_version=new.version, records=int(len(records)),
        records_by_channel={str(k): int(v) for k, v in records["channel"].astype(str).value_counts().items()},
        labels_accepted=int(same_person.sum()), labels_rejected=int((~same_person).sum()),
        link_threshold=link_threshold, review_threshold=review_threshold,
        priors={"general": {"current": current.prior_weight, "new": new.prior_weight},
                "household": {"current": current.household_prior_weight, "new": new.household_prior_weight}},
        term_frequency_names={c: {"current": len(current.term_frequencies.get(c, {})),
                                  "new": len(new.term_frequencies.get(c, {}))} for c in TF_COLUMNS},
        levels=_level_rows(current, new), thresholds=rows,
        namesake_email={"current": current.namesake_email_weight, "new": new.namesake_email_weight,
                        "counts": dict(new.namesakes or {})},
        advice=_advice(rows, len(labels), link_threshold, review_threshold))

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / model_file_name(new.version)
    written = _write_new(model_path, json.dumps(new.to_dict(), indent=1, ensure_ascii=False) + "\n")
    report_path = folder / f"model-{new.version}.report.md"
    report_path.unlink(missing_ok=True)  # the report is derived: a new one replaces it
    _write_new(report_path, report.markdown())
    return Retrained(model_path=model_path, report_path=report_path, report=report, already_present=not written)
