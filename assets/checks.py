"""Asset checks on the register: the invariants a data engineer relies on at night.

All blocking but one: a failed check stops what is downstream of the register (the
marketing extract) in the same run. `marketing_held_under_doubt` only warns: it
counts the customers doubt keeps off the marketing list (the list is right; the
stewards may have decisions waiting). Metadata holds counts only (and intake file
ids, which name files, not people). The queries are `pipeline.register.checks`.
"""


import dagster as dg

from pipeline.register.checks import (
    customers_sharing_a_code,
    customers_with_invalid_codes,
    held_under_doubt,
    marketing_view_violations,
    unbalanced_files,
)
from pipeline.finland import today_in_finland
from pipeline.orchestration.resources import RegisterDatabase

IDS_SHOWN = 100  # a failed check lists the customers involved (ids, never values), this many at most


def customer_ids(ids) -> dg.MetadataValue:
    """The first `IDS_SHOWN` customer ids (or groups of ids) a check found, for the steward to open."""
    return dg.MetadataValue.json([list(i) if isinstance(i, tuple) else int(i) for i in list(ids)[:IDS_SHOWN]])


@dg.asset_check(asset="register", blocking=True,
                description="Every loaded file's counts add up: read = accepted + quarantined, "
                            "and each count matches the rows held (docs/register_rules.md rule 1).")
def intake_counts_add_up(context: dg.AssetCheckExecutionContext,
                         register_db: RegisterDatabase) -> dg.AssetCheckResult:
    with register_db.retrying(context):
        bad = unbalanced_files(register_db.ready_engine())
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={"unbalanced_files": len(bad), "intake_file_ids": dg.MetadataValue.json(bad[:50])},
    )


@dg.asset_check(asset="register", blocking=True,
                description="No customer holds an invalid or temporary identity code: every stored "
                            "personal_id is a valid permanent code in canonical form (docs/register_rules.md rule 4).")
def no_invalid_or_temporary_codes_on_customers(context: dg.AssetCheckExecutionContext,
                                               register_db: RegisterDatabase) -> dg.AssetCheckResult:
    with register_db.retrying(context):
        bad = customers_with_invalid_codes(register_db.ready_engine(), today_in_finland())
    return dg.AssetCheckResult(passed=not bad, metadata={"customers_with_invalid_code": len(bad),
                                                         "customer_ids": customer_ids(bad)})


@dg.asset_check(asset="register", blocking=True,
                description="No two active customers share a personal identity code: one code, one "
                            "person (docs/register_rules.md rule 4). Merged-away customers do not count.")
def no_two_customers_share_a_code(context: dg.AssetCheckExecutionContext,
                                  register_db: RegisterDatabase) -> dg.AssetCheckResult:
    with register_db.retrying(context):
        groups = customers_sharing_a_code(register_db.ready_engine())
    return dg.AssetCheckResult(
        passed=not groups,
        metadata={"codes_shared": len(groups), "customers_sharing": sum(len(g) for g in groups),
                  "customer_ids": customer_ids(groups)},  # one list of ids per shared code
    )


@dg.asset_check(asset="register", blocking=True,
                description="The view marketing_contacts lists nobody the customer table forbids: no one "
                            "who prohibited direct marketing, no minor or unknown age, nobody erased or merged, "
                            "nobody an open review ties to someone prohibited or a possible minor.")
def marketing_list_respects_prohibitions(context: dg.AssetCheckExecutionContext,
                                         register_db: RegisterDatabase) -> dg.AssetCheckResult:
    with register_db.retrying(context):
        violations = marketing_view_violations(register_db.ready_engine(), today_in_finland())
    return dg.AssetCheckResult(passed=violations.ok,
                               metadata={**violations.counts(), "customer_ids": customer_ids(violations.customer_ids)})


@dg.asset_check(asset="register", blocking=False,
                description="Customers held back from the marketing list under doubt (WARN, informative): "
                            "an open review ties them to someone who prohibited direct marketing or to a "
                            "possible minor (they return when a steward decides), or a contact point or "
                            "an unwithdrawn prohibition ties them to a 'no marketing' (until the data says otherwise).")
def marketing_held_under_doubt(context: dg.AssetCheckExecutionContext,
                               register_db: RegisterDatabase) -> dg.AssetCheckResult:
    with register_db.retrying(context):
        counts = held_under_doubt(register_db.ready_engine(), today_in_finland())
    return dg.AssetCheckResult(passed=counts["held_under_doubt"] == 0, severity=dg.AssetCheckSeverity.WARN,
                               metadata=counts)


register_checks = [
    intake_counts_add_up,
    no_invalid_or_temporary_codes_on_customers,
    no_two_customers_share_a_code,
    marketing_list_respects_prohibitions,
    marketing_held_under_doubt,
]
