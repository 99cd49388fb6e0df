"""Benchmark: the channel readers on large clean files, and on files that need resynchronising.

    .venv/bin/python bench/reader_speed.py [--web 500000] [--phone 200000] [--mail 100000] [--repeat 3]

Builds the files from a small generated landing zone, its lines repeated to size
(the readers do not care that ids repeat), under a temporary folder, and reports
the best of `--repeat` wall times per case. The damaged cases are the same files
with one broken record near the top: a mail or phone row whose name opens a quote
it never closes (the whole file is then read record by record), and a web line of
binary garbage (only its stretch is read line by line). Prints timings only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _lines(path: Path, separator: bytes) -> tuple[bytes, list[bytes]]:
    """(header, non-empty body lines) of a generated file."""
    lines = [line for line in path.read_bytes().split(separator) if line]
    return lines[0], lines[1:]


def _sized(header: bytes | None, body: list[bytes], rows: int, separator: bytes) -> bytes:
    repeated = (body * (rows // len(body) + 1))[:rows]
    return separator.join(([header] if header is not None else []) + repeated) + separator


def _unclosed_quote(data: bytes, separator: bytes, delimiter: bytes, line: int = 10) -> bytes:
    lines = data.split(separator)
    fields = lines[line].split(delimiter)
    fields[2] = b'"' + fields[2].lstrip(b'"')
    lines[line] = delimiter.join(fields)
    return separator.join(lines)


def _binary_line(data: bytes, line: int = 10) -> bytes:
    lines = data.split(b"\n")
    lines[line] = bytes(range(128, 256))
    return b"\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--web", type=int, default=500_000)
    parser.add_argument("--phone", type=int, default=200_000)
    parser.add_argument("--mail", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from pipeline.channels import mail, phone, web
    from synth import generate

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        generate(folder / "zone", records=3000, days=1, seed=4, bad_input=False)
        landing = folder / "zone" / "landing"

        def biggest(channel: str) -> Path:
            return max((landing / channel).iterdir(), key=lambda p: p.stat().st_size)

        _, web_body = _lines(biggest("web"), b"\n")
        phone_header, phone_body = _lines(biggest("phone"), b"\r\n")
        mail_header, mail_body = _lines(biggest("mail"), b"\r\n")
        web_data = _sized(None, web_body, args.web, b"\n")
        phone_data = _sized(phone_header, phone_body, args.phone, b"\r\n")
        mail_data = b"\xef\xbb\xbf" + _sized(mail_header.removeprefix(b"\xef\xbb\xbf"), mail_body, args.mail, b"\r\n")
        cases = [
            (f"web, {args.web:,} clean lines", web, "web_20261124.jsonl", web_data),
            (f"web, {args.web:,} lines, one of binary garbage", web, "web_20261124.jsonl", _binary_line(web_data)),
            (f"phone, {args.phone:,} clean rows", phone, "phone_20261124.csv", phone_data),
            (f"phone, {args.phone:,} rows, one unclosed quote", phone, "phone_20261124.csv",
             _unclosed_quote(phone_data, b"\r\n", b";")),
            (f"mail, {args.mail:,} clean rows", mail, "mail_20261124.csv", mail_data),
            (f"mail, {args.mail:,} rows, one unclosed quote", mail, "mail_20261124.csv",
             _unclosed_quote(mail_data, b"\r\n", b",")),
        ]
        for label, reader, name, data in cases:
            path = folder / name
            path.write_bytes(data)
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                try:
                    result = reader.read(path)
                    outcome = f"{len(result.records):,} records, {len(result.errors):,} read errors"
                except Exception as error:  # the code before issue 9, for a baseline: the reason only
                    outcome = f"whole file refused: {getattr(error, 'reason', type(error).__name__)}"
                times.append(time.perf_counter() - started)
            print(f"{label:<48} {min(times):6.2f} s  ({outcome})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
