"""What the register already knows of landed files."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine

from schemas.register import intake_file


def known_checksums(engine: Engine) -> set[str]:
    """Checksums of every file already loaded (or quarantined whole)."""
    with engine.connect() as conn:
        return set(conn.execute(select(intake_file.c.checksum)).scalars())
