"""A report's days are the team's (settings.TIME_ZONE): the rollups, the pages, the export and the
filter's default range all cut them at the team's midnight."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from reports import days, services
from reports.models import DailyStat

pytestmark = pytest.mark.django_db

# 03:30 UTC on 10 March is 20:30 on 9 March in California (UTC-7 since the 8 March change): the evening of
# the 9th there, the early morning of the 10th in UTC.
LATE_EVENING_IN_CALIFORNIA = datetime(2026, 3, 10, 3, 30, tzinfo=UTC)


def sessions_figure(client: Client, day: str) -> str:
    html = client.get(reverse("reports:overview"), {"start": day, "end": day}).content.decode()
    return re.search(r'data-figure="sessions">([^<]*)<', html).group(1)


def exported_ids(client: Client, day: str) -> list[str]:
    response = client.get(reverse("reports:sessions_csv"), {"start": day, "end": day})
    rows = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    return [row["session_id"] for row in rows]


@pytest.mark.parametrize(("zone", "day"), [("UTC", "2026-03-10"), ("America/Los_Angeles", "2026-03-09")])
def test_a_session_counts_on_the_day_it_started_where_the_team_is(admin_client: Client, make_session, settings,
                                                                     zone: str, day: str) -> None:
    settings.TIME_ZONE = zone
    session = make_session(at=LATE_EVENING_IN_CALIFORNIA, decision="nevermind")
    services.rollups_refresh(first_day=date(2026, 3, 8), last_day=date(2026, 3, 11))
    assert list(DailyStat.objects.values_list("day", "sessions")) == [(date.fromisoformat(day), 1)]
    assert sessions_figure(admin_client, day) == "1"
    assert exported_ids(admin_client, day) == [session.public_id]
    other_day = (date.fromisoformat(day) + timedelta(days=1 if zone != "UTC" else -1)).isoformat()
    assert sessions_figure(admin_client, other_day) == "0" and exported_ids(admin_client, other_day) == []
    html = admin_client.get(reverse("reports:overview"), {"start": day, "end": day}).content.decode()
    assert f"({zone})" in html


def test_a_day_runs_from_midnight_to_midnight_on_the_teams_clocks(settings) -> None:
    settings.TIME_ZONE = "America/Los_Angeles"
    start, end = days.bounds(date(2026, 3, 8), date(2026, 3, 8))  # clocks go forward: a 23-hour day
    assert (start.astimezone(UTC), end.astimezone(UTC)) == (datetime(2026, 3, 8, 8, tzinfo=UTC),
                                                          datetime(2026, 3, 9, 7, tzinfo=UTC))
    start, end = days.bounds(date(2026, 11, 1), date(2026, 11, 1))  # and back: 25 hours
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=25)
    assert days.day_of(datetime(2026, 3, 9, 6, 59, tzinfo=UTC)) == date(2026, 3, 8)
    assert days.today(datetime(2026, 3, 9, 7, 0, tzinfo=UTC)) == date(2026, 3, 9)


def test_the_default_range_has_closed_watch_windows_and_ends_today_where_the_team_is(
        admin_client: Client, settings, monkeypatch) -> None:  # noqa: ANN001
    from django.utils import timezone

    settings.TIME_ZONE = "Pacific/Auckland"  # already tomorrow there when it is the afternoon in UTC
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 6, 1, 15, 0, tzinfo=UTC))
    html = admin_client.get(reverse("reports:overview")).content.decode()
    # Today there is June 2; the last day whose 30-day windows (and 1-day pages) have closed is May 1, and
    # the range reaches 30 days before it, so confirmed saves are in it.
    assert settings.SAVE_WATCH_DAYS == 30 and settings.SESSION_TTL_SECONDS == 86400
    assert 'value="2026-06-02"' in html and 'value="2026-04-02"' in html
