"""`register-synth`: write a synthetic landing zone and its ground truth.

    register-synth --out DIR [--people N | --records N] [--days D] [--seed S]
                   [--start YYYY-MM-DD] [--noise X] [--noise-profile {default,varied}]
                   [--spellings {default,varied}]
                   [--no-bad-input] [--force]

Prints counts per channel and the files written; never a personal value.
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import sys
from pathlib import Path

from synth.landing_zone import DEFAULT_RECORDS, GROUND_TRUTH_FILE, NOISE_PROFILES, generate
from synth.spellings import SPELLINGS


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="register-synth", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="directory to write landing/ and the ground truth into")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--people", type=_positive, help="number of people (each sends one or more records)")
    size.add_argument("--records", type=_positive, help=f"number of intended records (default {DEFAULT_RECORDS})")
    p.add_argument("--days", type=_positive, default=7, help="number of export days (default 7)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--start", type=datetime.date.fromisoformat, default=datetime.date(2026, 11, 1),
                   help="first export day (default 2026-11-01)")
    p.add_argument("--noise", type=float, default=1.0, help="scale of the typing noise (default 1.0; 0 = clean)")
    p.add_argument("--noise-profile", choices=NOISE_PROFILES, default="default",
                   help="the kinds and rates of noise: default, or varied (generator/synth/varied.py: "
                        "written apart from the matcher, harder)")
    p.add_argument("--spellings", choices=SPELLINGS, default="default",
                   help="default, or varied: a share of the values written in other spellings with the same "
                        "meaning (generator/synth/spellings.py), for the normalisers' speed on real formats")
    p.add_argument("--no-bad-input", dest="bad_input", action="store_false",
                   help="no malformed records, missing ids or unreadable files")
    p.add_argument("--force", action="store_true",
                   help="remove an earlier landing/ and ground truth in --out first")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.force:
        shutil.rmtree(args.out / "landing", ignore_errors=True)
        (args.out / GROUND_TRUTH_FILE).unlink(missing_ok=True)
    try:
        summary = generate(args.out, people=args.people, records=args.records, days=args.days, seed=args.seed,
                           start=args.start, noise=args.noise, bad_input=args.bad_input,
                           noise_profile=args.noise_profile, spellings=args.spellings)
    except (ValueError, FileExistsError) as error:
        print(f"register-synth: {error}", file=sys.stderr)
        return 2
    print("\n".join(summary.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
