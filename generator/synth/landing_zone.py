"""Write a synthetic landing zone and its ground truth.

    people in households ─► planned records ─► typed with noise ─► export files
                                                   └──────────────► ground_truth.csv.gz

The ground truth has one row per record written (re-sends and copies included),
keyed by file name and record number (as the channel readers number records:
the line of a .jsonl; the line of a .csv and the row of the sheet, the header
being 1, so the first record is 2; the message of an mbox), plus one row with
record number 0 for each file that holds no records. Columns:

- file_name, record_number, channel, source_record_id ('' when the record has none)
- kind: registration (first readable occurrence of a record), resend (the same
  record again in a later file), duplicate_in_file (the same row again in its
  file: a re-send), conflicting_duplicate (the same id again in its file with an
  answer changed: quarantined), file_copy (in a byte-identical re-sent file),
  malformed, missing_id, not_registration (an e-mail with no labels); for a file
  without records: unreadable_file (truncated), empty_file (zero bytes),
  no_records (a header-only CSV or workbook: nothing to load, `file_empty` like a zero-byte file)
- expected_reason: the quarantine reason code (pipeline.codes.Reason) the intake
  should give, '' when the record should be accepted or recognised as a re-send
- person_key, household_key: who sent it ('' for a message that is no registration)
- personal_id_true: the person's code; personal_id_noise: what was done to it
  (missing, wrong_digit, swapped_digits, letter_o, lower_case, inner_spaces,
  surrounding_spaces; space-separated, '' if nothing)
- noise: every change made while typing ("field:operation" tokens)
- events: life changes in force (household_moved, moved, surname_changed,
  marketing_prohibited, marketing_prohibition_withdrawn)
- role: the sender's place in the household (head, partner, child, mate);
  household_kind: single, couple, parent_child, flatmates, family, single_parent;
  junior: '1' for a son with his father's exact names; twin: '1' for either twin
  ('' for a message that is no registration)

The noise profile (`noise_profile`) decides the households' make-up, the life
events and the typing: "default" (synth.typed) or "varied"
(synth.varied, written apart from the matcher, with other rates and kinds).
"""

from __future__ import annotations

import csv
import datetime
import gzip
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.codes import Reason
from pipeline.intake import READY_SUFFIX
from synth import formats, plan as planning, population, varied
from synth.noise import Noiser
from synth.spellings import SPELLINGS, respell
from synth.plan import CHANNELS, EMAIL, IN_PERSON, MAIL, PHONE, WEB, Plan
from synth.typed import Typed, type_channel

TRUTH_COLUMNS = ("file_name", "record_number", "channel", "source_record_id", "kind", "expected_reason",
                 "person_key", "household_key", "personal_id_true", "personal_id_noise", "noise", "events",
                 "role", "household_kind", "junior", "twin")
NOISE_PROFILES = ("default", "varied")
GROUND_TRUTH_FILE = "ground_truth.csv.gz"
DEFAULT_RECORDS = 1000

# Re-sends happen whatever the input quality; rates per record or per file.
RESEND_RATE = 0.01
FILE_COPY_RATE = 0.03
FILE_TWICE_RATE = 0.01
# Bad input (bad_input=True): per record, per file.
BAD_RATES = {
    "malformed": {WEB: 0.002, PHONE: 0.002, MAIL: 0.003, EMAIL: 0.0, IN_PERSON: 0.0},
    "missing_id": {WEB: 0.001, PHONE: 0.001, MAIL: 0.001, EMAIL: 0.001, IN_PERSON: 0.002},
    "duplicate_in_file": {WEB: 0.0005, PHONE: 0.0005, MAIL: 0.0005, EMAIL: 0.0, IN_PERSON: 0.0005},
    "not_registration": 0.02,   # extra e-mail messages, per registration message
    "truncated_xlsx": 0.05,     # per in_person file
    "empty_mbox": 0.05,         # per e-mail file
}
# The quarantine reason each kind of bad input should get (other kinds are accepted).
_REASON = {"malformed": Reason.MALFORMED_RECORD, "missing_id": Reason.MISSING_RECORD_ID,
           "conflicting_duplicate": Reason.DUPLICATE_RECORD_ID_IN_FILE,
           "not_registration": Reason.NOT_A_REGISTRATION,
           "unreadable_file": Reason.FILE_UNREADABLE, "empty_file": Reason.FILE_EMPTY,
           "no_records": Reason.FILE_EMPTY}


@dataclass(frozen=True)
class FileSummary:
    channel: str
    name: str
    records: int   # records written in it
    kind: str      # daily, copy, unreadable, empty, no_records


@dataclass(frozen=True)
class Summary:
    """What `generate` wrote. Counts only: no personal values."""

    out_dir: Path
    landing: Path
    ground_truth: Path
    people: int
    households: int
    registrations: dict[str, int]   # intended records per channel
    written: dict[str, int]         # records written per channel, re-sends and bad input included
    files: tuple[FileSummary, ...]
    days: int
    seconds: float = field(compare=False, default=0.0)

    @property
    def records(self) -> int:
        return sum(self.registrations.values())

    def lines(self) -> list[str]:
        """A short printable report."""
        out = [f"{self.people} people in {self.households} households, {self.records} records "
               f"over {self.days} days in {self.seconds:.1f} s"]
        out.append(f"{'channel':<10} {'records':>9} {'written':>9} {'files':>6}  special files")
        for channel in CHANNELS:
            files = [f for f in self.files if f.channel == channel]
            special = ", ".join(f"{f.kind} {f.name}" for f in files if f.kind != "daily")
            out.append(f"{channel:<10} {self.registrations.get(channel, 0):>9} {self.written.get(channel, 0):>9} "
                       f"{len(files):>6}  {special}")
        out.append(f"landing zone: {self.landing}")
        out.append(f"ground truth: {self.ground_truth}")
        return out


def _file_name(channel: str, date: datetime.date, suffix: int = 1) -> str:
    extra = f"_{suffix}" if suffix > 1 else ""
    return f"{channel}_{date:%Y%m%d}{extra}.{formats.EXTENSIONS[channel]}"


def _pick(rng: np.random.Generator, eligible: np.ndarray, rate: float, at_least_one: bool) -> np.ndarray:
    """Indices from `eligible` (bool mask) at `rate`; at least one if asked and possible."""
    candidates = np.flatnonzero(eligible)
    if not len(candidates) or rate <= 0:
        return np.array([], dtype=int)
    count = int(rng.binomial(len(candidates), min(1.0, rate)))
    if at_least_one:
        count = max(count, 1)
    return np.sort(rng.choice(candidates, size=min(count, len(candidates)), replace=False))


def generate(out_dir: Path, *, people: int | None = None, records: int | None = None, days: int = 7,
             seed: int = 0, start: datetime.date = datetime.date(2026, 11, 1), noise: float = 1.0,
             bad_input: bool = True, ready_markers: bool = True, noise_profile: str = "default",
             spellings: str = "default") -> Summary:
    """Write `out_dir/landing/<channel>/...` and `out_dir/ground_truth.csv.gz`.

    Like a well-behaved source system, each export is followed by its empty
    `<file>.ready` marker (the landing protocol, docs/intake_formats.md), so the intake reads it at
    once; `ready_markers=False` writes none (the intake then waits for the settle time).

    Give `people` (that many people, each with one or more records) or `records`
    (that many intended records in the channel mix); neither means
    DEFAULT_RECORDS records. `noise_profile` is "default" or "varied"
    (synth.varied). `spellings="varied"` writes a share of the values in other spellings
    with the same meaning (synth.spellings), from a random stream of its own. Same
    arguments, same bytes.
    """
    began = time.perf_counter()
    if people is not None and records is not None:
        raise ValueError("give people or records, not both")
    if people is None and records is None:
        records = DEFAULT_RECORDS
    if (people is not None and people < 1) or (records is not None and records < 1):
        raise ValueError("people and records must be positive")
    if days < 1:
        raise ValueError("days must be at least 1")
    if noise < 0:
        raise ValueError("noise must not be negative")
    if noise_profile not in NOISE_PROFILES:
        raise ValueError(f"noise profile must be one of {', '.join(NOISE_PROFILES)}")
    if spellings not in SPELLINGS:
        raise ValueError(f"spellings must be one of {', '.join(SPELLINGS)}")
    is_varied = noise_profile == "varied"
    out_dir = Path(out_dir)
    landing = out_dir / "landing"
    if landing.exists() and any(p.is_file() for p in landing.rglob("*")):
        raise FileExistsError(f"{landing} already holds files; generate into a new directory")

    streams = np.random.SeedSequence(seed).spawn(6)
    rng_people, rng_plan, rng_typed, rng_render, rng_bad, rng_files = (np.random.default_rng(s) for s in streams)
    # Its own stream, apart from the six: without it, every other byte is the same.
    rng_spellings = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1_000,)))

    # People and how many records each sends.
    target_people = people if people is not None else \
        int(math.ceil(records / planning.MEAN_RECORDS_PER_PERSON * 1.08)) + 10
    pop = population.build(rng_people, target_people, start, varied.POPULATION_RATES if is_varied else None)
    counts = planning.records_per_person(rng_plan, len(pop))
    if people is not None:
        counts[people:] = 0
    else:
        cumulative = np.cumsum(counts)
        if cumulative[-1] < records:
            np.add.at(counts, rng_plan.integers(0, len(pop), records - int(cumulative[-1])), 1)
        else:
            last = int(np.searchsorted(cumulative, records))
            counts[last + 1:] = 0
            counts[last] -= int(cumulative[last]) - records
    plan = planning.build(rng_plan, pop, counts, days, start, varied.PLAN_RATES if is_varied else None)

    nz = Noiser(rng_typed, noise)
    traits = varied.person_traits(rng_typed, pop) if is_varied else None
    dates = [start + datetime.timedelta(days=d) for d in range(days)]
    per_day = np.zeros((len(CHANNELS), days), dtype=np.int64)
    np.add.at(per_day, (plan.channel, plan.day), 1)
    extras = _plan_extra_files(rng_files, per_day, dates, bad_input)

    # One channel at a time: type, render, write its files and their ground truth.
    for channel in CHANNELS:
        (landing / channel).mkdir(parents=True, exist_ok=True)
    ground_truth = out_dir / GROUND_TRUTH_FILE
    summaries: list[FileSummary] = []
    written: dict[str, int] = {}
    with ground_truth.open("wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=4) as gz, \
            io.TextIOWrapper(gz, encoding="utf-8", newline="") as text:
        truth_writer = csv.writer(text, lineterminator="\n")
        truth_writer.writerow(TRUTH_COLUMNS)
        for c, channel in enumerate(CHANNELS):
            typed = varied.type_channel(c, plan, pop, nz, traits) if is_varied else type_channel(c, plan, pop, nz)
            if spellings == "varied":
                respell(typed, rng_spellings, channel)
            daily = _channel_entries(c, typed, plan, pop, rng_render, rng_bad, dates, bad_input, noise)
            del typed
            files: dict[str, tuple[str, list[tuple], bytes]] = {}  # name -> (kind, entries, content)
            for name, entries in daily.items():
                files[name] = ("daily", entries, _serialise(channel, [payload for payload, _ in entries]))
            for source, name, kind in extras[channel]:
                _, entries, content = files[source]
                if kind == "copy":
                    files[name] = (kind, [(p, _as_copy(t)) for p, t in entries], content)
                elif kind == "unreadable":
                    cut = int(len(content) * (0.3 + 0.4 * rng_files.random()))
                    files[name] = (kind, [], content[:cut])
                else:
                    files[name] = (kind, [], b"")
            count = 0
            for name in sorted(files):
                kind, entries, content = files[name]
                (landing / channel / name).write_bytes(content)
                if ready_markers:
                    # Written after the export is complete: the file is ready to read.
                    (landing / channel / f"{name}{READY_SUFFIX}").write_bytes(b"")
                if kind == "unreadable" or not entries:
                    # A file without records: one row with record number 0. Unreadable,
                    # zero-byte and header-only files go to quarantine whole.
                    file_kind = "unreadable_file" if kind == "unreadable" else \
                        "empty_file" if not content else "no_records"
                    row = _blank_truth(channel)
                    row[_KIND] = file_kind
                    row[_REASON_AT] = _REASON[file_kind].value if file_kind in _REASON else ""
                    truth_writer.writerow((name, 0, *row))
                    summaries.append(FileSummary(channel, name, 0, kind if kind != "daily" else file_kind))
                    continue
                first = _FIRST_RECORD_NUMBER[channel]
                truth_writer.writerows((name, number, *truth) for number, (_, truth) in enumerate(entries, start=first))
                summaries.append(FileSummary(channel, name, len(entries), kind))
                count += len(entries)
            written[channel] = count
            del files, daily

    recorded = counts > 0
    return Summary(
        out_dir=out_dir, landing=landing, ground_truth=ground_truth,
        people=int(recorded.sum()), households=int(len(np.unique(pop.household[recorded]))),
        registrations={ch: int((plan.channel == c).sum()) for c, ch in enumerate(CHANNELS)},
        written=written, files=tuple(summaries), days=days, seconds=time.perf_counter() - began,
    )


# Record numbers as the readers count them: the line of a .jsonl, the line of a CSV
# and the row of the sheet (the header being 1), the message of an mbox.
_FIRST_RECORD_NUMBER = {"web": 1, "phone": 2, "mail": 2, "email": 1, "in_person": 2}

# Positions in a truth tuple (TRUTH_COLUMNS without file_name and record_number).
_KIND, _REASON_AT = 2, 3


def _with_kind(truth: tuple, kind: str, reason: str) -> tuple:
    row = list(truth)
    row[_KIND], row[_REASON_AT] = kind, reason
    return tuple(row)


def _as_copy(truth: tuple) -> tuple:
    return _with_kind(truth, "file_copy", "")


def _blank_truth(channel: str) -> list:
    """A truth row without file name and record number: channel first, the rest empty."""
    return [channel] + [""] * (len(TRUTH_COLUMNS) - 3)


def _serialise(channel: str, payloads: list) -> bytes:
    if channel == "web":
        return formats.web_file(payloads)
    if channel == "phone":
        return formats.phone_file(payloads)
    if channel == "mail":
        return formats.mail_file(payloads)
    if channel == "email":
        return formats.mbox_file(payloads)
    return formats.xlsx_file(payloads)


# --- per-channel records ------------------------------------------------------------------------

def _channel_entries(c: int, t: Typed, plan: Plan, pop: population.Population, rng: np.random.Generator,
                     rng_bad: np.random.Generator, dates: list[datetime.date], bad_input: bool,
                     level: float) -> dict[str, list[tuple]]:
    """The day files of one channel: its records in time order, re-sends and bad input added."""
    channel = CHANNELS[c]
    n = len(t.index)
    days = len(dates)
    if n == 0 and c != EMAIL:
        return {_file_name(channel, d): [] for d in dates}
    ids = plan.source_record_id[t.index].copy()
    kind = np.full(n, "registration", dtype=object)
    many = n >= 20

    if bad_input:
        missing = _pick(rng_bad, kind == "registration", BAD_RATES["missing_id"][c], many and BAD_RATES["missing_id"][c] > 0)
        ids[missing] = ""
        kind[missing] = "missing_id"
        malformed = _pick(rng_bad, kind == "registration", BAD_RATES["malformed"][c], many and BAD_RATES["malformed"][c] > 0)
        kind[malformed] = "malformed"

    payloads = _build_payloads(c, t, ids, plan, pop, rng, level)

    if bad_input:
        for j in np.flatnonzero(kind == "malformed").tolist():
            payloads[j] = _break(c, payloads[j], rng_bad)

    person = plan.person[t.index]
    reasons = [_REASON[k].value if k in _REASON else "" for k in kind.tolist()]
    truth = list(zip([channel] * n, ids.tolist(), kind.tolist(), reasons,
                     [f"P{p + 1:07d}" for p in person.tolist()],
                     [f"H{h + 1:07d}" for h in pop.household[person].tolist()],
                     pop.personal_id[person].tolist(), t.personal_id_noise.tolist(), t.tags.tolist(),
                     plan.events[t.index].tolist(), pop.role[person].tolist(),
                     pop.household_kind[pop.household[person]].tolist(),
                     np.where(pop.junior[person], "1", "0").tolist(), np.where(pop.twin[person], "1", "0").tolist()))

    day = plan.day[t.index]
    seconds = plan.seconds[t.index]
    order = np.lexsort((np.arange(n), seconds))
    by_day: dict[int, list[tuple]] = {}
    for d in range(days):
        in_day = order[day[order] == d].tolist()
        by_day[d] = [(payloads[j], truth[j]) for j in in_day]

    if c == EMAIL and bad_input:
        # Questions go in among the day's messages, by time.
        questions = _questions(t, plan, pop, rng_bad, dates, n)
        for d in range(days):
            in_day = order[day[order] == d].tolist()
            timed = [(int(seconds[j]), 0, k, (payloads[j], truth[j])) for k, j in enumerate(in_day)]
            timed += [(moment, 1, k, entry) for k, (moment, entry) in enumerate(questions) if moment // 86400 == d]
            timed.sort(key=lambda item: item[:3])
            by_day[d] = [entry for *_, entry in timed]

    # Re-sends of clean records in a later day's file (same content), and, as bad input,
    # the same record twice in one file: both at the end of the file.
    later = (kind == "registration") & (day < days - 1)
    for j in _pick(rng_bad, later, RESEND_RATE, many and days > 1).tolist():
        target = int(min(days - 1, day[j] + 1 + rng_bad.integers(0, 2)))
        by_day[target].append((payloads[j], _with_kind(truth[j], "resend", "")))
    if bad_input:
        # An export bug repeats a row: identical (a re-send within the file), or with one
        # answer changed, which cannot be told apart from the first and goes to quarantine.
        rate = BAD_RATES["duplicate_in_file"][c]
        for j in _pick(rng_bad, kind == "registration", rate, many and rate > 0).tolist():
            by_day[int(day[j])].append((payloads[j], _with_kind(truth[j], "duplicate_in_file", "")))
        for j in _pick(rng_bad, kind == "registration", rate, many and rate > 0).tolist():
            edited = _with_kind(truth[j], "conflicting_duplicate", _REASON["conflicting_duplicate"].value)
            by_day[int(day[j])].append((_edit_marketing(c, payloads[j]), edited))

    return {_file_name(channel, dates[d]): entries for d, entries in by_day.items()}


def _edit_marketing(c: int, payload):
    """The same record with the direct-marketing answer turned the other way."""
    if c == WEB:
        record = json.loads(payload)
        consents = record.setdefault("consents", {})
        consents["direct_marketing_prohibited"] = not consents.get("direct_marketing_prohibited")
        return json.dumps(record, ensure_ascii=False)
    row = list(payload)
    if c == PHONE:
        row[12] = "E" if row[12] == "K" else "K"
    elif c == MAIL:
        row[11] = "" if row[11] else "x"
    else:  # in_person
        answer = row[13]
        row[13] = (not answer) if isinstance(answer, bool) or answer is None else ("Ei" if answer == "Kyllä" else "Kyllä")
    return row


def _break(c: int, payload, rng: np.random.Generator):
    """Make one record unreadable the way exports break."""
    if c == WEB:
        line: str = payload
        if rng.random() < 0.75:  # cut short: never valid JSON
            return line[:int(len(line) * (0.2 + 0.6 * rng.random()))]
        return "[" + line + "]"  # valid JSON, not an object
    row: list = payload
    if c == PHONE:
        if rng.random() < 0.5:
            return ";".join(row[:-3])  # the export cut the row short
        fields = list(row)
        fields[6] = fields[6].replace(" ", ";", 1) if " " in fields[6] else fields[6] + ";"
        return ";".join(fields)  # a value with an unquoted delimiter
    # mail: "Surname, First names" typed into full_name without quotes
    fields = [f if ("," not in f and '"' not in f) else f.replace(",", "") for f in row]
    names = fields[2].split(" ")
    fields[2] = f"{names[-1]}, {' '.join(names[:-1])}" if len(names) > 1 else fields[2] + ","
    return ",".join(fields)


def _questions(t: Typed, plan: Plan, pop: population.Population, rng: np.random.Generator,
               dates: list[datetime.date], n_messages: int) -> list[tuple[int, tuple]]:
    """E-mail messages that ask something and register nothing."""
    count = int(rng.binomial(max(n_messages, 1), BAD_RATES["not_registration"]))
    count = max(count, 1)
    recorded = np.unique(plan.person)
    out = []
    for _ in range(count):
        p = int(recorded[rng.integers(0, len(recorded))])
        moment = int(rng.integers(0, len(dates))) * 86400 + int(rng.integers(7 * 3600, 22 * 3600))
        local = datetime.datetime.combine(dates[0], datetime.time()) + datetime.timedelta(seconds=moment)
        language = pop.language[p]
        first = pop.first_names[p].split(" ")[0]
        subject, body = formats.question_body(language, first)
        sender = pop.email[p]
        message_id = f"<{int(rng.integers(0, 2 ** 62)):016x}.{moment}@{sender.partition('@')[2]}>"
        payload = formats.email_message(message_id=message_id, local=local, sender=sender,
                                        display_name=f"{first} {pop.last_name[p]}", subject=subject, body=body,
                                        charset="utf-8", quoted_printable=bool(rng.random() < 0.4),
                                        with_html=bool(rng.random() < 0.25), boundary=f"=_q{moment:x}")
        truth = _blank_truth("email")
        truth[1], truth[_KIND], truth[_REASON_AT] = message_id, "not_registration", Reason.NOT_A_REGISTRATION.value
        out.append((moment, (payload, tuple(truth))))
    return out


class _LocalClock:
    """Finnish local times of records, as the formats write them (cached per day and hour)."""

    def __init__(self, start: datetime.date, seconds: np.ndarray):
        self.start = start
        self.day, rest = np.divmod(seconds.astype(np.int64), 86400)
        self.hour, rest = np.divmod(rest, 3600)
        self.minute, self.second = np.divmod(rest, 60)

    def _date(self, day: int) -> datetime.date:
        return self.start + datetime.timedelta(days=day)

    def iso(self) -> list[str]:
        """2026-11-24T18:03:11+02:00"""
        prefix: dict[tuple[int, int], str] = {}
        out = []
        for d, h, m, s in zip(self.day.tolist(), self.hour.tolist(), self.minute.tolist(), self.second.tolist()):
            key = (d, h)
            if key not in prefix:
                local = datetime.datetime.combine(self._date(d), datetime.time(h))
                prefix[key] = (f"{local:%Y-%m-%dT%H}", formats.aware(local).isoformat()[-6:])
            date_hour, offset = prefix[key]
            out.append(f"{date_hour}:{m:02d}:{s:02d}{offset}")
        return out

    def finnish(self) -> list[str]:
        """24.11.2026 18:03"""
        dates = {d: f"{self._date(d):%d.%m.%Y}" for d in np.unique(self.day).tolist()}
        return [f"{dates[d]} {h:02d}:{m:02d}" for d, h, m in zip(self.day.tolist(), self.hour.tolist(),
                                                                 self.minute.tolist())]

    def finnish_date(self) -> list[str]:
        """24.11.2026"""
        dates = {d: f"{self._date(d):%d.%m.%Y}" for d in np.unique(self.day).tolist()}
        return [dates[d] for d in self.day.tolist()]

    def compact(self) -> list[str]:
        """20261124-180311"""
        dates = {d: f"{self._date(d):%Y%m%d}" for d in np.unique(self.day).tolist()}
        return [f"{dates[d]}-{h:02d}{m:02d}{s:02d}" for d, h, m, s in
                zip(self.day.tolist(), self.hour.tolist(), self.minute.tolist(), self.second.tolist())]

    def datetimes(self) -> list[datetime.datetime]:
        base = datetime.datetime.combine(self.start, datetime.time())
        return [base + datetime.timedelta(days=d, hours=h, minutes=m, seconds=s) for d, h, m, s in
                zip(self.day.tolist(), self.hour.tolist(), self.minute.tolist(), self.second.tolist())]


def _build_payloads(c: int, t: Typed, ids: np.ndarray, plan: Plan, pop: population.Population,
                    rng: np.random.Generator, level: float) -> list:
    n = len(t.index)
    clock = _LocalClock(plan.start, plan.seconds[t.index])
    if c == WEB:
        null_bits = rng.integers(0, 2 ** 31, n)
        english = rng.random(n) < 0.03
        verified = plan.verified[t.index]
        columns = {"id": ids.tolist(), "submitted_at": clock.iso(), "authenticated": verified.tolist(),
                   "first_names": t.first_names, "last_name": t.last_name, "personal_id": t.personal_id,
                   "email": t.email, "phone": t.phone, "street": t.street, "postal_code": t.postal_code,
                   "city": t.city, "account": t.account, "product": t.product,
                   "metering_point": t.metering_point, "marketing": t.marketing,
                   "language": np.where(english, "en", t.language).tolist()}
        return formats.web_lines(columns, null_bits.tolist())

    def name(j: int, given_first: bool) -> str:
        parts = (t.first_names[j], t.last_name[j]) if given_first != bool(t.name_order_swapped[j]) \
            else (t.last_name[j], t.first_names[j])
        return " ".join(p for p in parts if p)

    if c == PHONE:
        recorded = rng.random(n) < 0.85
        tag = rng.integers(0, 16 ** 6, n)
        mark = {True: "K", False: "E", None: ""}
        when, stamp = clock.finnish(), clock.compact()
        return [[ids[j], when[j], name(j, False), t.personal_id[j], t.phone[j], t.email[j],
                 t.street[j], t.postal_code[j], t.city[j], t.account[j], t.product[j], t.metering_point[j],
                 mark[t.marketing[j]],
                 f"REC-{stamp[j]}-{tag[j]:06X}" if recorded[j] else ""] for j in range(n)]

    if c == MAIL:
        comma = rng.random(n) < min(1.0, 0.05 * level)
        big_x = rng.random(n) < 0.2
        received = clock.finnish_date()
        rows = []
        for j in range(n):
            street = t.street[j]
            parts = street.rsplit(" ", 2)
            if comma[j] and len(parts) == 3 and len(parts[1]) == 1:
                street = f"{parts[0]}, {parts[1]} {parts[2]}"  # quoted by the CSV writer
                t.tags[j] = (t.tags[j] + " street:comma").strip()
            tick = ("X" if big_x[j] else "x") if t.marketing[j] is True else ""
            rows.append([ids[j], received[j], name(j, True), t.personal_id[j], street,
                         " ".join(p for p in (t.postal_code[j], t.city[j]) if p), t.phone[j], t.email[j],
                         t.account[j], t.product[j], t.metering_point[j], tick])
        return rows

    if c == EMAIL:
        return _email_payloads(t, ids, clock.datetimes(), pop, plan, rng, level)

    # in_person
    as_number = rng.random(n) < 0.3
    phone_number = rng.random(n) < min(1.0, 0.01 * level)
    booleans = rng.random(n) < 0.2
    checked = plan.verified[t.index]
    local = clock.datetimes()
    rows = []
    for j in range(n):
        postal = t.postal_code[j]
        if as_number[j] and postal.isdigit():
            postal = int(postal)  # a spreadsheet number: leading zeros lost
            t.tags[j] = (t.tags[j] + " postal_code:number").strip()
        phone = t.phone[j]
        digits = phone.replace(" ", "").replace("-", "")
        if phone_number[j] and digits.isdigit() and digits.startswith("0"):
            phone = int(digits)
            t.tags[j] = (t.tags[j] + " phone:number").strip()
        marketing = t.marketing[j]
        if not booleans[j] and marketing is not None:
            marketing = "Kyllä" if marketing else "Ei"
        verified = bool(checked[j]) if booleans[j] else ("Kyllä" if checked[j] else "Ei")
        rows.append([ids[j] or None, local[j], t.first_names[j] or None, t.last_name[j] or None,
                     t.personal_id[j] or None, t.street[j] or None, postal or None, t.city[j] or None,
                     phone or None, t.email[j] or None, t.account[j] or None, t.product[j] or None,
                     t.metering_point[j] or None, marketing, verified])
    return rows


def _email_payloads(t: Typed, ids: np.ndarray, local: list[datetime.datetime], pop: population.Population,
                    plan: Plan, rng: np.random.Generator, level: float) -> list[bytes]:
    n = len(t.index)
    person = plan.person[t.index]
    latin1 = rng.random(n) < 0.3
    quoted = rng.random(n) < 0.4
    with_html = rng.random(n) < 0.25
    shuffled = rng.random(n) < min(1.0, 0.3 * level)
    style = rng.integers(0, 1000, (n, 3))
    separator = rng.choice(np.array([": ", ":", " : "], dtype=object), size=n,
                           p=[1 - min(0.9, 0.1 * level), min(0.9, 0.1 * level) / 2, min(0.9, 0.1 * level) / 2])
    lower_label = rng.random(n) < min(1.0, 0.03 * level)
    comma = rng.random(n) < 0.7
    named_sender = rng.random(n) < 0.8
    order_keys = rng.random((n, 8))
    out = []
    for j in range(n):
        language = t.language[j]
        labels = formats.EMAIL_LABELS[language]
        yes, no = formats.EMAIL_YES_NO[language]
        name = " ".join(p for p in (t.first_names[j], t.last_name[j]) if p)
        place = " ".join(p for p in (t.postal_code[j], t.city[j]) if p)
        address = (t.street[j] + (", " if comma[j] else " ") + place) if t.street[j] and place \
            else (t.street[j] or place)
        marketing = "" if t.marketing[j] is None else (yes if t.marketing[j] else no)
        fields = [("name", name), ("personal_id", t.personal_id[j]), ("address", address), ("phone", t.phone[j]),
                  ("account", t.account[j]), ("product", t.product[j]), ("metering_point", t.metering_point[j]),
                  ("marketing", marketing)]
        if shuffled[j]:
            fields = [fields[k] for k in np.argsort(order_keys[j]).tolist()]
        lines = []
        for key, value in fields:
            if value:
                label = labels[key].lower() if lower_label[j] else labels[key]
                lines.append(f"{label}{separator[j]}{value}")
        p = person[j]
        call_name = pop.first_names[p].split(" ")[0]
        full = f"{call_name} {plan.last_name[t.index[j]]}"
        body = formats.email_body(language, lines, call_name, full, tuple(style[j].tolist()))
        charset = "iso-8859-1" if latin1[j] else "utf-8"
        try:
            body.encode(charset)
        except UnicodeEncodeError:
            charset = "utf-8"
        subjects = formats._SUBJECTS[language]
        out.append(formats.email_message(
            message_id=ids[j] or None, local=local[j], sender=t.email[j],
            display_name=full if named_sender[j] else "", subject=subjects[style[j, 0] % len(subjects)],
            body=body, charset=charset, quoted_printable=bool(quoted[j]), with_html=bool(with_html[j]),
            boundary=f"=_b{j:x}{style[j, 1]:03d}"))
    return out


# --- whole files: copies and unreadable ones ---------------------------------------------------------------

def _next_free(files: dict, channel: str, date: datetime.date) -> str:
    suffix = 2
    while _file_name(channel, date, suffix) in files:
        suffix += 1
    return _file_name(channel, date, suffix)


def _plan_extra_files(rng: np.random.Generator, per_day: np.ndarray, dates: list[datetime.date],
                      bad_input: bool) -> dict[str, list[tuple[str, str, str]]]:
    """Whole files besides the daily ones, per channel: (source file, new name, kind).

    A daily file re-sent under the next day's name, or sent twice (kind copy); as
    bad input, a workbook cut short in transfer (unreadable) and an export run
    that found nothing (empty). Decided before any file is written.
    """
    daily = [(c, d) for c in range(len(CHANNELS)) for d in range(len(dates))]
    taken = {_file_name(CHANNELS[c], dates[d]) for c, d in daily}
    extras: dict[str, list[tuple[str, str, str]]] = {channel: [] for channel in CHANNELS}

    def add(c: int, d: int, target_day: int, kind: str) -> None:
        channel = CHANNELS[c]
        suffix = 2
        while _file_name(channel, dates[target_day], suffix) in taken:
            suffix += 1
        name = _file_name(channel, dates[target_day], suffix)
        taken.add(name)
        extras[channel].append((_file_name(channel, dates[d]), name, kind))

    everything = np.ones(len(daily), dtype=bool)
    for k in _pick(rng, everything, FILE_COPY_RATE, len(dates) > 1).tolist():
        c, d = daily[k]
        add(c, d, min(d + 1, len(dates) - 1), "copy")
    for k in _pick(rng, everything, FILE_TWICE_RATE, False).tolist():
        c, d = daily[k]
        add(c, d, d, "copy")
    if bad_input:
        for c, rate, kind in ((IN_PERSON, BAD_RATES["truncated_xlsx"], "unreadable"),
                              (EMAIL, BAD_RATES["empty_mbox"], "empty")):
            for d in _pick(rng, per_day[c] > 0, rate, True).tolist():
                add(c, d, d, kind)
    return extras
