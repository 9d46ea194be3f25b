"""A report's days are the calendar days of the team's time zone (settings.TIME_ZONE, UTC unless set):
a session counts on the day it started there, and a range of days covers from the first day's midnight
to the midnight after the last, as the team's clocks read them (23 or 25 hours on a daylight-saving
change). The rollups and the pages read days only through here, so both always agree.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo

from django.utils import timezone


def zone() -> tzinfo:
    return timezone.get_default_timezone()


def day_of(moment: datetime) -> date:
    return timezone.localtime(moment, zone()).date()


def today(now: datetime | None = None) -> date:
    return day_of(now or timezone.now())


def bounds(first_day: date, last_day: date) -> tuple[datetime, datetime]:
    """The instants from first_day's midnight (included) to the midnight after last_day (excluded)."""
    return (datetime.combine(first_day, time(), tzinfo=zone()),
            datetime.combine(last_day + timedelta(days=1), time(), tzinfo=zone()))
