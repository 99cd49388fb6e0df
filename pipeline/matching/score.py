"""Score candidate pairs of records with the trained match model.

    score_pairs(records, model=None, new_keys=None, min_probability=0.5) -> pairs

Candidate pairs are the records equal on at least one of the model's blocking
keys (`model.BLOCKING_KEYS`); Splink (DuckDB backend) computes each pair's
comparison levels and match weight. Pairs in which both records hold a valid
personal identity code are left to the deterministic tier (docs/register_rules.md rule 4)
and never scored here. Pairs at the same address, and pairs sharing a landline,
an e-mail address or a bank account (what a household shares besides its home),
are scored with the household model (see `model.MatchModel`): to strangers such a
shared contact would make two records almost surely one person, but partners
share them, and only the household model knows that.

The result has one row per pair, `key_l < key_r`: `match_probability`,
`match_weight` (log2 of the posterior odds) and `evidence`, a JSON object
giving, per comparison, the level reached and its weight in bits (log2 Bayes
factor, term-frequency adjustment included; for a pair at the same address the
address weight is the household prior's, relative to the general prior, and for
a pair sharing a contact elsewhere that plus the general address weight). The
prior's weight plus the evidence weights is the match weight. The evidence names
levels, never values: it can go to the review queue and to run metadata.

A pair's probability depends on the two records and the model only: the term
frequencies are the model's frozen tables and the prior is the model's, so a
pair scores the same in whichever batch it comes (docs/register_rules.md rule 3).

Splink writes the SQL of `predict_within` and `predict_between` afresh on every call,
about 0.15 s of Python (sqlglot) each: most of a small batch's scoring, paid in every
round of a nightly batch's affected set. A `Scorer` records the statements Splink runs
once, on empty inputs under fixed names, and runs them again on each call's inputs;
`tests/test_matching_score.py` checks that they give Splink's own pairs, levels and weights.

`baseline_splink_pairs` is Splink alone, configured the standard way, for the
benchmark's side-by-side comparison.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from functools import cached_property

import numpy as np
import pandas as pd

from pipeline.matching.features import match_features
from pipeline.matching.model import (
    DOUBT_BLOCKING_KEYS,
    EMAIL_EXACT,
    HOUSEHOLD_LEVELS,
    NAMESAKE_LEVELS,
    PHONE_SAME_LANDLINE,
    TF_COLUMNS,
    UNIQUE_ID,
    MatchModel,
)
from pipeline.matching.settings import SCORE_BATCH_ROWS

PAIR_COLUMNS: tuple[str, ...] = ("key_l", "key_r", "match_probability", "match_weight", "evidence", "doubt_only")
# Splink logs SQL and progress at INFO; warnings only (it logs no values at that level).
_SPLINK_LOG_LEVEL = logging.WARNING
# What Splink needs: the unique id, the columns the comparisons and blocking rules
# read, whether the record holds a valid identity code, and whether it is a doubt anchor.
SPLINK_INPUT_COLUMNS: tuple[str, ...] = (
    UNIQUE_ID, "has_personal_id", "doubt_anchor", "first_name", "first_names_all", "last_name", "name_tokens",
    "name_key", "name_sorted", "doubt_name", "street_key", "apartment", "postal_code", "phone", "email",
    "email_local", "iban", "birth_date",
)
_ADDRESS = "address"
_FLAGS = ("has_personal_id", "doubt_anchor")
# What DuckDB may hold while it scores: a first load's million scored without a limit
# held 3.6 GB at the peak, 2.8 GB with it (bench/README.md); past it DuckDB spills to disk.
# How many scored pairs Python takes from it at once is `MatchSettings.score_batch_rows`.
DUCKDB_MEMORY_LIMIT = "1GB"
# Contacts a household shares: a pair sharing one is scored with the household model.
HOUSEHOLD_CONTACTS: tuple[str, ...] = ("phone", "email", "iban")


# The names the scorer's inputs go by in DuckDB, in Splink's recorded SQL and on each call.
_NEW, _NEW_AGAINST, _HELD = "match_new", "match_new_against_held", "match_held"
_CREATE_TABLE = re.compile(r"\s*CREATE TABLE (\w+) AS\s(.*)\Z", re.DOTALL)


def _read(relation, batch_rows: int) -> Iterator[pd.DataFrame]:
    """A DuckDB relation's rows as frames of at most `batch_rows`; one empty frame if none."""
    empty = True
    for batch in relation.to_arrow_reader(max(1, batch_rows)):
        if batch.num_rows:
            empty = False
            yield batch.to_pandas()
    if empty:  # no pairs: an empty frame with the same columns
        yield relation.limit(0).df()


def _empty_pairs() -> pd.DataFrame:
    return pd.DataFrame({"key_l": pd.Series(dtype="int64"), "key_r": pd.Series(dtype="int64"),
                         "match_probability": pd.Series(dtype="float64"),
                         "match_weight": pd.Series(dtype="float64"), "evidence": pd.Series(dtype=object),
                         "doubt_only": pd.Series(dtype="bool")})


def scoring_rules(model: MatchModel) -> list[str]:
    """The model's blocking keys as SQL, leaving out pairs of two identity-code holders; then
    the doubt-only keys (`model.DOUBT_BLOCKING_KEYS`), once with the doubt anchor on each side
    (a condition on one side DuckDB applies before the join, not to every namesake pair).
    Splink numbers each pair by the first rule that made it (`match_key`): a pair numbered
    past the model's own rules was made by a doubt-only rule alone."""
    def equal(key: tuple[str, ...]) -> str:
        return " AND ".join(f'l."{c}" = r."{c}"' for c in key)

    rules = [f"{equal(key)} AND NOT (l.has_personal_id AND r.has_personal_id)" for key in model.blocking_rules]
    for key in DOUBT_BLOCKING_KEYS:
        rules += [f"{equal(key)} AND l.doubt_anchor", f"{equal(key)} AND r.doubt_anchor"]
    return rules


class Scorer:
    """A DuckDB connection with the model loaded and its term frequencies registered."""

    def __init__(self, model: MatchModel):
        from splink import DuckDBAPI, Linker

        self.model = model
        self.db_api = DuckDBAPI()
        # DuckDB keeps what it computed cached up to 80 % of the machine by default: a
        # first load's scoring then held 3.6 GB at its peak. Past the limit it spills to
        # its temporary directory rather than grow.
        self.db_api.duckdb_con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        empty = pd.DataFrame({c: pd.Series(dtype="int64" if c == UNIQUE_ID else "bool" if c in _FLAGS
                                           else "string") for c in SPLINK_INPUT_COLUMNS})
        # The comparison levels (gamma_*) come out only with the matching columns; those
        # (the values) stay in DuckDB: `_result` selects levels and weights only.
        settings = dict(model.splink_settings, retain_matching_columns=True,
                        retain_intermediate_calculation_columns=True)
        # Not validated again at every scorer (0.2 s): training validated these settings
        # against these columns, and `tests/test_matching_score.py` validates the model's.
        self.linker = Linker(self.db_api.register(empty, table_name="match_template"), settings,
                             log_level=_SPLINK_LOG_LEVEL, validate_settings=False)
        for column in TF_COLUMNS:
            lookup = self.db_api.register(model.tf_frame(column), table_name=f"match_tf_{column}")
            self.linker.table_management.register_term_frequency_lookup(lookup, column)
        self.names = [c.output_column_name for c in self.linker._settings_obj.comparisons]
        self.with_tf = {c.output_column_name for c in self.linker._settings_obj.comparisons
                        if any(level._has_tf_adjustments for level in c.comparison_levels)}
        self.result_columns = [f"{UNIQUE_ID}_l", f"{UNIQUE_ID}_r", "match_weight", "match_key"]
        for name in self.names:
            self.result_columns += [f"gamma_{name}", f"mw_{name}"]
            if name in self.with_tf:
                self.result_columns.append(f"mw_tf_adj_{name}")
        self._empty = empty

    # Recorded at the first call that needs them (explaining a customer needs neither).
    @cached_property
    def _within_sql(self) -> tuple[tuple[str, str], ...]:
        return self._splink_sql(lambda: self.linker.inference.predict_within(
            self.db_api.register(self._empty, table_name=_NEW),
            blocking_rules_to_generate_predictions=scoring_rules(self.model), warning_mode="never"))

    @cached_property
    def _between_sql(self) -> tuple[tuple[str, str], ...]:
        return self._splink_sql(lambda: self.linker.inference.predict_between(
            self.db_api.register(self._empty, table_name=_NEW_AGAINST),
            self.db_api.register(self._empty, table_name=_HELD),
            blocking_rules_to_generate_predictions=scoring_rules(self.model), warning_mode="never"))

    def _splink_sql(self, predict) -> tuple[tuple[str, str], ...]:
        """The (table, SELECT) statements Splink runs for `predict`, in order: the last
        makes the scored pairs. Recorded from one call on empty inputs."""
        statements: list[str] = []
        # Every statement Splink's DuckDB backend runs passes through this one method.
        run = self.db_api._execute_sql_against_backend

        def recorded(sql: str):
            statements.append(sql)
            return run(sql)

        self.db_api._execute_sql_against_backend = recorded
        try:
            predict().drop_table_from_database_and_remove_from_cache()
        finally:
            del self.db_api._execute_sql_against_backend  # the class's own again
        made = []
        for sql in statements:
            found = _CREATE_TABLE.match(sql)
            if found:
                made.append((found.group(1), found.group(2)))
        if not made or any(table in (_NEW, _NEW_AGAINST, _HELD) for table, _ in made):
            raise RuntimeError("Splink's prediction SQL is not in the form the scorer replays")
        return tuple(made)

    def _run(self, statements: tuple[tuple[str, str], ...], inputs: dict[str, pd.DataFrame],
             batch_rows: int) -> Iterator[pd.DataFrame]:
        """Splink's recorded statements on these inputs, the scored pairs read in batches."""
        con = self.db_api.duckdb_con
        try:
            for name, frame in inputs.items():
                con.register(name, frame)
            for table, select in statements:
                con.execute(f"DROP TABLE IF EXISTS {table}")
                con.execute(f"CREATE TABLE {table} AS {select}")
            for table, _ in statements[:-1]:  # the blocked pairs, once scored (as Splink drops them)
                con.execute(f"DROP TABLE {table}")
            relation = con.table(statements[-1][0]).select(", ".join(f'"{c}"' for c in self.result_columns))
            yield from _read(relation, batch_rows)
        finally:
            for table, _ in statements:
                con.execute(f"DROP TABLE IF EXISTS {table}")
            for name in inputs:
                con.unregister(name)

    def _result(self, predicted) -> pd.DataFrame:
        """Every scored pair at once (a few records' pairs: `rescore`)."""
        parts = list(self._batches(predicted, SCORE_BATCH_ROWS))
        return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)

    def _batches(self, predicted, batch_rows: int) -> Iterator[pd.DataFrame]:
        """The levels and weights of Splink's scored pairs, `batch_rows` pairs at a time
        (the pairs stay in DuckDB, which spills past its limit, until they are read)."""
        try:
            yield from _read(predicted.as_duckdbpyrelation().select(
                ", ".join(f'"{c}"' for c in self.result_columns)), batch_rows)
        finally:
            predicted.drop_table_from_database_and_remove_from_cache()

    def within(self, frame: pd.DataFrame, batch_rows: int = SCORE_BATCH_ROWS) -> Iterator[pd.DataFrame]:
        """Splink's `predict_within` of these records, `batch_rows` scored pairs at a time."""
        yield from self._run(self._within_sql, {_NEW: frame}, batch_rows)

    def between(self, left: pd.DataFrame, right: pd.DataFrame,
                batch_rows: int = SCORE_BATCH_ROWS) -> Iterator[pd.DataFrame]:
        """Splink's `predict_between` of these records, `batch_rows` scored pairs at a time."""
        yield from self._run(self._between_sql, {_NEW_AGAINST: left, _HELD: right}, batch_rows)

    def close(self) -> None:
        self.db_api.duckdb_con.close()


@contextmanager
def open_scorer(model: MatchModel | None = None) -> Iterator[Scorer]:
    """One DuckDB connection with the model loaded, for several `score_pairs` calls
    (setting Splink up costs about 0.1 s a time, and recording its SQL 0.1-0.15 s a kind of call).

    >>> with open_scorer() as scorer:
    ...     len(score_pairs(pd.DataFrame({"record_key": [1]}), scorer=scorer))
    0
    """
    scorer = Scorer(model or MatchModel.load())
    try:
        yield scorer
    finally:
        scorer.close()


def splink_input(records: pd.DataFrame) -> pd.DataFrame:
    """The feature columns Splink reads, one row per record."""
    return _columns(match_features(records), SPLINK_INPUT_COLUMNS)


def _columns(frame: pd.DataFrame, columns: Collection[str]) -> pd.DataFrame:
    """These columns of the frame, indexed 0..n-1, sharing its arrays: `frame[columns]` and
    `reset_index` would copy each (a 5M first load's features are about 1.5 GB a copy).

    >>> frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=[7, 9])
    >>> picked = _columns(frame, ["b"])
    >>> picked.index.tolist(), np.shares_memory(picked["b"].array._ndarray, frame["b"].array._ndarray)
    ([0, 1], True)
    """
    return pd.DataFrame({column: frame[column].array for column in columns}, copy=False)


def score_pairs(records: pd.DataFrame, *, model: MatchModel | None = None,
                new_keys: Collection[int] | None = None, min_probability: float = 0.5,
                features: pd.DataFrame | None = None, scorer: Scorer | None = None,
                batch_rows: int = SCORE_BATCH_ROWS) -> pd.DataFrame:
    """Scored candidate pairs of `records` with `match_probability >= min_probability`.

    `records`: `record_key` (unique int64) and the canonical columns
    (schemas.canonical) used for matching. With `new_keys`, only pairs with at
    least one of those records are scored: new against new, and new against the
    others (a link-only pass, not the whole frame). `features`, if the caller has
    them, is `match_features(records)` (row for row), so they are not computed twice.
    `scorer`, from `open_scorer`, is reused (and its model used) instead of a new one.
    `batch_rows`: how many scored pairs are taken from DuckDB at once and cut to those
    kept (`_predictions`); the pairs are the same whatever it is.
    """
    model = scorer.model if scorer is not None else model or MatchModel.load()
    if not records[UNIQUE_ID].is_unique:
        raise ValueError(f"score_pairs: column {UNIQUE_ID} is not unique")
    if len(records) < 2:
        return _empty_pairs()
    features = splink_input(records) if features is None else _columns(features, SPLINK_INPUT_COLUMNS)
    owned = scorer is None
    scorer = Scorer(model) if owned else scorer
    is_new = None
    if new_keys is not None:
        wanted = (np.asarray(new_keys, dtype=np.int64) if isinstance(new_keys, (np.ndarray, list))
                  else np.fromiter((int(k) for k in new_keys), dtype=np.int64))
        is_new = features[UNIQUE_ID].isin(wanted).to_numpy()
    if is_new is None or is_new.all():  # a first load: every record is new, and none is copied
        new, held = features, features.iloc[:0]
    else:
        new, held = features[is_new], features[~is_new]
    try:
        parts = [part for part in (_pairs(scorer, predicted, min_probability)
                                   for predicted in _predictions(scorer, new, held, batch_rows)) if len(part)]
    finally:
        if owned:
            scorer.close()
    if not parts:
        return _empty_pairs()
    pairs = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    return pairs.sort_values(["key_l", "key_r"], kind="stable").reset_index(drop=True)


def _predictions(scorer: Scorer, new: pd.DataFrame, held: pd.DataFrame, batch_rows: int) -> Iterator[pd.DataFrame]:
    """Splink's scores of every candidate pair with a new record: the new records among
    themselves, then against the held ones, in one call each, read `batch_rows` pairs at a
    time. Each pair comes once; each batch is cut to the pairs kept before the next is read,
    so a first load's memory is set by the batch (and DuckDB's limit), not by the records.

    Not the new records in chunks, each chunk against every later one: that was as many
    Splink calls as pairs of chunks, each reading both chunks whole (at 5M records in 500,000s,
    55 calls; bench/README.md)."""
    if len(new) > 1:
        yield from scorer.within(new, batch_rows)
    if len(new) and len(held):
        yield from scorer.between(new, held, batch_rows)


def _at_levels(model: MatchModel, predicted: pd.DataFrame, comparison: str, labels: tuple[str, ...]) -> np.ndarray:
    """Pairs whose `comparison` is at one of the levels labelled `labels`."""
    gammas = [g for g, level in model.levels[comparison].items() if level.label in labels]
    return predicted[f"gamma_{comparison}"].isin(gammas).to_numpy()


def _namesakes_sharing_email(model: MatchModel, predicted: pd.DataFrame) -> np.ndarray:
    """Pairs with the same names and the same e-mail address (`model.NAMESAKE_LEVELS`)."""
    if model.namesake_email_weight is None or "email" not in model.levels:
        return np.zeros(len(predicted), dtype=bool)
    shared = _at_levels(model, predicted, "email", (EMAIL_EXACT,))
    for comparison, labels in NAMESAKE_LEVELS.items():
        shared &= _at_levels(model, predicted, comparison, labels)
    return shared


def _weights(scorer: Scorer, predicted: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(match weight, household mask, per comparison weight) with the household model applied."""
    model = scorer.model
    weight = predicted["match_weight"].to_numpy(float).copy()
    parts: dict[str, np.ndarray] = {}
    for name in scorer.names:
        part = predicted[f"mw_{name}"].to_numpy(float)
        if name in scorer.with_tf:
            part = part + predicted[f"mw_tf_adj_{name}"].fillna(0.0).to_numpy(float)
        parts[name] = part
    # Namesakes share an address made of their names far more often than strangers do: the
    # e-mail weighs at most what it weighs between namesakes (model.NAMESAKE_LEVELS), and it
    # does not make the pair a household's (a namesake elsewhere is not a family member).
    namesakes = _namesakes_sharing_email(model, predicted)
    household = np.zeros(len(predicted), dtype=bool)
    if model.household_levels is not None:
        at_home = _at_levels(model, predicted, _ADDRESS, HOUSEHOLD_LEVELS)
        # A landline, an e-mail address or an account is shared in a household as a home is:
        # two records sharing one are weighed as household members would be, not as strangers
        # (whose sharing one would make them almost surely one person).
        shares_contact = np.zeros(len(predicted), dtype=bool)
        for name in HOUSEHOLD_CONTACTS:
            exact = [g for g, level in model.levels[name].items()
                     if level.label.startswith("Exact match") or level.label == PHONE_SAME_LANDLINE]
            shares = predicted[f"gamma_{name}"].isin(exact).to_numpy()
            shares_contact |= shares & ~namesakes if name == "email" else shares
        household = at_home | shares_contact
        if household.any():
            lift = model.household_prior_weight - model.prior_weight
            # Away from home the address still counts as it does between strangers.
            parts[_ADDRESS] = np.where(at_home, lift, np.where(household, lift + parts[_ADDRESS], parts[_ADDRESS]))
            for name, levels in model.household_levels.items():
                table = {g: level.weight for g, level in levels.items()}
                by_level = predicted[f"gamma_{name}"].map(table).to_numpy(float)
                parts[name] = np.where(household, by_level, parts[name])
    if namesakes.any():  # in either model
        parts["email"] = np.where(namesakes, np.minimum(parts["email"], model.namesake_email_weight), parts["email"])
    adjusted = household | namesakes
    if adjusted.any():
        weight = np.where(adjusted, model.prior_weight + sum(parts.values()), weight)
    return weight, household, parts


def _evidence(scorer: Scorer, predicted: pd.DataFrame, household: np.ndarray,
              parts: dict[str, np.ndarray]) -> list[str]:
    """Per pair: {comparison: [level label, weight in bits]} as JSON text."""
    model = scorer.model
    columns = []
    for name in scorer.names:
        general = {g: json.dumps(level.label, ensure_ascii=False) for g, level in model.levels[name].items()}
        levels = model.household_levels.get(name, model.levels[name]) if model.household_levels else model.levels[name]
        in_household = {g: json.dumps(level.label, ensure_ascii=False) for g, level in levels.items()}
        gamma = predicted[f"gamma_{name}"].to_numpy()
        labels = [in_household[g] if h else general[g] for g, h in zip(gamma.tolist(), household.tolist())]
        weights = np.round(parts[name], 3).tolist()
        columns.append([f'"{name}":[{label},{w!r}]' for label, w in zip(labels, weights)])
    return ["{" + ",".join(row) + "}" for row in zip(*columns)]


def _pairs(scorer: Scorer, predicted: pd.DataFrame, min_probability: float) -> pd.DataFrame:
    if predicted.empty:
        return _empty_pairs()
    weight, household, parts = _weights(scorer, predicted)
    probability = 1.0 / (1.0 + np.exp2(-weight))
    keep = probability >= min_probability
    if not keep.any():
        return _empty_pairs()
    predicted = predicted[keep].reset_index(drop=True)
    parts = {name: values[keep] for name, values in parts.items()}
    left = predicted[f"{UNIQUE_ID}_l"].to_numpy(np.int64)
    right = predicted[f"{UNIQUE_ID}_r"].to_numpy(np.int64)
    out = pd.DataFrame({
        "key_l": np.minimum(left, right),
        "key_r": np.maximum(left, right),
        "match_probability": probability[keep],
        "match_weight": weight[keep],
        "evidence": _evidence(scorer, predicted, household[keep], parts),
        # Made by a doubt-only rule alone (`scoring_rules`): it may be reviewed, never linked.
        "doubt_only": predicted["match_key"].astype(int).to_numpy() >= len(scorer.model.blocking_rules),
    })
    return out.sort_values(["key_l", "key_r"], kind="stable").reset_index(drop=True)


# --- Splink alone, for the benchmark -------------------------------------------------------

BASELINE_COLUMNS: tuple[str, ...] = (
    "first_names", "last_name", "personal_id", "birth_date", "street_address", "postal_code", "phone", "email", "iban",
)


def baseline_splink_pairs(records: pd.DataFrame, *, min_probability: float = 0.5, seed: int = 0,
                          u_max_pairs: float = 1e7) -> pd.DataFrame:
    """Splink alone on the canonical records: its standard comparisons, term frequencies
    computed on these records, trained on them the usual way (prior from deterministic
    rules, u by random sampling, m by expectation maximisation). No project features,
    no household model, no deterministic tier: personal_id is one comparison among
    others and pairs of two code holders are scored like any other.

    Returns `key_l < key_r`, `match_probability`, `match_weight` at or above
    `min_probability`.
    """
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    frame = pd.DataFrame({UNIQUE_ID: records[UNIQUE_ID].to_numpy(np.int64)})
    for column in BASELINE_COLUMNS:
        values = records[column]
        if column == "birth_date":
            values = pd.to_datetime(values, errors="coerce").dt.strftime("%Y-%m-%d")
        frame[column] = values.astype(object).where(values.notna(), None).to_numpy()
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name=UNIQUE_ID,
        comparisons=[
            cl.NameComparison("first_names"),
            cl.NameComparison("last_name"),
            cl.ExactMatch("personal_id"),
            cl.DateOfBirthComparison("birth_date", input_is_string=True),
            cl.LevenshteinAtThresholds("street_address", 2),
            cl.ExactMatch("postal_code"),
            cl.ExactMatch("phone"),
            cl.EmailComparison("email"),
            cl.ExactMatch("iban"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("personal_id"), block_on("phone"), block_on("email"), block_on("iban"),
            block_on("first_names", "last_name"), block_on("last_name", "postal_code"), block_on("birth_date"),
        ],
        retain_matching_columns=False,
    )
    db_api = DuckDBAPI()
    try:
        linker = Linker(db_api.register(frame, table_name="baseline_records"), settings, log_level=_SPLINK_LOG_LEVEL)
        linker.training.estimate_probability_two_random_records_match(
            [block_on("personal_id"), block_on("first_names", "last_name", "email")], recall=0.7)
        linker.training.estimate_u_using_random_sampling(max_pairs=u_max_pairs, seed=seed)
        for rule in (block_on("first_names", "last_name"), block_on("birth_date")):
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
        predicted = linker.inference.predict(threshold_match_probability=min_probability, warning_mode="never")
        out = predicted.as_duckdbpyrelation().select(
            f'"{UNIQUE_ID}_l", "{UNIQUE_ID}_r", match_probability, match_weight').df()
    finally:
        db_api.duckdb_con.close()
    left = out[f"{UNIQUE_ID}_l"].to_numpy(np.int64)
    right = out[f"{UNIQUE_ID}_r"].to_numpy(np.int64)
    pairs = pd.DataFrame({"key_l": np.minimum(left, right), "key_r": np.maximum(left, right),
                          "match_probability": out["match_probability"].to_numpy(float),
                          "match_weight": out["match_weight"].to_numpy(float)})
    return pairs.sort_values(["key_l", "key_r"], kind="stable").reset_index(drop=True)
