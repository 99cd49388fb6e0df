"""The `register` command line for operators (stewards' and analysts' tasks come later).

    register migrate      bring the register schema to the latest migration
    register summary      counts per channel and file, quarantine by reason (no personal values)
"""

from __future__ import annotations

import argparse
import sys

from sqlalchemy import text

from pipeline.register.database import database_url, make_engine, migrate


def _summary(engine) -> str:
    lines: list[str] = []
    with engine.connect() as conn:
        files = conn.execute(text(
            "SELECT channel, COUNT(*), SUM(records_read), SUM(records_accepted), SUM(records_resent), "
            "SUM(records_quarantined), SUM(CASE WHEN status = 'quarantined' THEN 1 ELSE 0 END) "
            "FROM intake_file GROUP BY channel ORDER BY channel")).all()
        lines.append(f"{'channel':<10} {'files':>6} {'read':>9} {'accepted':>9} {'re-sent':>8} "
                     f"{'quarantined':>11} {'bad files':>9}")
        totals = [0] * 6
        for channel, *counts in files:
            counts = [int(c or 0) for c in counts]
            totals = [a + b for a, b in zip(totals, counts)]
            lines.append(f"{channel:<10} {counts[0]:>6} {counts[1]:>9} {counts[2]:>9} {counts[3]:>8} "
                         f"{counts[4]:>11} {counts[5]:>9}")
        lines.append(f"{'total':<10} {totals[0]:>6} {totals[1]:>9} {totals[2]:>9} {totals[3]:>8} "
                     f"{totals[4]:>11} {totals[5]:>9}")
        held = conn.execute(text("SELECT COUNT(*) FROM source_record")).scalar_one()
        lines.append(f"source records held: {held}")
        reasons = conn.execute(text("SELECT reasons, COUNT(*) FROM quarantine GROUP BY reasons "
                                    "ORDER BY COUNT(*) DESC")).all()
        if reasons:
            lines.append("quarantine by reason: " + ", ".join(f"{r} {n}" for r, n in reasons))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="register", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None,
                        help="defaults to $REGISTER_DATABASE_URL, else the project's SQLite file")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="bring the schema to the latest migration")
    commands.add_parser("summary", help="counts per channel, quarantine by reason")
    args = parser.parse_args(argv)

    engine = make_engine(args.database_url or database_url())
    if args.command == "migrate":
        migrate(engine)
        print("register schema is at the latest migration")
    elif args.command == "summary":
        migrate(engine)
        print(_summary(engine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
