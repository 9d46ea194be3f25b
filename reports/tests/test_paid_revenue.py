"""Revenue kept from what saves actually paid, as the channel named in BRIGHTBACK_PAID_AFTER_SAVES reports
it (billing's, in production: billing/tests/test_save_payments.py drives it end to end). Here a channel of
the test's own answers, so each case states its numbers; and reports never import a channel."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from reports import selectors, services
from reports.models import DailyOfferStat, DailyStat
from reports.summary import report_summary

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
PAID: dict[int, dict[str, Decimal]] = {}


def paid_after_saves(*, start: datetime, end: datetime) -> dict[int, dict[str, Decimal]]:
    return dict(PAID)


@pytest.fixture
def channel(settings):  # noqa: ANN001, ANN201
    settings.BRIGHTBACK_PAID_AFTER_SAVES = [f"{__name__}.paid_after_saves"]
    PAID.clear()
    yield PAID
    PAID.clear()


def test_saves_count_what_they_paid_and_the_rest_their_estimate(channel, make_session) -> None:  # noqa: ANN001
    paid = make_session(at=DAY, value=49, decision="nevermind", confirmed=True)
    make_session(at=DAY + timedelta(minutes=1), value=30, decision="nevermind", confirmed=True)  # estimated: 30.00
    abroad = make_session(at=DAY + timedelta(minutes=2), value=20, decision="nevermind", confirmed=True)
    unconfirmed = make_session(at=DAY + timedelta(minutes=3), value=10, decision="nevermind")
    offer = make_session(at=DAY + timedelta(minutes=4), value=100, decision="accept", offer="discount-30",
                         confirmed=True)
    channel.update({paid.pk: {"USD": Decimal("39.20")},
                    abroad.pk: {"EUR": Decimal("18.00")},  # not the App's currency: its estimate stays
                    unconfirmed.pk: {"USD": Decimal("10.00")},  # not saved (yet): no revenue kept
                    offer.pk: {"USD": Decimal("65.00")}})
    services.rollups_refresh(first_day=DAY.date(), last_day=DAY.date())

    stat = DailyStat.objects.get(day=DAY.date())
    assert (stat.saved_nevermind, stat.saved_offer) == (3, 1)
    # 39.20 + 65.00 paid; 30.00 + 20.00 estimated (Nevermind: the whole 30-day window).
    assert (stat.revenue_kept, stat.revenue_invoiced, stat.saved_invoiced) == (
        Decimal("154.20"), Decimal("104.20"), 2)
    offer_stat = DailyOfferStat.objects.get(day=DAY.date(), offer_code="discount-30")
    assert (offer_stat.revenue_kept, offer_stat.revenue_invoiced) == (Decimal("65.00"), Decimal("65.00"))

    report = selectors.ReportFilter(first_day=DAY.date(), last_day=DAY.date())
    assert report_summary(report)["revenue_kept"] == [
        {"currency": "USD", "amount": 154.2, "from_invoices": 104.2, "estimated": 50.0}]
    figures = selectors.overview(report)
    assert selectors.revenue_source(figures) == ("2 of 4 saves from the invoices they paid, as the billing system "
                                                 "reports them; the rest estimated from each plan's value")


def test_without_a_channel_that_read_payments_every_save_is_estimated(channel, make_session) -> None:  # noqa: ANN001
    make_session(at=DAY, value=49, decision="nevermind", confirmed=True)
    services.rollups_refresh(first_day=DAY.date(), last_day=DAY.date())
    report = selectors.ReportFilter(first_day=DAY.date(), last_day=DAY.date())
    figures = selectors.overview(report)
    assert figures.revenue_kept == [{"currency": "USD", "amount": Decimal("49.00"), "invoiced": Decimal("0.00"),
                                     "estimated": Decimal("49.00")}]
    assert selectors.revenue_source(figures) == "estimated: each plan's value over the window, net of its offer"


def test_reports_never_import_a_channel() -> None:
    root = Path(__file__).resolve().parent.parent
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(name.split(".")[0] in {"billing", "alerts", "webhooks"} for name in names), path.name
