"""The rollups follow the data: beat rewrites the days that can still change."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from flows.models import Event
from reports import services
from reports.models import DailyStat
from reports.tasks import refresh

pytestmark = pytest.mark.django_db


def test_the_days_that_can_change_are_the_last_two_and_those_being_confirmed(settings) -> None:  # noqa: ANN001
    settings.SAVE_WATCH_DAYS = 30
    today = date(2026, 6, 30)
    assert services.days_that_can_change(today=today) == [
        (date(2026, 5, 23), date(2026, 6, 1)), (date(2026, 6, 29), date(2026, 6, 30))]


def test_a_save_confirmed_a_month_later_reaches_the_day_it_started(make_session) -> None:  # noqa: ANN001
    started = timezone.now() - timedelta(days=31)
    session = make_session(at=started, value=40, decision="nevermind")
    assert refresh() > 0
    stat = DailyStat.objects.get(day=started.date())
    assert (stat.sessions, stat.nevermind, stat.confirmed, stat.revenue_saved) == (1, 1, 0, Decimal("40.00"))
    Event.objects.create(app=session.app, session=session, type=Event.Type.SAVE_CONFIRMED, data={})
    refresh()
    assert DailyStat.objects.get(day=started.date()).confirmed == 1


def test_refreshing_twice_changes_nothing(make_session) -> None:  # noqa: ANN001
    make_session(value=10, decision="accept", offer="discount-30", reason="too-expensive")
    services.rollups_refresh_recent()
    first = list(DailyStat.objects.values("day", "sessions", "accepted", "revenue_saved"))
    services.rollups_refresh_recent()
    assert list(DailyStat.objects.values("day", "sessions", "accepted", "revenue_saved")) == first
    assert first[0]["revenue_saved"] == Decimal("7.00")
