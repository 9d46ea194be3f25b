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


def test_the_days_that_can_change_are_those_of_open_sessions_and_those_being_confirmed(settings) -> None:  # noqa: ANN001
    settings.SAVE_WATCH_DAYS = 30
    settings.SESSION_TTL_SECONDS = 24 * 3600
    today = date(2026, 6, 30)
    assert services.days_that_can_change(today=today) == [
        (date(2026, 5, 23), date(2026, 6, 1)), (date(2026, 6, 29), date(2026, 6, 30))]
    settings.SESSION_TTL_SECONDS = 3 * 24 * 3600 + 1  # pages open for three days and a second
    assert services.days_that_can_change(today=today)[-1] == (date(2026, 6, 26), date(2026, 6, 30))


def test_a_save_confirmed_a_month_later_reaches_the_day_it_started(make_session) -> None:  # noqa: ANN001
    started = timezone.now() - timedelta(days=31)
    session = make_session(at=started, value=40, decision="nevermind")
    assert refresh() > 0
    stat = DailyStat.objects.get(day=started.date())
    assert (stat.sessions, stat.deflected, stat.saved, stat.revenue_kept, stat.value_deflected) == (
        1, 1, 0, Decimal("0.00"), Decimal("40.00"))
    Event.objects.create(app=session.app, session=session, type=Event.Type.SAVE_CONFIRMED, data={})
    refresh()
    stat = DailyStat.objects.get(day=started.date())
    assert (stat.saved_nevermind, stat.revenue_kept, stat.value_deflected) == (1, Decimal("40.00"), Decimal("0.00"))


def test_refreshing_twice_changes_nothing(make_session) -> None:  # noqa: ANN001
    make_session(value=10, decision="accept", offer="discount-30", reason="too-expensive")
    services.rollups_refresh_recent()
    first = list(DailyStat.objects.values("day", "sessions", "accepted", "deflected_offer", "value_deflected"))
    services.rollups_refresh_recent()
    assert list(DailyStat.objects.values("day", "sessions", "accepted", "deflected_offer", "value_deflected")) == first
    assert first[0]["value_deflected"] == Decimal("7.00")


@pytest.mark.django_db(transaction=True)
def test_two_refreshes_at_once_count_each_session_once(make_session) -> None:  # noqa: ANN001
    import threading

    from django.db import connection

    from conftest import need

    # SQLite's in-memory test database refuses a second writer ("table is locked") rather than waiting.
    need(connection.vendor == "postgresql", "two writers at once need PostgreSQL")
    for _ in range(30):
        make_session(value=10, decision="nevermind")
    errors: list[Exception] = []

    def run() -> None:
        try:
            services.rollups_refresh_recent()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(DailyStat.objects.values_list("sessions", flat=True)) == 30


def test_sessions_never_opened_and_test_mode_sessions_are_in_no_count_unless_asked_for(admin_client,  # noqa: ANN001
                                                                                       make_session) -> None:
    from reports.selectors import ReportFilter, overview

    make_session(decision="nevermind")
    for _ in range(3):  # three loads of the account page without a click: three sessions, never opened
        make_session(opened=False)
    make_session(decision="cancel", is_test=True)
    services.rollups_refresh_recent()
    today = timezone.localdate()
    live = overview(ReportFilter(first_day=today, last_day=today))
    assert (live.sessions, live.decided, live.sessions - live.decided) == (1, 1, 0)
    with_test = overview(ReportFilter(first_day=today, last_day=today, include_test=True))
    assert (with_test.sessions, with_test.canceled) == (2, 1)
    page = admin_client.get("/admin/reports/")
    assert 'data-figure="sessions">1<' in page.content.decode()
    page = admin_client.get("/admin/reports/", {"include_test": "on"})
    assert 'data-figure="sessions">2<' in page.content.decode()


def _accounts(day: date) -> tuple[int, int, int, int]:
    stat = DailyStat.objects.filter(day=day)
    return (sum(s.sessions for s in stat), sum(s.deflected for s in stat), sum(s.canceled_accounts for s in stat),
            sum(s.saved for s in stat))


def test_a_nevermind_then_a_cancel_in_a_later_session_is_one_canceled_account(make_session) -> None:  # noqa: ANN001
    now = timezone.now()
    make_session(at=now - timedelta(hours=5), value=49, decision="nevermind", account="acct_1")
    make_session(at=now - timedelta(hours=5) + timedelta(seconds=1), value=49, decision="cancel", account="acct_1")
    # Another account clicked Nevermind twice: one deflected account, two sessions.
    make_session(at=now - timedelta(hours=4), decision="nevermind", account="acct_2")
    make_session(at=now - timedelta(hours=3), decision="nevermind", account="acct_2")
    services.rollups_refresh(first_day=(now - timedelta(days=1)).date(), last_day=now.date())
    from reports.selectors import ReportFilter, overview

    figures = overview(ReportFilter(first_day=(now - timedelta(days=1)).date(), last_day=now.date()))
    assert (figures.sessions, figures.nevermind, figures.canceled) == (4, 3, 1)  # sessions still there
    assert (figures.deflected, figures.canceled_accounts, figures.decided_accounts) == (1, 1, 2)


def test_a_later_cancel_turns_an_old_deflect_into_a_cancel_when_beat_refreshes(make_session) -> None:  # noqa: ANN001
    now = timezone.now()
    old = now - timedelta(days=60)
    make_session(at=old, value=49, decision="nevermind", account="acct_back", confirmed=True)
    services.rollups_refresh_all()
    assert _accounts(old.date()) == (1, 1, 0, 1)
    make_session(at=now - timedelta(minutes=5), value=49, decision="cancel", account="acct_back")
    refresh()  # beat: the recent days, and the old day whose account decided again
    assert _accounts(old.date()) == (1, 0, 0, 0)
    assert _accounts(timezone.localdate()) == (1, 0, 1, 0)
