"""Many landed files read, and normalised, in worker processes: `pipeline.intake.read_all`'s parallel path.

    workers_setting()        -> REGISTER_INTAKE_WORKERS, default one per CPU this process may use
    worth_a_pool(files)      -> whether the files are many enough for worker processes to pay
    read_in_workers(files, ...) -> one FileRead per file, in the order given, as `read_landed` makes it

The files are cut into groups, a few per channel and worker (`groups_of`). A worker reads
each file of its group with `read_landed` (the serial path's own function, so a file it
cannot read keeps the same reason and detail) and, given `today`, normalises the group's
records together with `prepare_files`. The FileReads cross back pickled (frames backed by
Arrow pickle cheaply) with their normalised shares, the staged records left in the
worker, and are put back in the order of the files given.

Workers come from the `forkserver` start method (`spawn` where there is none), never a plain
fork: the run's process holds threads and locks (Dagster's, SQLAlchemy's pool) that a forked
copy would inherit mid-use. The fork server is a fresh interpreter, started once per process,
that has imported the readers and normalisers; every pool forks its workers from it, so the
next channel's pool starts in milliseconds rather than a second of imports.

Nothing a worker raises crosses back: its text may quote a value. A worker hands back
FileReads or a `WorkerFailure` (the file, the stage and the error's type name); a worker that dies
(a crash in a reader's native code, the kernel's OOM killer) costs only the file it was
reading, quarantined whole as `file_unreadable`.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from pipeline.codes import Reason
from pipeline.intake import FileRead, LandedFile, prepare_files, read_landed

WORKERS_VARIABLE = "REGISTER_INTAKE_WORKERS"

# When worker processes pay (bench/README.md, "Reading in worker processes"): on 2 cores
# a pool breaks even at ~0.7 s of serial work and saves 30-47 % from 2 s on; the first of
# a process costs 0.5-1.2 s more (the fork server imports the readers and normalisers).
# So a pool needs ~1.25 s of serial work: these many bytes of a channel's exports (read +
# normalise runs at 4.6-25 MiB/s by channel; an xlsx byte costs five times a JSON line's).
# One file cannot be split: the nightly batch (one file per channel) stays in the run's process.
POOL_MIN_FILES = 2
POOL_MIN_BYTES: dict[str, int] = {"web": 32 * 2**20, "phone": 16 * 2**20, "mail": 12 * 2**20,
                                  "email": 24 * 2**20, "in_person": 6 * 2**20}
GROUPS_PER_WORKER = 2


class IntakeWorkerFailed(RuntimeError):
    """A worker process stopped on something that is not the file's fault (an interrupt,
    an exit, a result it could not hand back). Names the file and the error's type only."""


@dataclass(frozen=True)
class WorkerFailure:
    """What crosses back instead of an exception: which file of the task, no message, no traceback."""

    position: int
    stage: str  # "reading" or "normalising"
    error_type: str


def default_workers() -> int:
    """One worker per CPU this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def workers_setting(environ: Mapping[str, str] = os.environ) -> int:
    """`REGISTER_INTAKE_WORKERS`: how many processes read the landed files; unset or empty,
    one per CPU; 1 reads them in the run's own process, one after another.

    >>> workers_setting({"REGISTER_INTAKE_WORKERS": "3"}), workers_setting({"REGISTER_INTAKE_WORKERS": " 1 "})
    (3, 1)
    >>> workers_setting({"REGISTER_INTAKE_WORKERS": "0"})
    Traceback (most recent call last):
    ...
    ValueError: REGISTER_INTAKE_WORKERS must be a whole number, at least 1 (1: no worker processes), not '0'
    """
    text = environ.get(WORKERS_VARIABLE, "").strip()
    if not text:
        return default_workers()
    try:
        workers = int(text)
    except ValueError:
        workers = 0
    if workers < 1:
        raise ValueError(f"{WORKERS_VARIABLE} must be a whole number, at least 1 (1: no worker processes), "
                         f"not {text[:20]!r}")
    return workers


def worth_a_pool(files: list[LandedFile]) -> bool:
    """Enough files, and bytes (each channel's counted against its POOL_MIN_BYTES), for
    worker processes to pay for starting; and a process allowed to start them (a daemonic
    process may have no children)."""
    work = sum(f.size_bytes / POOL_MIN_BYTES[f.channel] for f in files)
    return len(files) >= POOL_MIN_FILES and work >= 1 and not multiprocessing.current_process().daemon


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # Imported once in the fork server, inherited by every worker forked from it; the
        # main module too, else each worker would import it again (`dagster job execute`'s
        # script imports all of Dagster's command line).
        context.set_forkserver_preload(["__main__", __name__])
        return context
    return multiprocessing.get_context("spawn")


def _worker_started() -> None:
    """A pool that a dead worker broke ends its other workers with SIGTERM. A worker that
    inherited SIGTERM ignored (its parent started under nohup, or a supervisor that masks
    it) would never end, and the pool would wait for it for good: the night would stop."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


WorkerTask = Callable[[list[LandedFile], "dt.date | None"], "list[FileRead] | WorkerFailure"]


def _read_in_worker(files: list[LandedFile], today: dt.date | None) -> list[FileRead] | WorkerFailure:
    """In a worker: read a group of files, and normalise the group's records together for `today` if given."""
    reads: list[FileRead] = []
    for position, landed in enumerate(files):
        try:
            reads.append(read_landed(landed))
        except BaseException as error:  # read_landed lets through only what is not the file's fault
            return WorkerFailure(position, "reading", type(error).__name__)
    if today is not None:
        try:
            prepared = prepare_files(reads, today)
        except Exception:
            # Left for build_batch, which normalises these files in the run's own process and
            # stops (or not) exactly as the serial path does.
            prepared = []
        except BaseException as error:  # an exit or an interrupt: not a value's fault either
            return WorkerFailure(0, "normalising", type(error).__name__)
        # The staged records stay here: the normalised share is what build_batch uses, and
        # sending both would double what crosses back (and the run's memory).
        shares = iter(prepared)
        reads = [r.with_share(next(shares)) if r.result is not None and prepared else r for r in reads]
    return reads


def groups_of(files: list[LandedFile], workers: int) -> list[list[int]]:
    """The files (by position) cut into tasks: per channel, up to GROUPS_PER_WORKER groups
    per worker of about equal bytes, largest group first.

    A task normalises its files together: at 1M records, one file per task costs ~1.8x the
    CPU of one normalisation per channel (the normalisers work once per distinct value),
    two groups per channel ~1.05x, four ~1.1x. More groups than workers let a free worker
    take the next group while the other is slowed by other work on the machine.
    """
    by_channel: dict[str, list[int]] = {}
    for position, landed in enumerate(files):
        by_channel.setdefault(landed.channel, []).append(position)
    groups: list[tuple[int, list[int]]] = []
    for positions in by_channel.values():
        count = min(len(positions), GROUPS_PER_WORKER * workers)
        bins: list[tuple[int, list[int]]] = [(0, []) for _ in range(count)]
        for position in sorted(positions, key=lambda i: files[i].size_bytes, reverse=True):
            lightest = min(range(count), key=lambda b: bins[b][0])
            size, members = bins[lightest]
            bins[lightest] = (size + files[position].size_bytes, members + [position])
        groups += [(size, sorted(members)) for size, members in bins]
    return [members for _, members in sorted(groups, key=lambda g: g[0], reverse=True)]


def _ended(landed: LandedFile) -> FileRead:
    """The file whose worker died reading it: quarantined whole, the other files go on."""
    return FileRead(landed, reason=Reason.FILE_UNREADABLE,
                    detail=f"{landed.file_name}: the worker process reading it ended abruptly")


def _in_pool(files: list[LandedFile], groups: list[list[int]], today: dt.date | None, workers: int,
             results: list[FileRead | None], task: WorkerTask) -> list[list[int]]:
    """Run the groups in a pool of `workers`; put each file's FileRead at its place. Returns
    the groups a broken pool (a worker that died) left unread, in the order submitted."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_context(), initializer=_worker_started)
    try:
        futures = [(group, pool.submit(task, [files[i] for i in group], today)) for group in groups]
        unfinished: list[list[int]] = []
        for group, future in futures:
            failed: str | None = None
            try:
                outcome = future.result()
            except BrokenProcessPool:
                unfinished.append(group)
                continue
            except BaseException as error:
                if not (future.done() and future.exception() is error):
                    raise  # this process's own interrupt, not the worker's
                failed = type(error).__name__  # e.g. a result that could not cross back; raised below
            if failed is not None:
                # Raised with no cause and no context: the original's text may quote a value.
                raise IntakeWorkerFailed(f"{_names(files, group)}: {failed} handing the files back "
                                         "from a worker process")
            if isinstance(outcome, WorkerFailure):
                landed = files[group[outcome.position]]
                raise IntakeWorkerFailed(f"{landed.channel}/{landed.file_name}: {outcome.error_type} "
                                         f"while {outcome.stage} in a worker process")
            for position, read in zip(group, outcome, strict=True):
                results[position] = read
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return unfinished


def _names(files: list[LandedFile], group: list[int]) -> str:
    return ", ".join(f"{files[i].channel}/{files[i].file_name}" for i in group[:5]) + (" ..." if len(group) > 5 else "")


def read_in_workers(files: list[LandedFile], *, today: dt.date | None = None, workers: int,
                    task: WorkerTask = _read_in_worker) -> list[FileRead]:
    """Every file read (and, with `today`, normalised) by `workers` processes; the FileReads
    in the order of `files`, whatever order the workers finished in.

    `task` is what a worker runs on a group of files (`_read_in_worker`; the tests wrap it
    to make a worker die or raise). It must be picklable: a module's function or a partial of one.
    """
    results: list[FileRead | None] = [None] * len(files)
    groups = groups_of(files, workers)
    unfinished = _in_pool(files, groups, today, min(workers, len(groups)), results, task)
    # A worker died and broke the pool: the files not finished are read again one by one,
    # in file order, in a one-worker pool. The first unfinished file of a broken one-worker
    # pool is the one that ended it: quarantined alone, the rest go on in a new pool.
    left = sorted(i for group in unfinished for i in group)
    while left:
        still = [group[0] for group in _in_pool(files, [[i] for i in left], today, 1, results, task)]
        if still:
            results[still[0]] = _ended(files[still[0]])
        left = still[1:]
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]
