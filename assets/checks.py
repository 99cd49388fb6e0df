"""Asset checks on the register: the invariants a data engineer relies on at night."""


import dagster as dg

from pipeline.register.checks import unbalanced_files
from pipeline.resources import RegisterDatabase


@dg.asset_check(asset="register", blocking=True,
                description="Every loaded file's counts add up: read = accepted + quarantined, "
                            "and each count matches the rows held (REGISTER.md rule 1).")
def intake_counts_add_up(register_db: RegisterDatabase) -> dg.AssetCheckResult:
    bad = unbalanced_files(register_db.ready_engine())
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={"unbalanced_files": len(bad), "intake_file_ids": dg.MetadataValue.json(bad[:50])},
    )


register_checks = [intake_counts_add_up]
