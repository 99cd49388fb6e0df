"""The marketing extract: one CSV per product for the marketing partner, and its check.

Thin over `pipeline.register.marketing`. Metadata carries row counts and file
names only; a refused extract fails with counts only and is never retried (the
same register would be refused again).
"""


from pathlib import Path

import dagster as dg

from assets.checks import customer_ids
from pipeline.finland import today_in_finland
from pipeline.register.marketing import EXTRACT_COLUMNS, ExtractRefused, verify_extract, write_extract
from pipeline.orchestration.jobs import NIGHTLY_FRESHNESS
from pipeline.orchestration.partitions import run_export_days
from pipeline.orchestration.resources import ExtractDirectory, RegisterDatabase, database_kind

OWNERS = ["team:data-engineering"]


@dg.asset(
    group_name="marketing",
    deps=["register"],
    kinds={"csv", "sqlalchemy", database_kind()},
    owners=OWNERS,
    metadata={"dagster/column_schema": dg.TableSchema(
        columns=[dg.TableColumn(c, "integer" if c == "customer_id" else "text") for c in EXTRACT_COLUMNS])},
    freshness_policy=NIGHTLY_FRESHNESS,
    # A run of export-day partitions (a backfill, a day re-run) loads past days: it publishes
    # nothing, so that a backfill of ten days is not ten disclosures; the next whole load does.
    output_required=False,
    description="Today's direct-marketing list per product (marketing_<product>.csv), from the view "
                "marketing_contacts, re-checked against the customer table before it is published. "
                "Published by a whole load (a run without a partition) only.",
)
def marketing_extract(context: dg.AssetExecutionContext, register_db: RegisterDatabase,
                      extract_dir: ExtractDirectory):
    if run_export_days(context) is not None:
        context.log.info("marketing extract: not published by a run of export-day partitions; "
                         "the next whole load publishes it")
        return
    try:
        with register_db.retrying(context):
            summary = write_extract(register_db.ready_engine(), Path(extract_dir.path), today=today_in_finland(),
                                    by=context.run.run_id)
    except ExtractRefused as refused:
        raise dg.Failure(description=str(refused), metadata=refused.counts, allow_retries=False) from None
    metadata = summary.metadata()
    metadata["files_written"] = dg.MetadataValue.json(metadata["files_written"])
    metadata["dagster/row_count"] = metadata["rows_total"]
    yield dg.MaterializeResult(metadata=metadata)


@dg.asset_check(asset=marketing_extract, blocking=True,
                description="The newest extract's files, read back, hold nobody who prohibited direct "
                            "marketing, no minor or unknown age, nobody erased or merged, no unknown id, "
                            "and no cell a spreadsheet would run as a formula (CSV injection).")
def marketing_extract_respects_prohibitions(context: dg.AssetCheckExecutionContext, register_db: RegisterDatabase,
                                            extract_dir: ExtractDirectory) -> dg.AssetCheckResult:
    with register_db.retrying(context):
        verification = verify_extract(register_db.ready_engine(), Path(extract_dir.path), today=today_in_finland())
    return dg.AssetCheckResult(passed=verification.ok,
                               metadata={**verification.metadata(),
                                         "customer_ids": customer_ids(verification.ineligible.customer_ids)})


marketing_assets = [marketing_extract]
marketing_checks = [marketing_extract_respects_prohibitions]
