"""The contract inside the repository stays true (issue 10, item 6).

docs/intake_formats.md must name exactly the fields each channel reader declares,
with the readers' own staged columns and the schema's canonical columns;
docs/register_rules.md must keep the rule numbers the code cites and name only
modules and tests that exist; links between the documents must land on a heading;
and no file may point at the contract outside the repository any more. The reason
and flag codes are held to docs/codes.md by tests/test_codes_and_sensor.py.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from pipeline.channels import email, in_person, mail, phone, web
from pipeline.codes import Flag, Reason
from pipeline.intake import FILE_EXTENSIONS
from schemas.canonical import CANONICAL_COLUMNS, CHANNELS, GIVEN_FIRST, STAGED_COLUMNS, SURNAME_FIRST
from schemas.register import ANALYST_VIEWS, MARKETING_VIEWS, metadata

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
INTAKE = DOCS / "intake_formats.md"
RULES = DOCS / "register_rules.md"
RULE_NUMBERS = range(1, 9)

_BACKTICKED = re.compile(r"`([^`\n]+)`")
_FENCED = re.compile(r"^```.*?^```", re.M | re.S)


def prose(path: Path) -> str:
    """A Markdown file without its fenced code blocks."""
    return _FENCED.sub("", path.read_text(encoding="utf-8"))


# --- reading the Markdown ------------------------------------------------------------------------

def sections(text: str) -> dict[str, str]:
    """Each `## ` heading's text -> the section's body, up to the next `## ` heading."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {heading.strip(): body for heading, body in zip(parts[1::2], parts[2::2])}


def tables(body: str) -> list[list[dict[str, str]]]:
    """The Markdown tables of a text: each a list of rows, each row a dict header -> cell."""
    found: list[list[dict[str, str]]] = []
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.fullmatch(r"\|( ?-+ ?\|)+", lines[i + 1].strip()):
            header = [cell.strip() for cell in lines[i].strip().strip("|").split("|")]
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                cells = [cell.strip() for cell in lines[i].strip().strip("|").split("|")]
                rows.append(dict(zip(header, cells)))
                i += 1
            found.append(rows)
        else:
            i += 1
    return found


def table_with(body: str, first_header: str) -> list[dict[str, str]]:
    """The section's one table whose first column is headed `first_header`."""
    matching = [t for t in tables(body) if t and next(iter(t[0])) == first_header]
    assert len(matching) == 1, f"expected one table headed {first_header!r}, found {len(matching)}"
    return matching[0]


def names(cell: str) -> list[str]:
    return _BACKTICKED.findall(cell)


def channel_section(channel: str) -> str:
    found = [body for heading, body in sections(INTAKE.read_text(encoding="utf-8")).items()
             if heading.startswith(f"{channel}:")]
    assert len(found) == 1, f"docs/intake_formats.md: expected one section '## {channel}: ...'"
    return found[0]


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces made hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


# --- intake_formats.md and the readers -----------------------------------------------------------

# Each reader's declared fields, and the staged column each maps a field onto.
DECLARED: dict[str, tuple[set[str], dict[str, str]]] = {
    "web": (set(web.LEAVES), {**web.TEXT_FIELDS, web.TIMESTAMP_FIELD: "observed_at",
                              web.AUTHENTICATED_FIELD: "identity_verified",
                              web.MARKETING_FIELD: "marketing_prohibited"}),
    "phone": (set(phone.HEADER), dict(phone.TEXT_COLUMNS)),
    "mail": (set(mail.HEADER), dict(mail.TEXT_COLUMNS)),
    "in_person": (set(in_person.HEADER), {**in_person.TEXT_COLUMNS, "Käyttöpaikka": "metering_point"}),
}
# The mailbox's headers the reader turns into columns (it reads more to find the text).
EMAIL_HEADERS = {"Message-ID": "source_record_id", "Date": "observed_at", "From": "email"}
NAME_ORDERS = {SURNAME_FIRST, GIVEN_FIRST}


def check_row(channel: str, field: str, row: dict[str, str], staged: str | None) -> None:
    staged_names = set(names(row["staged column"])) - NAME_ORDERS
    canonical_names = set(names(row["canonical column"]))
    assert staged_names <= set(STAGED_COLUMNS), \
        f"{channel} {field}: not a staged column: {sorted(staged_names - set(STAGED_COLUMNS))}"
    assert canonical_names <= set(CANONICAL_COLUMNS), \
        f"{channel} {field}: not a canonical column: {sorted(canonical_names - set(CANONICAL_COLUMNS))}"
    if staged is not None:
        assert staged in staged_names, f"{channel} {field}: the reader stages it as {staged}"


@pytest.mark.parametrize("channel", sorted(DECLARED))
def test_each_readers_fields_are_exactly_the_documented_ones(channel):
    declared, staged_of = DECLARED[channel]
    rows = table_with(channel_section(channel), "field")
    documented = [names(row["field"])[0] for row in rows]
    assert len(documented) == len(set(documented)), f"{channel}: a field is documented twice"
    missing, unknown = declared - set(documented), set(documented) - declared
    assert not missing, f"{channel}: fields missing from the docs: {sorted(missing)}"
    assert not unknown, f"{channel}: fields the reader does not know: {sorted(unknown)}"
    for field, row in zip(documented, rows):
        check_row(channel, field, row, staged_of.get(field))


def test_the_mailbox_headers_and_labels_are_exactly_the_documented_ones():
    body = channel_section("email")
    headers = table_with(body, "field")
    documented = {names(row["field"])[0]: row for row in headers}
    assert set(documented) == set(EMAIL_HEADERS)
    for header, row in documented.items():
        assert header.lower() in email._WANTED_HEADERS
        check_row("email", header, row, EMAIL_HEADERS[header])

    labels = table_with(body, "Finnish label")
    seen: dict[str, dict[str, str]] = {}
    for row in labels:
        for language in ("Finnish label", "Swedish label"):
            label = names(row[language])[0]
            assert label.lower() not in seen, f"email: label {label!r} documented twice"
            seen[label.lower()] = row
    assert set(seen) == set(email.LABELS), \
        f"email labels: documented {sorted(set(seen) ^ set(email.LABELS))} differ from the reader's"
    for label, row in seen.items():
        staged = email.LABELS[label]
        check_row("email", label, row, "marketing_prohibited" if staged == "marketing" else staged)


def test_every_channel_has_a_section_and_its_file_name():
    text = INTAKE.read_text(encoding="utf-8")
    for channel in CHANNELS:
        channel_section(channel)
        assert f"`{channel}_YYYYMMDD.{FILE_EXTENSIONS[channel]}`" in text, f"{channel}: file name not documented"


def test_the_normalisers_table_covers_every_staged_and_canonical_column():
    shared = sections(INTAKE.read_text(encoding="utf-8"))["What every channel shares"]
    rows = table_with(shared, "staged column")
    staged = {name for row in rows for name in names(row["staged column"])}
    canonical = {name for row in rows for name in names(row["canonical column(s)"])}
    assert staged <= set(STAGED_COLUMNS), sorted(staged - set(STAGED_COLUMNS))
    assert canonical <= set(CANONICAL_COLUMNS), sorted(canonical - set(CANONICAL_COLUMNS))
    written_by_the_pipeline = {"channel", "record_number", "reject_reason"}
    assert not set(STAGED_COLUMNS) - written_by_the_pipeline - staged, \
        f"staged columns not documented: {sorted(set(STAGED_COLUMNS) - written_by_the_pipeline - staged)}"
    assert not set(CANONICAL_COLUMNS) - written_by_the_pipeline - canonical, \
        f"canonical columns not documented: {sorted(set(CANONICAL_COLUMNS) - written_by_the_pipeline - canonical)}"


def test_every_code_named_in_the_contract_is_a_code():
    """A backticked word shaped like a code (`file_empty`, `records_resent`) is one the code defines.

    Flags and reasons are checked against `pipeline.codes`; any other such word (a column,
    a view, an asset check, a function) must occur in the source of pipeline/, schemas/ or
    assets/, so a renamed name cannot live on in the documents.
    """
    codes = {f.value for f in Flag} | {r.value for r in Reason}
    words: set[str] = set()
    for folder in ("pipeline", "schemas", "assets"):
        for source in (ROOT / folder).rglob("*.py"):
            words |= set(re.findall(r"[a-z][a-z0-9_]*", source.read_text(encoding="utf-8")))
    code_shaped = re.compile(r"[a-z]+(?:_[a-z0-9]+)+")
    for path in (INTAKE, RULES):
        for name in _BACKTICKED.findall(prose(path)):
            if code_shaped.fullmatch(name):
                assert name in codes or name in words, \
                    f"{path.name}: `{name}` is no flag, reason or name the code defines"


# --- register_rules.md and the code -------------------------------------------------------------------

def test_the_rules_keep_the_numbers_the_code_cites():
    headings = [h for h in sections(RULES.read_text(encoding="utf-8")) if h.startswith("Rule ")]
    numbers = [int(re.match(r"Rule (\d+):", h).group(1)) for h in headings]
    assert numbers == list(RULE_NUMBERS)
    cited = re.compile(r"register_rules\.md,? rules? (\d+)(?:-(\d+))?"
                       r"|[Rr]ules? (\d+)(?:-(\d+))? of docs/register_rules\.md")
    for path in repository_files():
        if path.suffix not in (".py", ".md"):
            continue
        for match in cited.finditer(path.read_text(encoding="utf-8", errors="replace")):
            first, last = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
            for number in range(int(first), int(last or first) + 1):
                assert number in RULE_NUMBERS, f"{path.relative_to(ROOT)} cites rule {number}, which is not there"


def test_every_module_and_test_the_contract_names_exists():
    for doc in (INTAKE, RULES):
        for name in _BACKTICKED.findall(prose(doc)):
            path, _, test = name.partition("::")
            if not re.fullmatch(r"(pipeline|schemas|assets|tests|bench)/[\w/.]+", path):
                continue
            assert (ROOT / path).exists(), f"{doc.name} names {path}, which does not exist"
            if test:
                source = (ROOT / path).read_text(encoding="utf-8")
                assert re.search(rf"^def {re.escape(test)}\(", source, re.M), \
                    f"{doc.name} names the test {name}, which does not exist"


def test_the_tables_in_brief_are_the_registers():
    rows = table_with(sections(RULES.read_text(encoding="utf-8"))["The tables in brief"], "table or view")
    documented = {name for row in rows for name in names(row["table or view"])}
    assert documented <= set(metadata.tables) | set(ANALYST_VIEWS) | set(MARKETING_VIEWS)
    assert set(ANALYST_VIEWS) | set(MARKETING_VIEWS) <= documented


def test_links_between_the_documents_land_on_a_heading():
    documents = sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]
    anchors = {doc.resolve(): {anchor(h) for h in re.findall(r"^#+ (.+)$", doc.read_text(encoding="utf-8"), re.M)}
               for doc in documents}
    for doc in documents:
        for target, fragment in re.findall(r"\]\(([\w./-]+\.md)(?:#([\w-]+))?\)", doc.read_text(encoding="utf-8")):
            linked = (doc.parent / target).resolve()
            assert linked.exists(), f"{doc.name} links to {target}, which does not exist"
            if fragment and linked in anchors:
                assert fragment in anchors[linked], f"{doc.name} links to {target}#{fragment}: no such heading"


# --- nothing points outside the repository -------------------------------------------------------

# Built from parts so that this file does not name them itself.
OUTSIDE = ("../shared" + "/spec", "shared" + "/spec", "INTAKE" + ".md", "REGISTER" + ".md", "ARCHITECTURE" + ".md")
_SKIPPED_DIRECTORIES = {".git", ".venv", "data", "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache"}


def repository_files() -> list[Path]:
    """The project's files: git's list when there is one, else a walk that skips caches and data."""
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.splitlines()
        return [ROOT / name for name in listed if (ROOT / name).is_file()]
    except (OSError, subprocess.CalledProcessError):
        found = []
        for folder, directories, files in os.walk(ROOT):
            directories[:] = [d for d in directories if d not in _SKIPPED_DIRECTORIES]
            found += [Path(folder) / name for name in files]
        return found


def test_no_file_points_at_the_contract_outside_the_repository():
    offenders = []
    for path in repository_files():
        if path.suffix in (".gz", ".xlsx", ".db", ".png", ".pyc") or path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [f"{path.relative_to(ROOT)}: {needle}" for needle in OUTSIDE if needle in text]
    assert not offenders, "point at docs/intake_formats.md or docs/register_rules.md instead: " + ", ".join(offenders)
