"""What a save actually paid: read from the billing system's paid invoices when beat confirms the save
after its watch window (billing/payments.py), for every provider through its local server, and what the
reports then show as revenue kept."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.models import SavePayment
from flows import services as flow_services
from flows.models import Decision, Event
from flows.snippet_data import clean_snippet_data
from reports import days, selectors
from reports import services as report_services
from reports.models import DailyStat
from reports.summary import report_summary

pytestmark = pytest.mark.billing


@pytest.fixture
def saved(demo_app, snippet_data, fake_billing, settings):  # noqa: ANN001, ANN201
    """A customer who chose Nevermind just over a watch window ago, on a subscription the fake bills."""
    creds = fake_billing.credentials()
    services.connection_save(app=demo_app, provider=fake_billing.slug, api_key=creds.api_key, site=creds.site,
                             api_base=creds.api_base)
    sub = fake_billing.seed(customer_id="cus_jane")
    data = snippet_data(subscription_id=sub, account={"internal_id": "acct_42", "plan": "basic", "value": 49})
    session = flow_services.session_start(app=demo_app, data=clean_snippet_data(data))
    decision = flow_services.decision_record(session=session, kind="nevermind", reason_code="")
    saved_at = (timezone.now() - timedelta(days=settings.SAVE_WATCH_DAYS + 1)).replace(microsecond=0)
    Decision.objects.filter(pk=decision.pk).update(created_at=saved_at)
    type(session).objects.filter(pk=session.pk).update(created_at=saved_at - timedelta(minutes=2),
                                                        opened_at=saved_at - timedelta(minutes=1))
    return sub, decision, saved_at


def test_a_confirmed_save_keeps_what_its_invoices_paid_over_the_window(saved, fake_billing, settings) -> None:  # noqa: ANN001
    sub, decision, saved_at = saved
    window_end = saved_at + timedelta(days=settings.SAVE_WATCH_DAYS)
    fake_billing.invoice(sub, amount=Decimal("49.00"), paid_at=saved_at - timedelta(days=3))  # before the save
    fake_billing.invoice(sub, amount=Decimal("39.20"), paid_at=saved_at + timedelta(days=12))
    fake_billing.invoice(sub, amount=Decimal("49.00"), paid_at=None, status="unpaid",
                         created=saved_at + timedelta(days=5))
    fake_billing.invoice(sub, amount=Decimal("49.00"), paid_at=window_end + timedelta(hours=1))  # after the window

    assert flow_services.saves_confirm_due() == 1

    assert Event.objects.filter(session=decision.session, type=Event.Type.SAVE_CONFIRMED).exists()
    [payment] = SavePayment.objects.filter(session=decision.session)
    assert (payment.currency, payment.amount, payment.invoices) == ("USD", Decimal("39.20"), 1)
    assert fake_billing.writes(sub) == 0  # reading what was paid changes nothing


def test_a_save_that_paid_nothing_over_the_window_keeps_zero(saved, fake_billing) -> None:  # noqa: ANN001
    _sub, decision, _saved_at = saved
    assert flow_services.saves_confirm_due() == 1
    [payment] = SavePayment.objects.filter(session=decision.session)
    assert (payment.currency, payment.amount, payment.invoices) == ("USD", Decimal("0.00"), 0)


def test_a_provider_that_fails_to_list_invoices_leaves_the_save_confirmed_and_estimated(  # noqa: ANN001
        saved, fake_billing, monkeypatch) -> None:
    sub, decision, saved_at = saved
    fake_billing.invoice(sub, amount=Decimal("39.20"), paid_at=saved_at + timedelta(days=12))
    from billing import payments

    original = payments.provider_for

    def failing_on_invoices(slug, credentials):  # noqa: ANN001, ANN202
        # The provider's own calls to its server, whose answers to the invoice reads are 503s.
        provider = original(slug, credentials)
        read = provider.paid_invoices

        def paid_invoices(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            fake_billing.fail_next(503, times=5)
            return read(*args, **kwargs)

        monkeypatch.setattr(provider, "paid_invoices", paid_invoices)
        return provider

    monkeypatch.setattr(payments, "provider_for", failing_on_invoices)
    assert flow_services.saves_confirm_due() == 1
    assert Event.objects.filter(session=decision.session, type=Event.Type.SAVE_CONFIRMED).exists()
    assert not SavePayment.objects.filter(session=decision.session).exists()


def test_reports_value_a_save_at_what_it_paid_and_say_so(saved, fake_billing, settings, admin_client: Client) -> None:  # noqa: ANN001
    sub, decision, saved_at = saved
    fake_billing.invoice(sub, amount=Decimal("39.20"), paid_at=saved_at + timedelta(days=12))
    flow_services.saves_confirm_due()
    day = days.day_of(saved_at - timedelta(minutes=2))  # the session's day
    report_services.rollups_refresh(first_day=day, last_day=day)

    [stat] = DailyStat.objects.filter(day=day, app=decision.session.app)
    # The estimate would be the plan's 49.00 over the 30-day window; the customer paid 39.20.
    assert (stat.saved_nevermind, stat.revenue_kept, stat.revenue_invoiced, stat.saved_invoiced) == (
        1, Decimal("39.20"), Decimal("39.20"), 1)
    report = selectors.ReportFilter(first_day=day, last_day=day, include_test=True)  # the demo App is in test mode
    assert report_summary(report)["revenue_kept"] == [
        {"currency": "USD", "amount": 39.2, "from_invoices": 39.2, "estimated": 0.0}]
    html = admin_client.get(reverse("reports:overview"), {"start": day.isoformat(), "end": day.isoformat(),
                                                          "include_test": "on"}).content
    assert b"from the invoices the saved customers paid" in html and b"39.20 USD" in html
