"""Benchmark: python-calamine against openpyxl (read-only) on an in_person workbook.

Generates a workbook of the service desk's layout (sheet Asioinnit, docs/intake_formats.md
header, synthetic values only) and reads it with each reader in a fresh
process, so that each reader's peak memory (max RSS, which also counts memory
allocated in Rust) is its own. Prints wall and CPU seconds, rows/s (wall) and
peak memory per reader (the best of --repeat runs; "added" is the peak above
the process's RSS after its imports); the
line `in_person.read` is the whole channel reader (calamine plus conversion
to the staged frame).

    .venv/bin/python bench/xlsx_readers.py               # 100,000 rows
    .venv/bin/python bench/xlsx_readers.py --rows 20000 --workbook /tmp/ip.xlsx
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import pathlib
import random
import resource
import subprocess
import sys
import tempfile
import time

HEADER = ["Asiointi", "Päivämäärä", "Etunimet", "Sukunimi", "Henkilötunnus", "Lähiosoite", "Postinumero",
          "Postitoimipaikka", "Puhelin", "Sähköposti", "Tilinumero", "Tuote", "Käyttöpaikka",
          "Suoramarkkinointikielto", "Henkilöllisyys tarkistettu"]
# Invented name parts: synthetic people only.
FIRST = ["Testi", "Koe", "Malli", "Esi", "Demo", "Äijö", "Åke-Test", "Öljy"]
LAST = ["Testinen", "Kokeilija", "Mallikas", "Esimerkki", "Demonen", "Östöö"]
STREETS = ["Testitie", "Koekatu", "Mallipolku", "Esimerkkikuja"]
CITIES = [("00100", "HELSINKI"), ("49400", "Hamina"), ("20100", "Turku"), ("01300", "Vantaa")]
PRODUCTS = ["Sähkö", "Maakaasu", "Kaukolämpö", "Laajakaista", "TV"]
HETU_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
READERS = ("calamine", "openpyxl", "in_person.read")
ASCII_MAIL = str.maketrans("äöå", "aoa")


def synthetic_row(rng: random.Random, number: int, day: dt.date) -> list[object]:
    """One service-desk row with computed (synthetic, well-formed) codes."""
    born = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(25_000))
    individual = rng.randrange(2, 899)
    stem = f"{born:%d%m%y}{individual:03d}"
    personal_id = f"{born:%d%m%y}{'-' if born.year < 2000 else 'A'}{individual:03d}{HETU_CHECK[int(stem) % 31]}"
    bban = f"{rng.randrange(10**13, 10**14)}"
    iban = f"FI{98 - int(bban + '151800') % 97:02d}{bban}"
    gsrn = f"643{rng.randrange(10**14):014d}"
    weights = [3 if i % 2 == 0 else 1 for i in range(17)]
    gsrn += str(-sum(int(d) * w for d, w in zip(gsrn, weights)) % 10)
    postal_code, city = rng.choice(CITIES)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return [
        f"A-{day:%Y%m%d}-{number:06d}",
        day if number % 5 else dt.datetime.combine(day, dt.time(9 + number % 8, number % 60)),
        f"{first} {rng.choice(FIRST)}", last, personal_id,
        f"{rng.choice(STREETS)} {rng.randrange(1, 90)} B {rng.randrange(1, 40)}",
        int(postal_code) if number % 3 == 0 else postal_code,  # a number loses its leading zeros
        city, f"040 {rng.randrange(10**6, 10**7)}",
        f"{first}.{last}{number}@example.invalid".lower().translate(ASCII_MAIL),
        iban, rng.choice(PRODUCTS), gsrn,
        rng.choice(["Kyllä", "Ei", "", True, False]), rng.choice(["Kyllä", "Ei", True, False]),
    ]


def generate_workbook(path: pathlib.Path, rows: int, seed: int = 20261124) -> None:
    """Write a workbook of `rows` records with openpyxl's write-only mode."""
    from openpyxl import Workbook

    rng = random.Random(seed)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Asioinnit")
    sheet.append(HEADER)
    day = dt.date(2026, 11, 24)
    for number in range(1, rows + 1):
        sheet.append(synthetic_row(rng, number, day))
    workbook.save(path)


def read_with(reader: str, path: pathlib.Path) -> int:
    """Read every row with one reader; the number of data rows."""
    if reader == "calamine":
        import python_calamine

        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
        return len(workbook.get_sheet_by_name("Asioinnit").to_python(skip_empty_area=False)) - 1
    if reader == "openpyxl":
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True, data_only=True)
        rows = list(workbook["Asioinnit"].iter_rows(values_only=True))
        workbook.close()
        return len(rows) - 1
    if reader == "in_person.read":
        from pipeline.channels import in_person

        return len(in_person.read(path).records)
    raise ValueError(f"unknown reader {reader}")


def measure(reader: str, path: pathlib.Path) -> dict[str, float]:
    """Run in a fresh process: time and peak memory of one reader."""
    import python_calamine  # noqa: F401  imports counted in the baseline, not the read
    import openpyxl  # noqa: F401
    import pipeline.channels.in_person  # noqa: F401

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started, cpu_started = time.perf_counter(), time.process_time()
    rows = read_with(reader, path)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"rows": rows, "seconds": seconds, "cpu_seconds": cpu_seconds,
            "peak_mib": peak / 1024, "added_mib": (peak - baseline) / 1024}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workbook", type=pathlib.Path, help="reuse (or create) this workbook")
    parser.add_argument("--repeat", type=int, default=3, help="runs per reader; the best is shown")
    parser.add_argument("--measure", choices=READERS, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.workbook)))
        return

    with tempfile.TemporaryDirectory() as scratch:
        path = args.workbook or pathlib.Path(scratch) / "in_person_20261124.xlsx"
        if not path.exists():
            started = time.perf_counter()
            generate_workbook(path, args.rows)
            print(f"generated {args.rows:,} rows in {time.perf_counter() - started:.1f} s "
                  f"({path.stat().st_size / 2**20:.1f} MiB)")
        print(f"{'reader':<16}{'rows':>9}{'seconds':>9}{'cpu s':>7}{'rows/s':>10}{'peak MiB':>10}{'added MiB':>11}")
        for reader in READERS:
            runs = [json.loads(subprocess.run(
                [sys.executable, __file__, "--measure", reader, "--workbook", str(path)],
                check=True, capture_output=True, text=True).stdout) for _ in range(args.repeat)]
            best = min(runs, key=lambda run: run["seconds"])
            print(f"{reader:<16}{best['rows']:>9,}{best['seconds']:>9.2f}{best['cpu_seconds']:>7.2f}"
                  f"{best['rows'] / best['seconds']:>10,.0f}"
                  f"{max(r['peak_mib'] for r in runs):>10.0f}{max(r['added_mib'] for r in runs):>11.0f}")


if __name__ == "__main__":
    main()
