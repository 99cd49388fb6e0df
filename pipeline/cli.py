"""The `register` command line for operators and data stewards.

    register migrate                          bring the register schema to the latest migration
    register summary                          counts per channel, quarantine by reason (no personal values)
    register review list [--status open]      the review queue: potential matches to decide
    register review show ID [--unmask]        one item with its evidence (values masked unless asked)
    register review accept ID --by NAME       the two records are one person: merge
    register review reject ID --by NAME       never the same person: keep apart, never propose again
    register explain (--customer ID | --record CHANNEL:ID) [--unmask] [--json]
                                              why each record sits in its customer: the same code, a
                                              steward's decision, or the match weights field by field
    register model train [--out-dir DIR] [--seed N]
                                              estimate a new match model from the register's own records
                                              (a new versioned file and a report; never the current model)
    register quarantine list [--reason CODE] [--include-resolved]
                                              open entries: records and files that could not be accepted
                                              (resolved ones: accepted later from a complete copy)
    register quarantine show ID [--unmask]    one entry with its raw values (masked unless asked)
    register subject access (--customer-id N | --personal-id CODE) [--format json|report] [--out FILE]
                                              everything held on one person, in the clear (rule 8)
    register subject rectify --customer-id N --attribute A --value V --reason R
                                              correct one value (golden record and its source record)
    register subject erase (--customer-id N | --personal-id CODE) --reason R [--dry-run]
                                              erase what no law requires keeping

A personal identity code or a value given as "-" is read from standard input, so
that it stays out of the shell history and the process list. Rights requests are
recorded with the steward's name and counts, never the values.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
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
        reasons = conn.execute(text("SELECT reasons, COUNT(*) FROM quarantine WHERE resolved_at IS NULL "
                                    "GROUP BY reasons ORDER BY COUNT(*) DESC, reasons")).all()
        if reasons:
            lines.append("open quarantine by reason: " + ", ".join(f"{r} {n}" for r, n in reasons))
        resolved = conn.execute(text("SELECT COUNT(*) FROM quarantine WHERE resolved_at IS NOT NULL")).scalar_one()
        versions = conn.execute(text("SELECT COUNT(*) FROM source_record_version")).scalar_one()
        lines.append(f"quarantine entries resolved (accepted later): {resolved}; "
                     f"earlier versions of records kept: {versions}")
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

    explain = commands.add_parser("explain", help="why each record sits in its customer")
    which = explain.add_mutually_exclusive_group(required=True)
    which.add_argument("--customer", type=int, help="a customer id (a merged id resolves to its survivor)")
    which.add_argument("--record", help="one record, as CHANNEL:ID")
    explain.add_argument("--unmask", action="store_true", help="show the values themselves")
    explain.add_argument("--json", action="store_true", help="the explanation as JSON")

    model = commands.add_parser("model", help="the match model").add_subparsers(dest="action", required=True)
    retrain = model.add_parser("train", help="estimate a new model from the register's records (unsupervised)")
    retrain.add_argument("--out-dir", default="data/models",
                         help="where the new model-<version>.json and its report go (default data/models)")
    retrain.add_argument("--seed", type=int, default=0, help="seed of the random pairs for u (default 0)")
    retrain.add_argument("--u-max-pairs", type=float, default=None, help="random pairs for u (default 1e7)")
    retrain.add_argument("--link-threshold", type=float, default=None, help="the link threshold in use")
    retrain.add_argument("--review-threshold", type=float, default=None, help="the review threshold in use")

    held = commands.add_parser("quarantine", help="the quarantine").add_subparsers(dest="action", required=True)
    qlist = held.add_parser("list")
    qlist.add_argument("--reason", default=None, choices=[r.value for r in Reason])
    qlist.add_argument("--limit", type=int, default=50)
    qlist.add_argument("--include-resolved", action="store_true",
                       help="also entries whose record was accepted later (resolved)")
    qshow = held.add_parser("show")
    qshow.add_argument("quarantine_id", type=int)
    qshow.add_argument("--unmask", action="store_true")
    _subject_parsers(commands)
    args = parser.parse_args(argv)

    engine = make_engine(args.database_url or database_url())
    try:
        return _run(args, engine)
    finally:
        engine.dispose()


def _subject_parsers(commands) -> None:
    subject = commands.add_parser("subject", help="people's rights: access, rectification, erasure") \
        .add_subparsers(dest="action", required=True)
    access = subject.add_parser("access", help="everything held on one person")
    _who(access)
    access.add_argument("--format", default="json", choices=["json", "report"],
                        help="json (machine-readable) or report (for the person to read)")
    access.add_argument("--out", default=None, help="write to this new file (mode 0600) instead of stdout")
    access.add_argument("--reason", default=None, help="the request's reference (never a personal value)")
    access.add_argument("--by", default=None, help="the steward's name (default: the login name)")
    rectify = subject.add_parser("rectify", help="correct one value of a customer")
    rectify.add_argument("--customer-id", type=int, required=True)
    rectify.add_argument("--attribute", required=True,
                         help="first_names, last_name, street_address, postal_code, city, phone, email, iban "
                              "(the BIC follows), birth_date or marketing_prohibited (yes/no)")
    rectify.add_argument("--value", required=True, help='the correct value ("-": read from standard input)')
    rectify.add_argument("--reason", required=True, help="why (recorded; never the value itself)")
    rectify.add_argument("--by", default=None, help="the steward's name (default: the login name)")
    erase = subject.add_parser("erase", help="erase what no law requires keeping")
    _who(erase)
    erase.add_argument("--reason", required=True, help="why (recorded; never a personal value)")
    erase.add_argument("--by", default=None, help="the steward's name (default: the login name)")
    erase.add_argument("--dry-run", action="store_true", help="count what would be erased, change nothing")


def _who(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer-id", type=int, help="a customer id (a merged id resolves to its survivor)")
    who.add_argument("--personal-id", help='the personal identity code ("-": read from standard input)')


def _from_stdin(value: str | None) -> str | None:
    return sys.stdin.readline().strip() if value == "-" else value


def _new_private_file(path: str):
    """`path` created for writing, readable by its owner only; an existing file is never overwritten."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8")


def _subject(args, engine) -> int:
    from pipeline.register import rights

    by = args.by or getpass.getuser()
    if args.action == "access":
        try:  # the file first: a request is recorded only when its answer can be delivered
            out = _new_private_file(args.out) if args.out else sys.stdout
        except FileExistsError:
            print("register: the output file exists already: give a new file name", file=sys.stderr)
            return 2
        try:
            access = rights.subject_access(engine, customer_id=args.customer_id,
                                           personal_id=_from_stdin(args.personal_id), by=by, reason=args.reason)
        except BaseException:
            if args.out:
                out.close()
                os.unlink(args.out)
            raise
        out.write(json.dumps(access, indent=2, ensure_ascii=False) + "\n" if args.format == "json"
                  else rights.render_report(access))
        if args.out:
            out.close()
            counts = access["request"]["counts"]
            print(f"subject access written to {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return 0
    if args.action == "rectify":
        done = rights.rectify(engine, args.customer_id, args.attribute, _from_stdin(args.value),
                              reason=args.reason, by=by)
        print(f"customer {done.customer_id}: {done.attribute} rectified on the golden record and "
              f"{done.source_records_updated} source record(s); request {done.request_id}")
        return 0
    done = rights.erase(engine, customer_id=args.customer_id, personal_id=_from_stdin(args.personal_id),
                        reason=args.reason, by=by, dry_run=args.dry_run)
    prefix = "dry run, nothing changed: would erase" if args.dry_run else "erased"
    if not done.customer_ids:
        print(f"{prefix}: no customer holds the code; quarantine entries purged: {done.purged['quarantine']}")
    for customer_id, kind in done.kinds.items():
        what = ("everything (no contract)" if kind == "prospect"
                else "all but the billing identity and services (a contract)")
        print(f"{prefix} customer {customer_id}: {what}")
    print("deleted: " + ", ".join(f"{k} {v}" for k, v in sorted(done.deleted.items()) if v) + "; "
          f"quarantine entries purged: {done.purged['quarantine']}; "
          f"tombstones left (a re-send stays erased): {done.tombstones}; kept: "
          + ", ".join(f"{k} {v}" for k, v in sorted(done.kept.items()) if v))
    return 0


def _explanation_lines(found) -> list[str]:
    """An explanation (pipeline.register.explain) as lines of text for the steward."""
    lines = [f"customer {found.customer_id} (asked: {found.asked}; match model {found.model_version})"]
    for merge in found.merges:
        who = f"steward {merge['decided_by']}" if merge["decided_by"] else "automatic"
        lines.append(f"  customer {merge['merged_customer_id']} was merged into {merge['surviving_customer_id']} "
                     f"on {merge['merged_at']} ({merge['reason']}; {who})")
    for item in found.records:
        head = f"record {item.record}, observed {item.observed_at}: {item.because}"
        if item.method == "personal_id":
            head += (f" (held by {item.same_code_records} other record(s) of this customer)" if item.same_code_records
                     else " (the customer's code; no other record of it holds the code)")
        elif item.method == "probabilistic" and item.stored_probability is not None:
            head += f" (linked at probability {item.stored_probability:.4f})"
        lines.append(head)
        for decision in item.decisions:
            lines.append(f"  review {decision.review_id} with {decision.other}: {decision.status} by "
                         f"{decision.decided_by} on {decision.decided_at}")
        if item.strongest is not None:
            pair = item.strongest
            lines.append(f"  against {pair.other}: prior {pair.prior:+.1f}")
            lines.extend(f"    {weight.words()}" for weight in pair.fields)
            lines.append(f"    total {pair.match_weight:+.1f} (probability {pair.probability:.4f})")
        lines.append("  values: " + ", ".join(f"{k} {v}" for k, v in item.values.items() if v is not None
                                               and k not in ("channel", "source_record_id", "observed_at")))
    for review in found.open_reviews:
        lines.append(f"open review {review['review_id']} ({review['reason']}, probability {review['probability']}) "
                     f"with customer {review['other_customer_id']}")
        lines.extend(f"    {words}" for words in review["fields"])
    if found.held_from_marketing:
        lines.append("held back from direct marketing under doubt until a steward decides: "
                     + ", ".join(found.held_from_marketing))
    return lines


def _explain(args, engine) -> int:
    from pipeline.register import explain

    with engine.connect() as connection:
        if args.record:
            found = explain.explain_record(connection, args.record, unmask=args.unmask)
        else:
            found = explain.explain_customer(connection, args.customer, unmask=args.unmask)
    if args.json:
        print(json.dumps(found.as_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        print("\n".join(_explanation_lines(found)))
    return 0


def _retrain(args, engine) -> int:
    from pipeline.matching import retrain
    from pipeline.matching.settings import MatchSettings

    defaults = MatchSettings()
    options = {"seed": args.seed, "link_threshold": args.link_threshold or defaults.link_threshold,
               "review_threshold": args.review_threshold or defaults.review_threshold}
    if args.u_max_pairs:
        options["u_max_pairs"] = args.u_max_pairs
    done = retrain.retrain_from_register(engine, args.out_dir, **options)
    print(done.report.markdown(), end="")
    state = "already present, not overwritten" if done.already_present else "written"
    print(f"\nnew model {done.report.new_version}: {done.model_path} ({state}); report: {done.report_path}")
    print("the current model is unchanged; to adopt the new one, put it in place of pipeline/matching/model.json")
    return 0


def _run(args, engine) -> int:
    if args.command == "migrate":
        migrate(engine)
        print("register schema is at the latest migration")
        return 0
    if args.command == "summary":
        print(_summary(engine))
        return 0
    if args.command == "model":
        return _retrain(args, engine)

    from pipeline.register import steward

    try:
        if args.command == "subject":
            return _subject(args, engine)
        if args.command == "explain":
            return _explain(args, engine)
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
                out = steward.list_quarantine(connection, args.reason, args.limit,
                                              include_resolved=args.include_resolved)
            else:
                out = steward.show_quarantine(connection, args.quarantine_id, unmask=args.unmask)
    except steward.StewardError as error:
        print(f"register: {error}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
