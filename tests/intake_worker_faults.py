"""Faults put into a worker process of the parallel intake (tests/test_intake_parallel.py).

Each is a task for `pipeline.intake_workers.read_in_workers`: it runs in the worker,
where the test's monkeypatching does not reach, so it does its damage there and then
runs the real task. Bound with functools.partial, they pickle by reference.
"""

from __future__ import annotations

import datetime as dt
import os
import signal

import pipeline.intake
from pipeline.channels import READERS
from pipeline.intake import LandedFile
from pipeline.intake_workers import _read_in_worker

# What a hostile file or a careless library might put in an exception's text.
PERSONAL_TEXT = "Aino Testinen 131052-308T FI2112345600000785"


def killed_on(file_name: str, files: list[LandedFile], today: dt.date | None):
    """The worker dies (as the kernel's OOM killer ends it) when its files include `file_name`."""
    if any(f.file_name == file_name for f in files):
        os.kill(os.getpid(), signal.SIGKILL)
    return _read_in_worker(files, today)


def _raising(error: BaseException):
    def reader(_path):
        raise error
    return reader


def reader_raises(channel: str, kind: str, files: list[LandedFile], today: dt.date | None):
    """`channel`'s reader raises `kind` (ValueError or SystemExit) quoting a personal value."""
    READERS[channel] = _raising({"ValueError": ValueError, "SystemExit": SystemExit}[kind](PERSONAL_TEXT))
    return _read_in_worker(files, today)


def normalising_fails(channel: str, files: list[LandedFile], today: dt.date | None):
    """Normalising a group of `channel`'s files raises, quoting a personal value."""
    if all(f.channel == channel for f in files):
        def failing(*_args, **_kwargs):
            raise ValueError(PERSONAL_TEXT)
        pipeline.intake._split_staged = failing
    try:
        return _read_in_worker(files, today)
    finally:
        pipeline.intake._split_staged = _SPLIT_STAGED


_SPLIT_STAGED = pipeline.intake._split_staged
