"""Invariants of the register, as queries that return counts (never values)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

# Rule 1 of REGISTER.md for every loaded file:
#   read = accepted + quarantined,
#   accepted - resent - erased = source records held under the file,
#   quarantined = record-level quarantine entries of the file.
_UNBALANCED_FILES = text(
    """
    SELECT f.intake_file_id
    FROM intake_file f
    LEFT JOIN (SELECT intake_file_id, COUNT(*) AS n FROM source_record GROUP BY intake_file_id) s
           ON s.intake_file_id = f.intake_file_id
    LEFT JOIN (SELECT intake_file_id, COUNT(*) AS n FROM quarantine
               WHERE source_record_id IS NOT NULL OR record_number IS NOT NULL
               GROUP BY intake_file_id) q
           ON q.intake_file_id = f.intake_file_id
    WHERE f.records_read <> f.records_accepted + f.records_quarantined
       OR f.records_accepted - f.records_resent - f.records_erased <> COALESCE(s.n, 0)
       OR f.records_quarantined <> COALESCE(q.n, 0)
    """
)


def unbalanced_files(engine: Engine) -> list[int]:
    """Ids of intake files whose counts do not add up (empty when all is well)."""
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(_UNBALANCED_FILES)]
