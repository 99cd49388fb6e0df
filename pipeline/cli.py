"""The `register` command line for operators and data stewards.

    register migrate                          bring the register schema to the latest migration
    register summary                          counts per channel, quarantine by reason (no personal values)
    register review list [--status open|deferred|accepted|rejected] [--limit N] [--offset N | --page N] [--json]
                                              the review queue: potential matches to decide
    register review show ID [--unmask] [--json]
                                              one item with its evidence (values masked unless asked)
    register review accept ID --by NAME       the two records are one person: merge
    register review reject ID --by NAME       never the same person: keep apart, never propose again
    register explain (--customer ID | --record CHANNEL:ID) [--unmask] [--json]
                                              why each record sits in its customer: the same code, a
                                              steward's decision, or the match weights field by field
    register model train [--out-dir DIR] [--seed N]
                                              estimate a new match model from the register's own records
                                              (a new versioned file and a report; never the current model)
    register quarantine list [--reason CODE] [--include-resolved] [--limit N] [--offset N | --page N] [--json]
                                              open entries and the file each came in: records and files that
                                              could not be accepted (resolved ones: accepted later from a
                                              complete copy)
    register quarantine show ID [--unmask] [--json]
                                              one entry, its file and its raw values (masked unless asked)
    register disclosures list [--limit N] [--offset N | --page N] [--json]
                                              the disclosure log: extracts, subject accesses and erasure
                                              reports given out, newest first (no personal values)
    register disclosures show ID [--json]     one disclosure: recipient, purpose, legal basis, products,
                                              rows and file checksums
    register subject access (--customer-id N | --personal-id CODE) [--format json|report] [--out FILE]
                                              everything held on one person, in the clear (rule 8)
    register subject rectify --customer-id N --attribute A --value V --reason R
                                              correct one value (golden record and its source record)
    register subject erase (--customer-id N | --personal-id CODE) --reason R [--dry-run | --yes]
                                              erase what no law requires keeping (asks first on a terminal)
    register user add NAME --role steward|analyst|admin
                                              a personal account of the web workbench (password from stdin)
    register user disable NAME | register user list
    register access-log [--customer ID] [--user NAME] [--limit N] [--offset N | --page N] [--json]
                                              who looked at whom: the access log, newest first
    register web [--host H] [--port P] [--certfile F --keyfile F]
                                              the stewards' workbench in the browser
    register describe --lang fi|sv|en [--format md|html] [--out FILE] [--config FILE]
                                              the privacy notice and the article-30 record, generated from
                                              the schema, the data dictionary and the settings

Lists and single items print as aligned text; --json gives the same as JSON. Lists show
50 at a time and say which part of how many they show ("showing 1-50 of 60").

A personal identity code or a value given as "-" is read from standard input, so
that it stays out of the shell history and the process list. Rights requests are
recorded with the steward's name and counts, never the values.

Exit status: 0 done; 1 an erasure not confirmed; 2 a request refused (wrong arguments,
no such item, a decision already made); 3 no register database (missing, unreachable,
or not migrated).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from pipeline import cli_render as render
from pipeline.codes import Reason
from pipeline.register.database import database_url, make_engine, migrate, normalise_url
from pipeline.register.steward import REVIEW_LIST_STATUSES, StewardError

NOT_CONFIRMED, REFUSED, NO_DATABASE = 1, 2, 3
CONNECT_TIMEOUT_SECONDS = 10


class CommandError(Exception):
    """A one-line reason the command cannot run (no personal value, no password), and its exit status."""

    def __init__(self, message: str, status: int = REFUSED):
        super().__init__(message)
        self.status = status


# --- the parser -----------------------------------------------------------------------------------

def _command(commands, name: str, help_text: str, description: str | None = None) -> argparse.ArgumentParser:
    """A subcommand with its one-line help (in its parent's list) and its description (in its own --help)."""
    return commands.add_parser(name, help=help_text, description=description or help_text[:1].upper() + help_text[1:])


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=_positive, default=50, help="how many to show (default 50)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--offset", type=_non_negative, default=None, help="skip this many first (default 0)")
    where.add_argument("--page", type=_positive, default=None, help="the Nth page of --limit entries (1 = first)")
    parser.add_argument("--json", action="store_true", help="JSON: {total, offset, limit, items}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="register", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None,
                        help="defaults to $REGISTER_DATABASE_URL, else the project's SQLite file")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _command(commands, "migrate", "bring the schema to the latest migration (creates a new SQLite file)",
             "Bring the register's schema to the latest migration. The only command that creates a "
             "new SQLite file; run it as the role that owns the schema.")
    _command(commands, "summary", "counts per channel, quarantine by reason",
             "Counts per channel (files, records read, accepted, re-sent, quarantined), customers, "
             "merges, open reviews, open quarantine by reason. No personal values.")

    review = _command(commands, "review", "the review queue: potential matches a steward decides",
                      "The review queue: pairs of records the matcher could not decide. "
                      "List them, look at one, accept (one person) or reject (two people).")
    reviews = review.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = _command(reviews, "list", "reviews, most likely matches first (a table; --json)",
                       "Reviews with a status (default open), most likely matches first, with the "
                       "customers they concern and whether they hold someone back from marketing.")
    listing.add_argument("--status", default="open", choices=list(REVIEW_LIST_STATUSES),
                         help="which reviews (default open, deferred ones included; deferred: those only; "
                              "withdrawn: those a later load no longer proposes)")
    _paging(listing)
    show = _command(reviews, "show", "one review: its evidence and both records, values masked",
                    "One review: the matcher's comparisons and the two records side by side, values "
                    "masked unless --unmask.")
    show.add_argument("review_id", type=int, help="the review's id (from review list)")
    show.add_argument("--unmask", action="store_true", help="show the values themselves (written to the access log)")
    show.add_argument("--as", dest="acting_as", default=None, help="the user the access log names (default: login name)")
    show.add_argument("--json", action="store_true", help="the review as JSON")
    for verb, words in (("accept", "the two records are one person: merge them (the older id survives)"),
                        ("reject", "the two records are two people: keep them apart, never propose them again")):
        decide = _command(reviews, verb, words)
        decide.add_argument("review_id", type=int, help="the review's id (from review list)")
        decide.add_argument("--by", default=None, help="the steward's name (default: the login name)")

    explain = _command(commands, "explain", "why each record sits in its customer",
                       "Why each record sits in its customer: the same identity code, a steward's decision, "
                       "or the match weights field by field. Values masked unless --unmask.")
    which = explain.add_mutually_exclusive_group(required=True)
    which.add_argument("--customer", type=int, help="a customer id (a merged id resolves to its survivor)")
    which.add_argument("--record", help="one record, as CHANNEL:ID")
    explain.add_argument("--unmask", action="store_true", help="show the values themselves (written to the access log)")
    explain.add_argument("--as", dest="acting_as", default=None,
                         help="the user the access log names (default: login name)")
    explain.add_argument("--json", action="store_true", help="the explanation as JSON")

    model = _command(commands, "model", "the match model", "The match model: retrain it from the register.")
    models = model.add_subparsers(dest="action", required=True, metavar="ACTION")
    retrain = _command(models, "train", "estimate a new model from the register's records (unsupervised)",
                       "Estimate a new match model from the register's own records and write it with a "
                       "report beside the current one; the current model is never overwritten.")
    retrain.add_argument("--out-dir", default="data/models",
                         help="where the new model-<version>.json and its report go (default data/models)")
    retrain.add_argument("--seed", type=int, default=0, help="seed of the random pairs for u (default 0)")
    retrain.add_argument("--u-max-pairs", type=float, default=None, help="random pairs for u (default 1e7)")
    retrain.add_argument("--link-threshold", type=float, default=None, help="the link threshold in use")
    retrain.add_argument("--review-threshold", type=float, default=None, help="the review threshold in use")

    held = _command(commands, "quarantine", "records and files that could not be accepted",
                    "The quarantine: records and whole files that could not be accepted, with their "
                    "reasons, the file they came in, and their raw values for a steward.")
    entries = held.add_subparsers(dest="action", required=True, metavar="ACTION")
    qlist = _command(entries, "list", "open entries, oldest first, with their file (a table; --json)",
                     "Quarantine entries, oldest first: channel, record id, line, the file it came in, "
                     "reason codes. Open ones only unless --include-resolved.")
    qlist.add_argument("--reason", default=None, choices=[r.value for r in Reason], help="only this reason code")
    qlist.add_argument("--include-resolved", action="store_true",
                       help="also entries whose record was accepted later (resolved)")
    _paging(qlist)
    qshow = _command(entries, "show", "one entry, its file and its raw values (masked unless asked)",
                     "One quarantine entry: the file and line it came from, why, and its raw values, "
                     "masked unless --unmask.")
    qshow.add_argument("quarantine_id", type=int, help="the entry's id (from quarantine list)")
    qshow.add_argument("--unmask", action="store_true", help="show the raw values themselves (written to the access log)")
    qshow.add_argument("--as", dest="acting_as", default=None, help="the user the access log names (default: login name)")
    qshow.add_argument("--json", action="store_true", help="the entry as JSON")
    log = _command(commands, "disclosures", "what the register gave to whom (the disclosure log)",
                   "The disclosure log: each marketing extract published, subject access answered and "
                   "erasure confirmed, with recipient, purpose, legal basis and counts. No personal values.")
    logged = log.add_subparsers(dest="action", required=True, metavar="ACTION")
    _paging(_command(logged, "list", "disclosures, newest first (a table; --json)",
                     "Disclosures, newest first: when, what, to whom, how many customers."))
    dshow = _command(logged, "show", "one disclosure with its products, rows and file checksums",
                     "One disclosure: recipient, purpose, legal basis, when, by whom, how many customers, "
                     "products, rows per product and the files' SHA-256.")
    dshow.add_argument("disclosure_id", type=int, help="the disclosure's id (from disclosures list)")
    dshow.add_argument("--json", action="store_true", help="the disclosure as JSON")
    _subject_parsers(commands)
    _workbench_parsers(commands)
    describe = _command(commands, "describe", "the register description: privacy notice and article-30 record",
                        "The register description, generated from the register: the privacy notice (GDPR "
                        "articles 13-14) and the record of processing activities (article 30), from the live "
                        "schema, docs/data_dictionary.md, the configured settings and the controller's details "
                        "(config/register_description.toml). Never reads a customer row.")
    describe.add_argument("--lang", required=True, choices=["fi", "sv", "en"], help="Finnish, Swedish or English")
    describe.add_argument("--format", default="md", choices=["md", "html"], help="Markdown (default) or HTML")
    describe.add_argument("--out", default=None, help="write to this new file instead of stdout (never overwritten)")
    describe.add_argument("--config", default=None,
                          help="the controller's details (default config/register_description.toml)")
    return parser


def _subject_parsers(commands) -> None:
    subject = _command(commands, "subject", "people's rights: access, rectification, erasure",
                       "People's rights (rule 8): what the register holds on a person, a correction, "
                       "an erasure. Each request is recorded with the steward and counts, never values.")
    verbs = subject.add_subparsers(dest="action", required=True, metavar="ACTION")
    access = _command(verbs, "access", "everything held on one person, in the clear",
                      "Everything held on one person, in the clear: deliver it to the person, then delete it.")
    _who(access)
    access.add_argument("--format", default="json", choices=["json", "report"],
                        help="json (machine-readable) or report (for the person to read)")
    access.add_argument("--out", default=None, help="write to this new file (mode 0600) instead of stdout")
    access.add_argument("--reason", default=None, help="the request's reference (never a personal value)")
    access.add_argument("--by", default=None, help="the steward's name (default: the login name)")
    rectify = _command(verbs, "rectify", "correct one value of a customer",
                       "Correct one value on the golden record and on the source record it came from, "
                       "so later loads keep it.")
    rectify.add_argument("--customer-id", type=int, required=True, help="the customer whose value is wrong")
    rectify.add_argument("--attribute", required=True,
                         help="first_names, last_name, street_address, postal_code, city, phone, email, iban "
                              "(the BIC follows), birth_date or marketing_prohibited (yes/no)")
    rectify.add_argument("--value", required=True, help='the correct value ("-": read from standard input)')
    rectify.add_argument("--reason", required=True, help="why (recorded; never the value itself)")
    rectify.add_argument("--by", default=None, help="the steward's name (default: the login name)")
    erase = _command(verbs, "erase", "erase what no law requires keeping (asks for confirmation)",
                     "Erase what no law requires keeping: a person without a contract entirely, a customer "
                     "all but the billing identity and services. On a terminal it shows what would go and "
                     "asks y/N; elsewhere it needs --yes. --dry-run only counts.")
    _who(erase)
    erase.add_argument("--reason", required=True, help="why (recorded; never a personal value)")
    erase.add_argument("--by", default=None, help="the steward's name (default: the login name)")
    mode = erase.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="count what would be erased, change nothing")
    mode.add_argument("--yes", action="store_true", help="erase without asking (scripts; no terminal needed)")


def _workbench_parsers(commands) -> None:
    user = _command(commands, "user", "personal accounts of the web workbench",
                    "Personal accounts of `register web`: add one (the password read from standard input, "
                    "twice on a terminal), disable one, list them. Passwords are kept as argon2id hashes.")
    verbs = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = _command(verbs, "add", "a new account; the password from standard input")
    add.add_argument("name", help="the login name (the access log names it)")
    add.add_argument("--role", required=True, choices=["steward", "analyst", "admin"],
                     help="steward: reviews, customers, quarantine, rights; analyst: aggregate pages only; "
                          "admin: a steward who also manages users and reads the access log")
    disable = _command(verbs, "disable", "close an account (no login; open sessions end)")
    disable.add_argument("name", help="the login name")
    _command(verbs, "list", "every account, its role and state (no hash)")
    log = _command(commands, "access-log", "who looked at whom: the access log",
                   "The access log, newest first: every view of a person, reveal, decision and export in the "
                   "workbench, and every --unmask of the command line. Ids and reasons, never values.")
    log.add_argument("--customer", type=int, default=None, help="rows about this customer (and ids merged into it)")
    log.add_argument("--user", default=None, help="rows by this user")
    _paging(log)
    web = _command(commands, "web", "the stewards' workbench in the browser",
                   "Serve the workbench over this register. Needs REGISTER_WEB_SECRET_KEY (a long random "
                   "string) unless --dev. TLS with --certfile and --keyfile, or behind a proxy that terminates "
                   "TLS (--behind-proxy).")
    web.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    web.add_argument("--port", type=int, default=8000, help="the port (default 8000)")
    web.add_argument("--certfile", default=None, help="the TLS certificate (PEM)")
    web.add_argument("--keyfile", default=None, help="the TLS certificate's private key (PEM)")
    web.add_argument("--behind-proxy", action="store_true",
                     help="trust one proxy's X-Forwarded-For/-Proto (it terminates TLS: cookies stay Secure)")
    web.add_argument("--dev", action="store_true",
                     help="a developer's machine: a random secret key if none is set, cookies without Secure")


def _who(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer-id", type=int, help="a customer id (a merged id resolves to its survivor)")
    who.add_argument("--personal-id", help='the personal identity code ("-": read from standard input)')


# --- the database ---------------------------------------------------------------------------------

def shown_url(url: URL) -> str:
    """The URL to print: the password hidden, in the user part and in the query alike."""
    hidden = "password" in url.query
    if hidden:
        url = url.update_query_dict({"password": "***"})
    shown = url.render_as_string(hide_password=True)
    return shown.replace("password=%2A%2A%2A", "password=***") if hidden else shown


def _sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL; None for an in-memory database."""
    database = url.database or ""
    if database in ("", ":memory:") or "mode=memory" in database:
        return None
    if database.startswith("file:"):
        database = database[len("file:"):].split("?", 1)[0]
    return Path(database).expanduser()


def _reason(error: BaseException, url: URL) -> str:
    """The driver's first line, without the password (libpq does not echo it; this makes sure)."""
    orig = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    reason = " ".join(lines[0].split()) if lines else type(orig).__name__
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return reason[:300]


def open_register(given: str | None, *, creates: bool) -> tuple[sa.Engine, str]:
    """An engine on the register and its URL as printed, or a CommandError (status 3) saying in one
    line why not: a SQLite file that does not exist (never created here unless `creates`), a server
    that cannot be reached, a database without the register's schema."""
    try:
        url = normalise_url(given or database_url())
    except sa.exc.ArgumentError:
        raise CommandError("the database URL cannot be read as a URL (--database-url or $REGISTER_DATABASE_URL)",
                           NO_DATABASE) from None
    shown = shown_url(make_url(given or database_url()))
    options: dict = {}
    if url.get_backend_name() == "sqlite":
        path = _sqlite_file(url)
        if path is not None and not creates and not path.is_file():
            raise CommandError(f"no register database at {shown}: the file does not exist "
                               "(`register migrate` creates it; or set --database-url / $REGISTER_DATABASE_URL)",
                               NO_DATABASE)
    elif url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    try:
        engine = make_engine(url, **options)
    except Exception as error:  # a driver not installed, a malformed option
        raise CommandError(f"cannot use the database at {shown}: {_reason(error, url)}", NO_DATABASE) from None
    if creates:
        return engine, shown
    try:
        with engine.connect() as connection:
            migrated = sa.inspect(connection).has_table("alembic_version")
    except sa.exc.DBAPIError as error:
        engine.dispose()
        raise CommandError(f"cannot connect to the database at {shown}: {_reason(error, url)}", NO_DATABASE) from None
    if not migrated:
        engine.dispose()
        raise CommandError(f"the database at {shown} holds no register schema (run `register migrate`)",
                           NO_DATABASE)
    return engine, shown


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        engine, shown = open_register(args.database_url, creates=args.command == "migrate")
    except CommandError as error:
        print(f"register: {error}", file=sys.stderr)
        return error.status
    try:
        return _run(args, engine)
    except CommandError as error:
        print(f"register: {error}", file=sys.stderr)
        return error.status
    except StewardError as error:
        print(f"register: {error}", file=sys.stderr)
        return REFUSED
    except sa.exc.DBAPIError as error:  # the server went away, a lock timed out: one line, no traceback
        print(f"register: database error at {shown}: {_reason(error, engine.url)}", file=sys.stderr)
        return NO_DATABASE
    finally:
        engine.dispose()


# --- the commands ---------------------------------------------------------------------------------

def _offset(args) -> int:
    return (args.page - 1) * args.limit if args.page else (args.offset or 0)


def _listing(args, items: list[dict], total: int, offset: int, what: str, rendered) -> str:
    if args.json:
        return render.as_json({"total": total, "offset": offset, "limit": args.limit, "items": items})
    footer = render.page_footer(len(items), total, offset, args.limit, what)
    return f"{rendered(items)}\n{footer}" if items else footer


def _steward(args, engine) -> int:
    from pipeline.register import steward

    if args.command == "review" and args.action in ("accept", "reject"):
        decision = steward.decide_review(engine, args.review_id, accept=args.action == "accept",
                                         by=args.by or getpass.getuser())
        print(f"review {decision.review_id} {decision.status}; "
              f"{decision.resolution.merges} merge(s), {decision.resolution.affected_records} records re-resolved")
        return 0
    pending = None  # an --unmask to log, once the reading connection is closed
    with engine.connect() as connection:
        if args.action == "list":
            offset = _offset(args)
            if args.command == "review":
                total = steward.count_reviews(connection, args.status)
                items = steward.list_reviews(connection, args.status, args.limit, offset)
                out = _listing(args, items, total, offset, f"{args.status} reviews", render.review_table)
            else:
                total = steward.count_quarantine(connection, args.reason, include_resolved=args.include_resolved)
                items = steward.list_quarantine(connection, args.reason, args.limit, offset=offset,
                                                include_resolved=args.include_resolved)
                what = ("quarantine entries" if args.include_resolved else "open quarantine entries") + (
                    f" for {args.reason}" if args.reason else "")
                out = _listing(args, items, total, offset, what,
                               lambda rows: render.quarantine_table(rows, with_resolved=args.include_resolved))
        elif args.command == "review":
            item = steward.show_review(connection, args.review_id, unmask=args.unmask)
            if args.unmask:
                pending = {"review_id": args.review_id,
                           "customer_ids": steward.review_customers(connection, args.review_id)}
            out = render.as_json(item) if args.json else render.review_item(item, unmasked=args.unmask)
        else:
            entry = steward.show_quarantine(connection, args.quarantine_id, unmask=args.unmask)
            if args.unmask:
                pending = {"quarantine_id": args.quarantine_id}
            out = render.as_json(entry) if args.json else render.quarantine_entry(entry, unmasked=args.unmask)
    if pending is not None:
        _log_unmask(engine, args, **pending)
    print(out)
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
    if args.command == "subject":
        return _subject(args, engine)
    if args.command == "explain":
        return _explain(args, engine)
    if args.command == "disclosures":
        return _disclosures(args, engine)
    if args.command == "describe":
        return _describe(args, engine)
    if args.command == "user":
        return _user(args, engine)
    if args.command == "access-log":
        return _access_log(args, engine)
    if args.command == "web":
        return _web(args, engine)
    return _steward(args, engine)


def _read_password() -> str:
    """The new password from standard input: asked twice on a terminal, one line from a pipe."""
    if _interactive():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise CommandError("the two passwords differ: nothing changed")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _user(args, engine) -> int:
    from pipeline.register import users

    try:
        if args.action == "add":
            made = users.add_user(engine, args.name, args.role, _read_password())
            print(f"user {made.name} added ({made.role})")
        elif args.action == "disable":
            users.disable_user(engine, args.name)
            print(f"user {args.name} disabled")
        else:
            with engine.connect() as connection:
                listed = users.list_users(connection)
            print(render.table(("user", "role", "disabled", "created (UTC)", "last login (UTC)", "failed logins"),
                               [(u["name"], u["role"], u["disabled"], render._when(u["created_at"]),
                                 render._when(u["last_login_at"]), u["failed_logins"]) for u in listed],
                               right=(5,)) if listed else "no users (register user add NAME --role admin)")
    except users.UserError as error:
        raise CommandError(str(error)) from None
    return 0


def _access_log(args, engine) -> int:
    from pipeline.register.access_log import accesses, count_accesses

    offset = _offset(args)
    with engine.connect() as connection:
        total = count_accesses(connection, customer_id=args.customer, user=args.user)
        items = accesses(connection, customer_id=args.customer, user=args.user, limit=args.limit, offset=offset)
    print(_listing(args, items, total, offset, "access log rows", lambda rows: render.table(
        ("id", "at (UTC)", "user", "via", "action", "customer", "record", "review", "quarantine", "reason"),
        [(r["access_id"], render._when(r["at"]), r["user_name"], r["via"], r["action"], r["customer_id"],
          r["source_record_pk"], r["review_id"], r["quarantine_id"], r["reason"]) for r in rows],
        right=(0, 5, 6, 7, 8), widest={9: 50})))
    return 0


def _web(args, engine) -> int:
    from pipeline.web import WebConfigError, serve

    try:
        serve(engine, host=args.host, port=args.port, certfile=args.certfile, keyfile=args.keyfile,
              behind_proxy=args.behind_proxy, dev=args.dev)
    except WebConfigError as error:
        raise CommandError(str(error)) from None
    return 0


def _log_unmask(engine, args, **ids) -> None:
    """An --unmask is a look at a person: the access log keeps who, when and which ids."""
    from pipeline.register.access_log import log_access, os_user

    with engine.begin() as connection:
        for customer_id in ids.pop("customer_ids", None) or [None]:
            log_access(connection, user=os_user(getattr(args, "acting_as", None)), via="cli", action="cli_unmask",
                       customer_id=customer_id, **ids)


def _describe(args, engine) -> int:
    from pipeline.register.description import DescriptionError, describe, render

    try:
        text = render(describe(engine, args.lang, config_path=args.config), args.format)
    except DescriptionError as error:
        raise CommandError(str(error), REFUSED) from None
    if not args.out:
        sys.stdout.write(text)
        return 0
    try:
        with open(args.out, "x", encoding="utf-8") as out:
            out.write(text)
    except FileExistsError:
        raise CommandError("the output file exists already: give a new file name") from None
    print(f"register description ({args.lang}, {args.format}) written to {args.out}")
    return 0


def _disclosures(args, engine) -> int:
    from pipeline.register.disclosures import disclosure_detail, list_disclosures

    with engine.connect() as connection:
        if args.action == "list":
            offset = _offset(args)
            items, total = list_disclosures(connection, limit=args.limit, offset=offset)
            print(_listing(args, items, total, offset, "disclosures", render.disclosure_table))
            return 0
        found = disclosure_detail(connection, args.disclosure_id)
    if found is None:
        raise CommandError(f"no disclosure {args.disclosure_id}", REFUSED)
    print(render.as_json(found) if args.json else render.disclosure_item(found))
    return 0


# --- people's rights ------------------------------------------------------------------------------

def _subject(args, engine) -> int:
    from pipeline.register import rights

    by = args.by or getpass.getuser()
    if args.action == "erase":
        return _erase(args, engine, by)
    if args.action == "access":
        try:  # the file first: a request is recorded only when its answer can be delivered
            out = _new_private_file(args.out) if args.out else sys.stdout
        except FileExistsError:
            raise CommandError("the output file exists already: give a new file name") from None
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
    done = rights.rectify(engine, args.customer_id, args.attribute, _from_stdin(args.value),
                          reason=args.reason, by=by)
    print(f"customer {done.customer_id}: {done.attribute} rectified on the golden record and "
          f"{done.source_records_updated} source record(s); request {done.request_id}")
    return 0


def _interactive() -> bool:
    isatty = getattr(sys.stdin, "isatty", None)
    return bool(isatty and isatty())


def _confirmed(question: str) -> bool:
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def _changed_nothing(done) -> bool:
    return not any(done.deleted.values()) and not done.purged["quarantine"] and not done.tombstones


def _earlier_erasures(engine, customer_ids, skip=()) -> list[tuple[int, int, str]]:
    """(customer id, request id, when) of erasures already recorded for these customers."""
    from schemas.register import rights_request

    if not customer_ids:
        return []
    with engine.connect() as connection:
        rows = connection.execute(sa.select(rights_request.c.customer_id, rights_request.c.request_id,
                                            rights_request.c.performed_at)
                                  .where(rights_request.c.action == "erasure",
                                         rights_request.c.customer_id.in_(sorted(customer_ids)),
                                         rights_request.c.request_id.not_in(sorted(skip) or [-1]))
                                  .order_by(rights_request.c.request_id)).all()
    firsts: dict[int, tuple[int, int, str]] = {}
    for customer_id, request_id, when in rows:
        firsts.setdefault(customer_id, (customer_id, request_id, when.strftime("%Y-%m-%d %H:%M UTC")))
    return list(firsts.values())


def _already_erased(engine, done, skip=()) -> list[tuple[int, int, str]] | None:
    """The earlier erasures when this one changes nothing because every customer of the subject was
    erased before; None when it changes something (or no customer holds the code)."""
    if not _changed_nothing(done) or not done.customer_ids:
        return None
    earlier = _earlier_erasures(engine, done.customer_ids, skip)
    return earlier if {c for c, _, _ in earlier} == set(done.customer_ids) else None


def _already_lines(earlier) -> str:
    return "\n".join(f"customer {c} was already erased on {when} (request {r}): nothing more to erase"
                     for c, r, when in earlier)


NOTHING_UNDER_CODE = ("nothing is held under this identity code: nothing to erase (already erased, or never in "
                      "the register: an erased person's code is not kept, so the two look alike)")


def _erase(args, engine, by: str) -> int:
    from pipeline.register import rights
    from schemas.register import customer

    asks = not args.dry_run and not args.yes
    if asks and not _interactive():  # before anything is read or done
        raise CommandError("erasure asks for confirmation on a terminal, and there is none here: "
                           "give --yes to erase without asking (see first what would go with --dry-run)")
    personal_id = _from_stdin(args.personal_id)
    if args.customer_id is not None:
        with engine.connect() as connection:
            exists = connection.execute(sa.select(customer.c.customer_id)
                                        .where(customer.c.customer_id == args.customer_id)).first()
        earlier = [] if exists else _earlier_erasures(engine, [args.customer_id])
        if earlier:  # a prospect erased before: its customer row is gone, its request stays
            print(_already_lines(earlier))
            return 0

    def erase(dry_run: bool):
        return rights.erase(engine, customer_id=args.customer_id, personal_id=personal_id, reason=args.reason,
                            by=by, dry_run=dry_run)

    if asks:
        preview = erase(dry_run=True)
        nothing_to_do = (_already_erased(engine, preview) is not None
                         or (not preview.customer_ids and _changed_nothing(preview)))
        if not nothing_to_do:  # nothing to confirm when nothing would change
            print("\n".join(render.erasure_lines(preview, dry_run=True)))
            if not _confirmed("erase this?"):
                print("nothing erased", file=sys.stderr)
                return NOT_CONFIRMED
    done = erase(dry_run=args.dry_run)
    earlier = _already_erased(engine, done, skip=done.request_ids)
    if earlier is not None:
        print(_already_lines(earlier))
    elif not done.customer_ids and _changed_nothing(done):
        print(NOTHING_UNDER_CODE)
    else:
        print("\n".join(render.erasure_lines(done, dry_run=args.dry_run)))
    return 0


# --- summary, explanation, model --------------------------------------------------------------------

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


def _from_stdin(value: str | None) -> str | None:
    return sys.stdin.readline().strip() if value == "-" else value


def _new_private_file(path: str):
    """`path` created for writing, readable by its owner only; an existing file is never overwritten."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8")


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
    if args.unmask:
        _log_unmask(engine, args, customer_ids=[found.customer_id])
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



if __name__ == "__main__":
    sys.exit(main())
