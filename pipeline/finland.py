"""Finnish local time: the register's one time zone and calendar.

Ages, the marketing extract's folder, the schedules and the exports' local
timestamps all go by the Finnish calendar, whatever the machine's own zone.

>>> today_in_finland(dt.datetime(2026, 12, 31, 22, 30, tzinfo=dt.timezone.utc))
datetime.date(2027, 1, 1)
>>> today_in_finland(dt.datetime(2026, 6, 30, 20, 59, tzinfo=dt.timezone.utc))
datetime.date(2026, 6, 30)
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

TIME_ZONE = "Europe/Helsinki"
HELSINKI = ZoneInfo(TIME_ZONE)


def today_in_finland(now: dt.datetime | None = None) -> dt.date:
    """The date in Finland now (or at `now`, an aware datetime)."""
    return (now or dt.datetime.now(dt.timezone.utc)).astimezone(HELSINKI).date()
