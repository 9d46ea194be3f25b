"""What it takes to cancel (clicks and seconds from opening the page to the Cancel), checked against a
computation by hand."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from evidence.models import Step
from evidence.selectors import cancel_effort as evidence_cancel_effort
from evidence.selectors import percentile
from flows.models import CancelSession
from reports import days, selectors
from reports.filters import ReportFilterForm

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
RANGE = {"start": "2026-03-01", "end": "2026-03-31"}


def steps(session: CancelSession, clicks: list[tuple[str, float]], *, status: int = 303) -> None:
    """A view when the page opened, then each (action, seconds after opening) click."""
    Step.objects.create(session=session, at=session.opened_at, kind="view", source="page", name="reasons")
    for action, seconds in clicks:
        Step.objects.create(session=session, at=session.opened_at + timedelta(seconds=seconds), kind="click",
                            source="page", action=action, status=status if action == "cancel" else 200)


@pytest.fixture
def four_cancels(make_session):  # noqa: ANN001, ANN201
    """Four sessions that canceled, by hand:
    clicks  2, 3, 1, 5  → sorted 1 2 3 5: median (2 + 3) / 2 = 2.5; p90 at rank 0.9 × 3 = 2.7: 3 + 0.7 × 2 = 4.4
    seconds 10, 20, 5, 100 → sorted 5 10 20 100: median 15; p90 at rank 2.7: 20 + 0.7 × 80 = 76
    and what must not count: a nevermind, a cancel on another month, and a click after the Cancel.
    """
    a = make_session(at=DAY, decision="cancel")
    steps(a, [("continue", 4), ("cancel", 10), ("back", 12)])  # the click after the Cancel is not counted
    b = make_session(at=DAY, decision="cancel")
    steps(b, [("continue", 5), ("back", 8), ("cancel", 20)])
    c = make_session(at=DAY, decision="cancel")
    steps(c, [("cancel", 5)])
    d = make_session(at=DAY, decision="cancel")
    steps(d, [("continue", 10), ("back", 30), ("continue", 50), ("cancel", 90), ("cancel", 100)])
    # A first Cancel that was refused (the page had expired) is not the Cancel: the one that went through is.
    Step.objects.filter(session=d, action="cancel", at=d.opened_at + timedelta(seconds=90)).update(status=410)
    stayed = make_session(at=DAY, decision="nevermind")
    steps(stayed, [("nevermind", 3)])
    later = make_session(at=DAY + timedelta(days=40), decision="cancel")
    steps(later, [("cancel", 1)])


def report():  # noqa: ANN201
    form = ReportFilterForm(RANGE, apps=None)
    assert form.is_valid(), form.errors
    return form.report()


def test_percentiles_interpolate_between_the_nearest_ranks():
    assert percentile([1, 2, 3, 5], 0.5) == 2.5
    assert percentile([5, 1, 3, 2], 0.9) == pytest.approx(4.4)
    assert percentile([7], 0.9) == 7
    assert percentile([], 0.5) is None


def test_clicks_and_seconds_to_cancel_match_the_hand_computation(four_cancels):  # noqa: ANN001
    effort = selectors.cancel_effort(report())
    assert effort["clicks"] == {"count": 4, "median": 2.5, "p90": pytest.approx(4.4)}
    assert effort["seconds"] == {"count": 4, "median": 15.0, "p90": pytest.approx(76.0)}
    assert effort["total"] == 4


def test_a_range_with_more_cancels_reads_its_newest(four_cancels):  # noqa: ANN001
    """Bounded at any size: the newest two Cancels (d at 100 s, its first that went through, with 5 clicks,
    and b at 20 s with 3) are read, and the caption says so."""
    report_ = report()
    start, end = days.bounds(report_.first_day, report_.last_day)
    effort = evidence_cancel_effort(report_.sessions("session__"), since=start, until=end + timedelta(days=1),
                                    limit=2)
    assert effort["clicks"] == {"count": 2, "median": 4.0, "p90": pytest.approx(4.8)}
    assert effort["seconds"] == {"count": 2, "median": 60.0, "p90": pytest.approx(92.0)}
    assert effort["total"] is None  # not counted: that would read every Cancel of the range


def test_the_overview_says_when_it_read_the_newest(admin_client: Client, four_cancels, monkeypatch):  # noqa: ANN001
    import evidence.selectors

    monkeypatch.setitem(evidence.selectors.cancel_effort.__kwdefaults__, "limit", 3)
    html = admin_client.get(reverse("reports:overview"), RANGE).content.decode()
    assert "over the newest 3 sessions that canceled on the page" in html


def test_the_overview_shows_them(admin_client: Client, four_cancels):  # noqa: ANN001
    html = admin_client.get(reverse("reports:overview"), RANGE).content.decode()
    clicks = re.search(r'<tr data-effort="clicks">(.*?)</tr>', html, re.S).group(1)
    seconds = re.search(r'<tr data-effort="seconds">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r"<td>([^<]*)</td>", clicks) == ["2.5", "4.4"]
    assert re.findall(r"<td>([^<]*)</td>", seconds) == ["15.0", "76.0"]
    assert "over 4 sessions that canceled on the page" in html


def test_no_cancel_shows_a_dash(admin_client: Client, make_session):  # noqa: ANN001
    make_session(at=DAY, decision="nevermind")
    html = admin_client.get(reverse("reports:overview"), RANGE).content.decode()
    clicks = re.search(r'<tr data-effort="clicks">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r"<td>([^<]*)</td>", clicks) == ["—", "—"]
