"""Tombstones of erased source records: a re-sent submission never brings an erased person back.

Erasure deletes a person's source records, and with them the (channel,
source_record_id) keys that make a re-sent record a re-send (docs/register_rules.md rule 2).
A channel may re-send an old submission in a later file; without a trace of the
key it would load as new, undoing the erasure. So erasure leaves a tombstone: the
SHA-256 of the key, never the key itself (an e-mail Message-ID may carry an
address), and the load counts a record whose key has a tombstone as re-sent.

>>> key_hash("web", "W-20261124-000123") == key_hash("web", "W-20261124-000123")
True
>>> key_hash("web", "W-1") != key_hash("phone", "W-1")
True
>>> len(key_hash("email", "<a@b>"))
64
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable

import numpy as np
import pandas as pd
import sqlalchemy as sa

from schemas.register import erased_record

_LOOKUP_CHUNK = 10_000


def key_hash(channel: str, source_record_id: str) -> str:
    """The tombstone of one record key: hex SHA-256 of channel, a unit separator, and id."""
    return hashlib.sha256(f"{channel}\x1f{source_record_id}".encode("utf-8")).hexdigest()


def bury(connection: sa.Connection, keys: Iterable[tuple[str, str]], now: dt.datetime) -> int:
    """Leave a tombstone for each (channel, source_record_id); returns how many are new."""
    hashes = sorted({key_hash(channel, record_id) for channel, record_id in keys})
    if not hashes:
        return 0
    known = _existing(connection, hashes)
    fresh = [h for h in hashes if h not in known]
    if fresh:
        connection.execute(erased_record.insert(), [{"key_hash": h, "erased_at": now} for h in fresh])
    return len(fresh)


def buried(connection: sa.Connection, keys: pd.DataFrame) -> np.ndarray:
    """For each row of `keys` (columns channel, source_record_id): does it have a tombstone?"""
    found = np.zeros(len(keys), dtype=bool)
    if len(keys) == 0 or connection.execute(sa.select(sa.exists().select_from(erased_record))).scalar_one() is False:
        return found
    hashes = [key_hash(c, r) for c, r in zip(keys["channel"].tolist(), keys["source_record_id"].tolist())]
    known = _existing(connection, sorted(set(hashes)))
    found[:] = [h in known for h in hashes]
    return found


def _existing(connection: sa.Connection, hashes: list[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(hashes), _LOOKUP_CHUNK):
        chunk = hashes[start:start + _LOOKUP_CHUNK]
        known.update(connection.execute(sa.select(erased_record.c.key_hash)
                                        .where(erased_record.c.key_hash.in_(chunk))).scalars())
    return known
