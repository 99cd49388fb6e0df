"""Property-based fuzzing of the five channel readers (issue 9), with hypothesis.

For any bytes, and for any mutation of a file the generator wrote (cut at any
byte, bytes inserted, bytes flipped, lines re-ended, the text re-encoded; for a
workbook, its sheet XML mutated inside an intact zip), a reader returns records
and read errors or raises `UnreadableFile`, and nothing else. `read_landed`
then never raises, and after `build_batch` every record read is accepted or
quarantined (read = accepted + quarantined), the accepted ones pass the
canonical schema, and no text holds a NUL.

Each reader gets FUZZ_EXAMPLES examples of each reader property (default 100, so
the suite stays fast) and FUZZ_BATCH_EXAMPLES (default a tenth, at least 15) of
the property through `build_batch`, which normalises and costs ~0.2 s an example;
`FUZZ_EXAMPLES=10000` is the long run bench/README.md reports.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.channels.base import ChannelRead
from pipeline.intake import LandedFile, build_batch, read_landed
from pipeline.normalise.limits import RAW_RECORD_LIMIT
from synth.landing_zone import generate
from pipeline.validation import validate_canonical

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
# Normalising a batch costs ~0.1-0.3 s however small the file: a tenth as many examples.
BATCH_EXAMPLES = int(os.environ.get("FUZZ_BATCH_EXAMPLES", str(max(15, EXAMPLES // 10))))
_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUZZ = settings(max_examples=EXAMPLES, derandomize=EXAMPLES <= 100, **_COMMON)
FUZZ_BATCH = settings(max_examples=BATCH_EXAMPLES, derandomize=BATCH_EXAMPLES <= 15, **_COMMON)
SUFFIX = {"web": "jsonl", "phone": "csv", "mail": "csv", "email": "mbox", "in_person": "xlsx"}
CHANNELS = tuple(SUFFIX)
TODAY = dt.date(2026, 12, 31)


_SAMPLES: dict[str, bytes] = {}


def sample(channel: str) -> bytes:
    """One small, valid generated file per channel: the seed for mutation.

    Kept out of the test's arguments, so that a failing example prints the
    mutation (positions and bytes), never the file's synthetic values.
    """
    if not _SAMPLES:
        with tempfile.TemporaryDirectory() as out:
            generate(Path(out), records=120, days=1, seed=21, bad_input=True)
            landing = Path(out) / "landing"
            _SAMPLES.update({name: max((landing / name).iterdir(), key=lambda p: p.stat().st_size).read_bytes()
                             for name in CHANNELS})
    return _SAMPLES[channel]


_FOLDER = tempfile.TemporaryDirectory(prefix="fuzz_readers_")


def read_file(channel: str, data: bytes):
    """The reader's contract for one file's bytes, through `read_landed`; returns its FileRead.

    `read_landed` turns an `UnreadableFile` into the file's reason, and any other
    exception into `file_unreadable` with "<ExceptionType> while reading": the
    second is the reader breaking its contract, so it fails here.
    """
    path = Path(_FOLDER.name) / f"{channel}_20261124.{SUFFIX[channel]}"
    path.write_bytes(data)
    read = read_landed(LandedFile(channel, path, "0" * 64, len(data)))  # never raises
    if read.result is None:
        assert read.reason is not None and read.detail.startswith(path.name)
        assert not read.detail.endswith(" while reading"), read.detail  # an exception not foreseen
        return read
    result = read.result
    assert isinstance(result, ChannelRead)
    assert result.count == len(result.records) + len(result.errors) == read.records_read
    for frame in (result.records, result.errors):
        for column in frame.columns:
            if str(frame[column].dtype).startswith("string"):
                assert not frame[column].dropna().str.contains("\x00", regex=False).any(), column
    return read


def check_batch(read) -> None:
    """After `build_batch`: read = accepted + quarantined, loadable, bounded, no NUL."""
    batch = build_batch([read], TODAY)
    if read.result is None:
        assert batch.accepted.empty and batch.quarantined.empty
        return
    assert len(batch.accepted) + len(batch.quarantined) == read.records_read
    report = validate_canonical(batch.accepted)  # what the load checks before it writes
    assert report.ok, report.failures
    for frame in (batch.accepted, batch.quarantined):
        for column in frame.columns:
            if frame[column].dtype == object or str(frame[column].dtype).startswith("string"):
                assert not frame[column].dropna().astype(str).str.contains("\x00", regex=False).any(), column
    for raw in batch.quarantined["raw_values"].dropna():
        kept = json.loads(raw)
        assert all(len(value) <= RAW_RECORD_LIMIT for value in kept.values() if isinstance(value, str))


# --------------------------------------------------------------------- any bytes

@pytest.mark.parametrize("channel", CHANNELS)
@FUZZ
@given(data=st.binary(max_size=4096))
def test_any_bytes(channel, data):
    read_file(channel, data)


# --------------------------------------------------------------------- mutations of a valid file

ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1252", "latin-1", "utf-32")


INSERTS = [b'"', b"\n", b"\r", b"\x00", b"\\u0000", b",", b";", b"{", b"}", b"\xff\xfe", b"\xef\xbb\xbf",
           b"From x\n", b'"id":"x",', b"<row>", b"</c>"]
# One change: (kind, a position as a fraction of the length, bytes or a choice).
MUTATION = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.one_of(st.binary(min_size=1, max_size=64),
                                                              st.sampled_from(INSERTS))),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8)),
    st.tuples(st.just("line_endings"), st.sampled_from([b"\r", b"\n", b"\r\n", b"\r\r\n"])),
    st.tuples(st.just("re_encode"), st.sampled_from(("utf-8", "cp1252")), st.sampled_from(ENCODINGS)),
    st.tuples(st.just("line"), st.floats(0, 1), st.sampled_from(["repeat", "drop", "huge"])),
)
MUTATIONS = st.lists(MUTATION, min_size=1, max_size=3)


def _at(fraction: float, length: int) -> int:
    return min(int(fraction * length), length)


def mutate(data: bytes, mutations: list[tuple]) -> bytes:
    """The file cut, added to, flipped, re-ended, re-encoded, or a line repeated, dropped or made huge."""
    for kind, *args in mutations:
        if kind == "truncate":
            data = data[: _at(args[0], len(data))]
        elif kind == "insert":
            at = _at(args[0], len(data))
            data = data[:at] + args[1] + data[at:]
        elif kind == "flip" and data:
            mutable = bytearray(data)
            for fraction, value in args[0]:
                mutable[_at(fraction, len(data) - 1)] = value
            data = bytes(mutable)
        elif kind == "line_endings":
            data = data.replace(b"\r\n", b"\n").replace(b"\n", args[0])
        elif kind == "re_encode":
            data = data.decode(args[0], errors="replace").encode(args[1], errors="replace")
        elif kind == "line":
            lines = data.split(b"\n")
            i = _at(args[0], len(lines) - 1)
            if args[1] == "repeat":
                lines.insert(i, lines[i])
            elif args[1] == "drop":
                del lines[i]
            else:
                lines[i] = lines[i][: len(lines[i]) // 2] + b"A" * 20_000 + lines[i][len(lines[i]) // 2:]
            data = b"\n".join(lines)
    return data


def mutate_workbook(original: bytes, mutations: list[tuple], inside: bool) -> bytes:
    """The workbook with its sheet XML mutated inside an intact zip, or the zip's own bytes mutated."""
    if not inside:
        return mutate(original, mutations)
    package = zipfile.ZipFile(io.BytesIO(original))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in package.infolist():
            content = package.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = mutate(content, mutations)
            target.writestr(item, content)
    return out.getvalue()


def mutated_sample(channel: str, mutations: list[tuple], inside: bool) -> bytes:
    original = sample(channel)
    return mutate_workbook(original, mutations, inside) if channel == "in_person" else mutate(original, mutations)


@pytest.mark.parametrize("channel", CHANNELS)
@FUZZ
@given(mutations=MUTATIONS, inside=st.booleans())
def test_mutations_of_a_generated_file(channel, mutations, inside):
    read_file(channel, mutated_sample(channel, mutations, inside))


@pytest.mark.parametrize("channel", CHANNELS)
@FUZZ_BATCH
@given(data=st.one_of(st.binary(max_size=2048).map(lambda data: ("bytes", data)),
                      st.tuples(MUTATIONS, st.booleans()).map(lambda plan: ("mutations", plan))))
def test_every_record_read_is_accepted_or_quarantined(channel, data):
    kind, value = data
    check_batch(read_file(channel, value if kind == "bytes" else mutated_sample(channel, *value)))
