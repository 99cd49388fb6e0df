"""What the register already knows of landed files."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine

from schemas.register import intake_file


def known_files(engine: Engine) -> set[tuple[str, str]]:
    """(channel, checksum) of every file already loaded (or quarantined whole).

    A file is its content within its channel (migration 0004): the same bytes landed
    in another channel are another file.
    """
    with engine.connect() as conn:
        return {(channel, checksum) for channel, checksum in
                conn.execute(select(intake_file.c.channel, intake_file.c.checksum))}
