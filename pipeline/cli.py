"""The `register` command line for operators and data stewards.

    register migrate                          bring the register schema to the latest migration
    register summary                          counts per channel, quarantine by reason (no personal values)
    register review list [--status open]      the review queue: potential matches to decide
    register review show ID [--unmask]        one item with its evidence (values masked unless asked)
    register review accept ID --by NAME       the two records are one person: merge
    register review reject ID --by NAME       never the same person: keep apart, never propose again
    register quarantine list [--reason CODE]  records and files that could not be accepted
    register quarantine show ID [--unmask]    one entry with its raw values (masked unless asked)
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from sqlalchemy import text

from pipeline.codes import Reason
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
        customers = conn.execute(text("SELECT COUNT(*) FROM customer WHERE merged_into IS NULL")).scalar_one()
        merged = conn.execute(text("SELECT COUNT(*) FROM customer_merge")).scalar_one()
        open_reviews = conn.execute(text("SELECT COUNT(*) FROM review_queue WHERE status = 'open'")).scalar_one()
        lines.append(f"customers: {customers} (merges so far: {merged}); open reviews: {open_reviews}")
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

    review = commands.add_parser("review", help="the review queue").add_subparsers(dest="action", required=True)
    listing = review.add_parser("list")
    listing.add_argument("--status", default="open", choices=["open", "accepted", "rejected"])
    listing.add_argument("--limit", type=int, default=50)
    show = review.add_parser("show")
    show.add_argument("review_id", type=int)
    show.add_argument("--unmask", action="store_true", help="show the values themselves")
    for verb in ("accept", "reject"):
        decide = review.add_parser(verb)
        decide.add_argument("review_id", type=int)
        decide.add_argument("--by", default=None, help="the steward's name (default: the login name)")

    held = commands.add_parser("quarantine", help="the quarantine").add_subparsers(dest="action", required=True)
    qlist = held.add_parser("list")
    qlist.add_argument("--reason", default=None, choices=[r.value for r in Reason])
    qlist.add_argument("--limit", type=int, default=50)
    qshow = held.add_parser("show")
    qshow.add_argument("quarantine_id", type=int)
    qshow.add_argument("--unmask", action="store_true")
    args = parser.parse_args(argv)

    engine = make_engine(args.database_url or database_url())
    if args.command == "migrate":
        migrate(engine)
        print("register schema is at the latest migration")
        return 0
    if args.command == "summary":
        print(_summary(engine))
        return 0

    from pipeline.register import steward

    try:
        if args.command == "review" and args.action in ("accept", "reject"):
            decision = steward.decide_review(engine, args.review_id, accept=args.action == "accept",
                                             by=args.by or getpass.getuser())
            print(f"review {decision.review_id} {decision.status}; "
                  f"{decision.resolution.merges} merge(s), {decision.resolution.affected_records} records re-resolved")
            return 0
        with engine.connect() as connection:
            if args.command == "review" and args.action == "list":
                out = steward.list_reviews(connection, args.status, args.limit)
            elif args.command == "review":
                out = steward.show_review(connection, args.review_id, unmask=args.unmask)
            elif args.action == "list":
                out = steward.list_quarantine(connection, args.reason, args.limit)
            else:
                out = steward.show_quarantine(connection, args.quarantine_id, unmask=args.unmask)
    except steward.StewardError as error:
        print(f"register: {error}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
