"""The intake assets: landed files -> raw intake per channel -> canonical intake -> quarantine -> register.

Thin over `pipeline.intake` and `pipeline.register`. Frames move between these
assets in the run's memory (see `pipeline.orchestration.io_manager.RunMemoryIOManager`),
never pickled into the Dagster home, and metadata carries counts and file names only.

Every step that touches the database retries a transient database error
(`RegisterDatabase.retrying`); bad data fails the step at once. The register's
metadata leads with ten headline numbers Dagster plots run after run; the
breakdowns (per channel, per quarantine reason, the resolver's own counts) are one
table or JSON value each, which Dagster shows but does not plot.
"""


import datetime as dt

import dagster as dg
import pandas as pd

from pipeline.batch import IntakeBatch, LoadSummary
from pipeline.finland import today_in_finland
from pipeline.intake import FileRead, LandingSurvey, LandingZoneMissing, build_batch, channel_counts, \
    duplicate_files, new_files, read_all
from pipeline.register.checks import live_customers
from pipeline.register.files import known_files
from pipeline.register.load import load_intake
from pipeline.register.resolve import resolve_identities
from pipeline.orchestration.jobs import NIGHTLY_FRESHNESS
from pipeline.orchestration.partitions import EXPORT_DAYS, export_day_materialisations, run_export_days
from pipeline.orchestration.resources import LandingZone, MatchingConfig, RegisterDatabase, database_kind
from pipeline.validation import validate_canonical
from schemas.canonical import CHANNELS
from schemas.register import customer

OWNERS = ["team:data-engineering"]


# Warnings the operator sees on `landed_files` (docs/operations.md says what to do for each).
# WARN, not blocking: one misplaced file must not stop the other channels' night.
LANDING_CHECKS = {
    "landing_zone_holds_files": "At least one export (ready or still being written) is in a channel folder: "
                                "an empty landing zone is a wrong directory or a night without exports.",
    "landing_zone_names_as_agreed": "Every entry at the top is one of the channel folders web, phone, mail, "
                                    "email, in_person, and every file in them is named <channel>_YYYYMMDD[_n].<ext> "
                                    "(docs/intake_formats.md); anything else is left unread.",
    "landing_zone_has_no_links": "No symbolic link in the landing zone (files, markers, channel folders): "
                                 "links are refused, never followed.",
}


@dg.asset(
    group_name="intake",
    kinds={"python"},
    owners=OWNERS,
    description="The landing zone as this run found it: the files ready to read (a `.ready` marker, "
                "or unchanged for the settle time), files still waiting, symbolic links refused, and "
                "names out of place; in a run of export-day partitions, only those days' files. "
                "A missing landing directory fails the run.",
    check_specs=[dg.AssetCheckSpec(name, asset="landed_files", description=text, blocking=False)
                 for name, text in LANDING_CHECKS.items()],
)
def landed_files(context: dg.AssetExecutionContext, landing_zone: LandingZone):
    try:
        survey = landing_zone.survey()
    except LandingZoneMissing as missing:
        # A wrong REGISTER_LANDING_DIR must not pass for a quiet night: nothing downstream runs,
        # so no extract is published from it.
        raise dg.Failure(description=str(missing), allow_retries=False) from None
    days = run_export_days(context)
    if days is not None:
        # A run of export-day partitions reads those days' exports only (orchestration/partitions.py).
        survey = survey.on_days(days)
        context.log.info(f"landing zone: export days {days[0].isoformat()}..{days[-1].isoformat()}: "
                         f"{len(survey.files)} files ready")
    # File names only, never content: the operator sees what waits and what is refused.
    for name in survey.waiting:
        context.log.info(f"landing zone: {name} is still being written (no .ready marker and changed within "
                         f"{landing_zone.settle_seconds} s): left for a later run")
    for name in survey.refused_links:
        context.log.warning(f"landing zone: {name} is a symbolic link: refused, not followed")
    for name in survey.unknown_entries:
        context.log.warning(f"landing zone: {name} is not a channel folder: nothing in it is read")
    for name in survey.unexpected_names:
        context.log.warning(f"landing zone: {name} does not match its channel's file name: not read")
    metadata: dict[str, object] = dict(survey.metadata())
    metadata["export_days"] = "all" if days is None else ", ".join(d.isoformat() for d in days)
    for key in ("waiting", "refused_links", "unknown_entries", "unexpected_names"):
        metadata[f"{key}_names"] = dg.MetadataValue.json(getattr(survey, key)[:50])
    yield dg.Output(survey, metadata=metadata)
    if not survey.holds_files:
        context.log.warning("landing zone: no export in any channel folder")
    out_of_place = survey.unknown_entries + survey.unexpected_names
    for name, passed, found in (
        ("landing_zone_holds_files", survey.holds_files, {"files": len(survey.files) + len(survey.waiting)}),
        ("landing_zone_names_as_agreed", not out_of_place,
         {"unknown_entries": len(survey.unknown_entries), "unexpected_names": len(survey.unexpected_names),
          "names": dg.MetadataValue.json(out_of_place[:50])}),
        ("landing_zone_has_no_links", not survey.refused_links,
         {"links_refused": len(survey.refused_links), "names": dg.MetadataValue.json(survey.refused_links[:50])}),
    ):
        yield dg.AssetCheckResult(check_name=name, passed=passed, severity=dg.AssetCheckSeverity.WARN,
                                  metadata=found)


def _raw_intake_asset(channel: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"raw_{channel}",
        group_name="intake",
        kinds={"python", "pandas"},
        owners=OWNERS,
        description=f"New `{channel}` exports ready in the landing zone (by channel and checksum), read into records.",
    )
    def raw_intake(context: dg.AssetExecutionContext, landed_files: LandingSurvey,
                   register_db: RegisterDatabase) -> dg.Output[list[FileRead]]:
        landed = landed_files.files_of(channel)
        with register_db.retrying(context):
            held = known_files(register_db.ready_engine())
        fresh = new_files(landed, held)
        # Content already loaded (or repeated under a later name): not read; the loader
        # records it as a duplicate of the earlier file.
        repeated = duplicate_files(landed, held)
        # A file replaced or changed since the survey summed it waits for the next run.
        changed = [f for f in fresh + repeated if not f.unchanged()]
        for f in changed:
            context.log.warning(f"{channel}: {f.file_name} changed since the landing zone was surveyed: "
                                "left for a later run")
        # Many files are read, and normalised for canonical_intake, in worker processes
        # (REGISTER_INTAKE_WORKERS); a night's few files in this process.
        reads = read_all([f for f in fresh if f not in changed], today=today_in_finland())
        counts = channel_counts(reads)
        reads += [FileRead(f, duplicate=True) for f in repeated if f not in changed]
        for r in reads:
            if r.reason is not None:
                # The detail names the file and column, never a value.
                context.log.warning(f"{channel}: whole file quarantined ({r.reason.value}): {r.detail}")
        return dg.Output(
            reads,
            metadata={
                "files_landed": len(landed),
                "files_waiting": len(landed_files.waiting_in(channel)) + len(changed),
                "files_new": counts.files,
                "files_duplicate": len(repeated),  # content already loaded (or twice in this run): not read
                "files_unreadable": counts.unreadable_files,
                "records_read": counts.records_read,
                "records_unreadable": counts.read_errors,
            },
        )

    return raw_intake


raw_intake_assets = [_raw_intake_asset(channel) for channel in CHANNELS]


@dg.asset(
    group_name="intake",
    kinds={"python", "pandas"},
    owners=OWNERS,
    ins={f"raw_{c}": dg.AssetIn(f"raw_{c}") for c in CHANNELS},
    description="Every new record mapped onto the canonical intake schema, normalised and validated.",
)
def canonical_intake(context: dg.AssetExecutionContext, **raw: list[FileRead]) -> dg.Output[IntakeBatch]:
    reads = [r for c in CHANNELS for r in raw[f"raw_{c}"]]
    today = today_in_finland()
    batch = build_batch(reads, today)
    report = validate_canonical(batch.accepted)
    if not report.ok:
        # A normaliser bug, not bad input: stop before anything is written.
        raise dg.Failure(description="Canonical intake failed validation (counts per column and check, no values)",
                         metadata={"failures": dg.MetadataValue.json(report.failures)})
    per_channel = batch.accepted["channel"].value_counts().to_dict() if len(batch.accepted) else {}
    flags = batch.accepted["quality_flags"].str.split().explode().value_counts().to_dict() \
        if len(batch.accepted) else {}
    return dg.Output(
        batch,
        metadata={
            "records_accepted": len(batch.accepted),
            "records_quarantined": len(batch.quarantined),
            "accepted_per_channel": dg.MetadataValue.json({c: int(per_channel.get(c, 0)) for c in CHANNELS}),
            "flags": dg.MetadataValue.json({str(k): int(v) for k, v in flags.items() if k}),
        },
    )


@dg.asset(
    group_name="intake",
    kinds={"python", "pandas"},
    owners=OWNERS,
    description="Records and whole files that cannot be accepted, with reason codes (raw values kept for stewards).",
)
def intake_quarantine(canonical_intake: IntakeBatch) -> dg.Output[pd.DataFrame]:
    quarantined = canonical_intake.quarantined
    by_reason = quarantined["reasons"].str.split().explode().value_counts().to_dict() if len(quarantined) else {}
    unreadable_files = canonical_intake.files["file_reason"].dropna().value_counts().to_dict()
    return dg.Output(
        quarantined,
        metadata={
            "records_quarantined": len(quarantined),
            "files_quarantined": int(canonical_intake.files["file_reason"].notna().sum()),
            "by_reason": dg.MetadataValue.json({str(k): int(v) for k, v in {**by_reason, **unreadable_files}.items()}),
        },
    )


def _column_schema(table) -> dg.TableSchema:
    return dg.TableSchema(columns=[
        dg.TableColumn(c.name, str(c.type).lower(), description=c.comment,
                       constraints=dg.TableColumnConstraints(nullable=bool(c.nullable)))
        for c in table.columns])


@dg.asset(
    group_name="register",
    kinds={"sqlalchemy", database_kind()},
    owners=OWNERS,
    pool="register_write",
    partitions_def=EXPORT_DAYS,
    metadata={"dagster/column_schema": _column_schema(customer)},
    freshness_policy=NIGHTLY_FRESHNESS,
    description="The register load in one transaction: intake files, source records and quarantine, "
                "then identity resolution (customers, merges, provenance, services, review queue). "
                "Partitioned by export day: a day's partition loads that day's new exports; a run "
                "without a partition loads every new export and marks the days it covered.",
)
def register(context: dg.AssetExecutionContext, register_db: RegisterDatabase, matching: MatchingConfig,
             canonical_intake: IntakeBatch, intake_quarantine: pd.DataFrame):
    batch = IntakeBatch(files=canonical_intake.files, accepted=canonical_intake.accepted,
                        quarantined=intake_quarantine, duplicates=canonical_intake.duplicates)
    now = dt.datetime.now(dt.timezone.utc)
    run_id = context.run.run_id
    # The load is one transaction: a retried attempt starts from the register as it was.
    with register_db.retrying(context):
        summary = load_intake(
            register_db.ready_engine(), batch, run_id=run_id, now=now,
            after_load=lambda connection: resolve_identities(connection, now=now, run_id=run_id,
                                                             settings=matching.settings()))
    with register_db.retrying(context):
        customers = live_customers(register_db.ready_engine())
    yield dg.MaterializeResult(metadata=register_metadata(summary, customers))
    if run_export_days(context) is None:
        # The run's own materialisation first; then each export day the whole load covered.
        for day in export_day_materialisations(context.asset_key, summary):
            context.log_event(day)


# The breakdowns of a load: one row per channel and the total, in this column order.
BREAKDOWN_COLUMNS = ("files_loaded", "files_quarantined", "files_skipped", "files_duplicate", "read", "accepted",
                     "resent", "versioned", "inserted", "quarantined", "requarantined")


def register_metadata(summary: LoadSummary, customers: int) -> dict[str, object]:
    """The `register` materialisation's metadata: the headline numbers first (plotted),
    `dagster/row_count` (live customers), then one table per breakdown (not plotted)."""
    rows = [("total", summary.total), *summary.channels.items()]
    per_channel = dg.MetadataValue.table(
        records=[dg.TableRecord({"channel": name, **{c: int(n) for c, n in counts.as_dict().items()
                                                     if c in BREAKDOWN_COLUMNS}})
                 for name, counts in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn("channel", "string"),
                                       *[dg.TableColumn(c, "int") for c in BREAKDOWN_COLUMNS]]))
    reasons = sorted({*summary.total.quarantined_by_reason, *summary.total.files_quarantined_by_reason})
    by_reason = dg.MetadataValue.table(
        records=[dg.TableRecord({"reason": r, "records": int(summary.total.quarantined_by_reason.get(r, 0)),
                                 "files": int(summary.total.files_quarantined_by_reason.get(r, 0))})
                 for r in reasons],
        schema=dg.TableSchema(columns=[dg.TableColumn("reason", "string"), dg.TableColumn("records", "int"),
                                       dg.TableColumn("files", "int")]))
    resolved = summary.after_load.metadata() if summary.after_load is not None else {}
    return {**run_figures(summary), "dagster/row_count": int(customers), "per_channel": per_channel,
            "quarantine_by_reason": by_reason, "resolution": dg.MetadataValue.json(resolved)}


def run_figures(summary: LoadSummary) -> dict[str, int | float]:
    """The ten headline numbers of one load, as plain ints and floats for Dagster's plots.

    `records_linked`: new records that joined a customer (one already held, or
    another record of the batch) rather than starting one, i.e. the records
    resolved less the new customers. Rates are fractions in [0, 1], left out when
    there is nothing to divide: a night without new records draws a gap, not a
    false dip to 0.
    """
    resolved = summary.after_load
    read, quarantined = summary.total.read, summary.total.quarantined
    records_resolved = int(getattr(resolved, "records_resolved", 0))
    new_customers = int(getattr(resolved, "new_customers", 0))
    linked = max(records_resolved - new_customers, 0)
    figures: dict[str, int | float] = {
        "records_read": int(read),
        "records_accepted": int(summary.total.accepted),
        "records_quarantined": int(quarantined),
        "records_resent": int(summary.total.resent),  # unchanged re-sends (new versions: per_channel)
        "records_linked": linked,
        "new_customers": new_customers,
        "merges": int(getattr(resolved, "merges", 0)),
        "to_review": int(getattr(resolved, "reviews_opened", 0)),  # review entries opened
    }
    if records_resolved:
        figures["link_rate"] = float(linked / records_resolved)
    if read:
        figures["quarantine_rate"] = float(quarantined / read)
    return figures
