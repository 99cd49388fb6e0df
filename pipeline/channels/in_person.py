"""Reader for the service desk's workbook export (`in_person_YYYYMMDD.xlsx`).

The records are on sheet `Asioinnit` with the header of docs/intake_formats.md in row 1; a
record's number is its Excel row number. The workbook is read with
python-calamine (Rust): on 100,000 rows 1.6 s against 22 s for openpyxl's
read-only mode, for 200 MiB of memory against 120 (`bench/xlsx_readers.py`).

Excel stores every number as a float, so numeric cells are turned back into
the text a person typed: `100.0` is "100" (the normaliser restores the postal
code's lost zeros), never "100.0". A metering point is 18 digits, more than a
float holds exactly (15-16); a numeric one cannot be trusted and is dropped
with a flag.

>>> cell_text(100.0), cell_text(401234567.0), cell_text(" Aino "), cell_text(""), cell_text(2.5)
('100', '401234567', ' Aino ', None, '2.5')
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import pathlib
import re
import unicodedata

import numpy as np
import pandas as pd
import python_calamine

from pipeline.channels.base import ChannelRead, UnreadableFile, is_rust_panic, read_errors, staged_frame
from pipeline.codes import Flag, Reason
from pipeline.finland import TIME_ZONE
from pipeline.privacy import mask

CHANNEL = "in_person"
SHEET = "Asioinnit"
HEADER: tuple[str, ...] = (
    "Asiointi", "Päivämäärä", "Etunimet", "Sukunimi", "Henkilötunnus", "Lähiosoite", "Postinumero",
    "Postitoimipaikka", "Puhelin", "Sähköposti", "Tilinumero", "Tuote", "Käyttöpaikka",
    "Suoramarkkinointikielto", "Henkilöllisyys tarkistettu",
)
# Columns read as plain text -> staged column.
TEXT_COLUMNS: dict[str, str] = {
    "Asiointi": "source_record_id", "Etunimet": "first_names", "Sukunimi": "last_name",
    "Henkilötunnus": "personal_id", "Lähiosoite": "street_address", "Postinumero": "postal_code",
    "Postitoimipaikka": "city", "Puhelin": "phone", "Sähköposti": "email", "Tilinumero": "account",
    "Tuote": "product",
}
YES_NO: dict[str, bool] = {"kyllä": True, "ei": False}

# Floats hold 15 significant decimal digits exactly; beyond that a number is a guess.
_EXACT_FLOAT_LIMIT = 10**15
# Excel's day 0 (the 1900 date system, with its phantom 29 February 1900).
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)
_LAST_SERIAL = 109_574  # 2199-12-31: keeps inside datetime64[ns]
_TEXT_DATE = re.compile(r"\s*(\d{1,2})\.(\d{1,2})\.(\d{4})(?:\s+(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?)?\s*")
_EMPTY = ("", None)


def read(path: pathlib.Path) -> ChannelRead:
    """Read one workbook into staged records (its read-error frame is always empty).

    A cell cannot make a row unreadable: an odd value is staged as text for the
    normaliser, or dropped with a flag.
    """
    path = pathlib.Path(path)
    with _gc_paused():
        return _read(path)


def _read(path: pathlib.Path) -> ChannelRead:
    """`read` itself: the header checked, blank rows left out, each column converted whole."""
    rows = _sheet_rows(path)
    header = _check_header(path, rows[0])
    records = [(number, row) for number, row in enumerate(rows[1:], start=2) if not _is_blank(row)]
    n = len(records)
    if n == 0:
        raise UnreadableFile(Reason.FILE_EMPTY, f"{path.name}: sheet {SHEET} holds a header and no records")
    columns = list(zip(*(row for _, row in records)))
    for position, name in enumerate(header):
        if name is None and not _is_blank(columns[position]):
            raise UnreadableFile(Reason.FILE_UNKNOWN_COLUMN, f"{path.name}: sheet {SHEET} column "
                                 f"{_column_letter(position)} holds values but has no header")
    cells = {name: column for name, column in zip(header, columns) if name is not None}

    metering_points, metering_flags = metering_point_texts(cells["Käyttöpaikka"])
    marketing, marketing_flags = yes_no_answers(cells["Suoramarkkinointikielto"], None,
                                                Flag.MARKETING_ANSWER_UNRECOGNISED)
    verified, verified_flags = yes_no_answers(cells["Henkilöllisyys tarkistettu"], False,
                                              Flag.IDENTITY_CHECK_UNRECOGNISED)
    flags = [" ".join(f for f in triple if f) for triple in zip(metering_flags, marketing_flags, verified_flags)]
    frame = staged_frame({
        "channel": [CHANNEL] * n,
        "record_number": [number for number, _ in records],
        "observed_at": observed_times(cells["Päivämäärä"]),
        **{column: _texts(cells[name]) for name, column in TEXT_COLUMNS.items()},
        "metering_point": metering_points,
        "marketing_prohibited": marketing,
        "identity_verified": verified,
        "read_flags": flags,
    }, n)
    return ChannelRead(records=frame, errors=read_errors([]))


def cell_text(cell: object) -> str | None:
    """A cell as the text a person typed; None when empty.

    Whole floats lose their ".0" (Excel keeps every number as a float).
    """
    if cell.__class__ is str:
        return cell or None
    if cell is None:
        return None
    if isinstance(cell, float):
        return str(int(cell)) if cell.is_integer() else repr(cell)
    if isinstance(cell, (dt.date, dt.time)):  # a date typed into a text column: keep it readable
        return cell.isoformat()
    return str(cell)


def metering_point_texts(cells: tuple) -> tuple[list[str | None], list[str]]:
    """Metering points as text, and a read flag where a number could not be trusted.

    >>> metering_point_texts(("643007574000125688", 643007574000125688, 6.430075740001257e+17, 1234.0, ""))
    (['643007574000125688', '643007574000125688', None, '1234', None], ['', '', 'metering_point_invalid', '', ''])
    """
    texts: list[str | None] = []
    flags: list[str] = []
    for cell in cells:
        if cell.__class__ is str or cell is None:
            texts.append(cell or None)
            flags.append("")
        elif isinstance(cell, int) and not isinstance(cell, bool):
            texts.append(str(cell))  # an integer is exact
            flags.append("")
        elif isinstance(cell, float) and cell.is_integer() and abs(cell) < _EXACT_FLOAT_LIMIT:
            texts.append(str(int(cell)))  # too short to be valid; the normaliser flags it
            flags.append("")
        else:
            texts.append(None)
            flags.append(Flag.METERING_POINT_INVALID.value)
    return texts, flags


def yes_no_answers(cells: tuple, empty: bool | None, flag: Flag) -> tuple[list[bool | None], list[str]]:
    """`Kyllä`/`Ei` (any case, spaces) or Excel booleans; `empty` for a blank cell.

    Anything else is `empty` too, with `flag` raised.

    >>> cells = (" KYLLÄ", "ei", True, "", "joo", 1.0)
    >>> answers, flags = yes_no_answers(cells, None, Flag.MARKETING_ANSWER_UNRECOGNISED)
    >>> answers
    [True, False, True, None, None, None]
    >>> [flag or "-" for flag in flags]
    ['-', '-', '-', '-', 'marketing_answer_unrecognised', 'marketing_answer_unrecognised']
    """
    answers: list[bool | None] = []
    flags: list[str] = []
    for cell in cells:
        if cell.__class__ is bool:
            answers.append(cell)
            flags.append("")
            continue
        answer = cell.strip().lower() if cell.__class__ is str else cell
        if answer in _EMPTY:
            answers.append(empty)
            flags.append("")
        elif answer in YES_NO:
            answers.append(YES_NO[answer])
            flags.append("")
        else:
            answers.append(empty)
            flags.append(flag.value)
    return answers, flags


def observed_times(cells: tuple) -> pd.Series:
    """`Päivämäärä` cells as UTC instants; a date alone is 00:00 Finnish time.

    Excel date cells come as date or datetime; a text `24.11.2026` (optionally
    with `14:05`) and an unformatted Excel serial number are read too. Anything
    else is NaT (the normaliser quarantines it).

    >>> cells = (dt.date(2026, 11, 24), dt.datetime(2026, 7, 1, 14, 5), "24.11.2026", 46350.0, "huomenna")
    >>> observed_times(cells).tolist()
    [Timestamp('2026-11-23 22:00:00+0000', tz='UTC'), Timestamp('2026-07-01 11:05:00+0000', tz='UTC'), \
Timestamp('2026-11-23 22:00:00+0000', tz='UTC'), Timestamp('2026-11-23 22:00:00+0000', tz='UTC'), NaT]
    """
    cache: dict[object, dt.datetime | None] = {}
    local = []
    for cell in cells:
        try:
            moment = cache[cell]
        except KeyError:
            moment = cache[cell] = _local_time(cell)
        except TypeError:  # unhashable: never a date
            moment = None
        local.append(moment)
    times = pd.Series(pd.to_datetime(pd.Series(local, dtype=object), errors="coerce"), dtype="datetime64[ns]")
    # Ambiguous autumn hour: the first (summer-time) instant; the skipped spring hour moves forward.
    return times.dt.tz_localize(TIME_ZONE, ambiguous=np.ones(len(times), dtype=bool),
                                nonexistent="shift_forward").dt.tz_convert("UTC")


# --- helpers -----------------------------------------------------------------------

@contextlib.contextmanager
def _gc_paused():
    """Pause the cycle collector while millions of cells (no cycles) are built.

    Otherwise it walks all of them again and again: a quarter of the read time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _sheet_rows(path: pathlib.Path) -> list[list]:
    """All rows of sheet Asioinnit from A1 on (row i is Excel row i + 1)."""
    try:
        if path.stat().st_size == 0:
            raise UnreadableFile(Reason.FILE_EMPTY, f"{path.name}: the file is empty")
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
        if SHEET not in workbook.sheet_names:
            raise UnreadableFile(Reason.FILE_MISSING_SHEET, f"{path.name}: no sheet {SHEET}")
        rows = workbook.get_sheet_by_name(SHEET).to_python(skip_empty_area=False)
    except UnreadableFile:
        raise
    except Exception as error:  # calamine's zip/XML errors, OSError: the file as a whole is unreadable
        # The error's own text is left out: it could quote the file's content.
        raise UnreadableFile(Reason.FILE_UNREADABLE,
                             f"{path.name}: not a readable xlsx workbook ({type(error).__name__})") from None
    except BaseException as error:
        # A panic in the Rust reader arrives as pyo3's PanicException, a BaseException.
        if not is_rust_panic(error):
            raise
        raise UnreadableFile(Reason.FILE_UNREADABLE,
                             f"{path.name}: not a readable xlsx workbook ({type(error).__name__})") from None
    if not rows or all(_is_blank(row) for row in rows):
        raise UnreadableFile(Reason.FILE_EMPTY, f"{path.name}: sheet {SHEET} is empty")
    return rows


def _check_header(path: pathlib.Path, row: list) -> list[str | None]:
    """The column names of row 1 (None: no header); raises unless they are HEADER's, in any order.

    A column that is not ours is named by its letter and a masked header: if row
    1 is not a header at all, its cells are a person's values.
    """
    names = [unicodedata.normalize("NFC", cell.strip()) if cell.__class__ is str else cell_text(cell) or ""
             for cell in row]
    missing = [name for name in HEADER if name not in names]
    if missing:
        raise UnreadableFile(Reason.FILE_MISSING_COLUMN,
                             f"{path.name}: sheet {SHEET} has no column {', '.join(missing)}")
    seen: set[str] = set()
    for position, name in enumerate(names):
        if name and (name not in HEADER or name in seen):
            what = "repeats" if name in seen else "has an unknown header"
            raise UnreadableFile(Reason.FILE_UNKNOWN_COLUMN,
                                 f"{path.name}: sheet {SHEET} column {_column_letter(position)} {what} "
                                 f"({mask(name)!r})")
        seen.add(name)
    return [name or None for name in names]


def _texts(cells: tuple) -> list[str | None]:
    if set(map(type, cells)) <= {str}:  # the usual all-text column: skip the per-cell call
        return [cell or None for cell in cells]
    return [cell_text(cell) for cell in cells]


def _is_blank(cells: list | tuple) -> bool:
    """No cell holds anything but spaces (calamine gives "" for an empty cell)."""
    for cell in cells:  # returns at the first value: cheap for the usual full row
        if cell is not None and (cell.__class__ is not str or cell.strip()):
            return False
    return True


def _local_time(cell: object) -> dt.datetime | None:
    if isinstance(cell, dt.datetime):
        return cell.replace(tzinfo=None)
    if isinstance(cell, dt.date):
        return dt.datetime(cell.year, cell.month, cell.day)
    if cell.__class__ is str:
        found = _TEXT_DATE.fullmatch(cell)
        if found:
            day, month, year, hour, minute, second = (int(part or 0) for part in found.groups())
            try:
                return dt.datetime(year, month, day, hour, minute, second)
            except ValueError:
                return None
        return None
    if isinstance(cell, (int, float)) and not isinstance(cell, bool) and 1 <= cell <= _LAST_SERIAL:
        return _EXCEL_EPOCH + dt.timedelta(days=cell)
    return None


def _column_letter(position: int) -> str:
    """0 -> 'A', 25 -> 'Z', 26 -> 'AA'."""
    letters = ""
    position += 1
    while position:
        position, remainder = divmod(position - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters
