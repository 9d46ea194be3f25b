"""`BillingProvider.paid_invoices` (billing/providers/base.py), one suite for every provider: each provider
module asks its local server through the official SDK for the invoices a subscription paid since a date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.providers import ProviderError, provider_for

pytestmark = pytest.mark.billing

NOW = datetime.now(UTC).replace(microsecond=0)
SAVED = NOW - timedelta(days=40)


@pytest.fixture
def provider(fake_billing):  # noqa: ANN001, ANN201
    return provider_for(fake_billing.slug, fake_billing.credentials())


def test_paid_invoices_are_those_paid_since_the_date_oldest_first(fake_billing, provider) -> None:  # noqa: ANN001
    sub = fake_billing.seed(customer_id="cus_paid")
    other = fake_billing.seed(customer_id="cus_paid", plan="pro")
    fake_billing.invoice(sub, amount=Decimal("49.00"), paid_at=SAVED - timedelta(days=5))  # before the save
    renewal = fake_billing.invoice(sub, amount=Decimal("49.00"), paid_at=SAVED + timedelta(days=10))
    # Created before the save, paid after it (a payment retried): it counts from when it was paid.
    retried = fake_billing.invoice(sub, amount=Decimal("34.30"), paid_at=SAVED + timedelta(days=25),
                                   created=SAVED - timedelta(days=2))
    fake_billing.invoice(sub, amount=Decimal("49.00"), paid_at=None, status="unpaid",
                         created=NOW - timedelta(days=1))
    fake_billing.invoice(other, amount=Decimal("99.00"), paid_at=SAVED + timedelta(days=3))  # another subscription
    got = provider.paid_invoices(sub, since=SAVED)
    assert [(i.id, i.amount, i.currency, i.paid_at) for i in got] == [
        (renewal, Decimal("49.00"), "USD", SAVED + timedelta(days=10)),
        (retried, Decimal("34.30"), "USD", SAVED + timedelta(days=25))]
    assert fake_billing.writes(sub) == 0  # a read: nothing changed


def test_amounts_are_in_each_currencys_own_unit(fake_billing, provider) -> None:  # noqa: ANN001
    sub = fake_billing.seed(customer_id="cus_yen")
    fake_billing.invoice(sub, amount=Decimal("4900"), currency="JPY", paid_at=SAVED + timedelta(days=1))
    fake_billing.invoice(sub, amount=Decimal("12.34"), currency="EUR", paid_at=SAVED + timedelta(days=2))
    fake_billing.invoice(sub, amount=Decimal("0"), paid_at=SAVED + timedelta(days=3))  # a paused term's invoice
    got = provider.paid_invoices(sub, since=SAVED)
    assert [(i.amount, i.currency) for i in got] == [(Decimal("4900"), "JPY"), (Decimal("12.34"), "EUR"),
                                                      (Decimal("0"), "USD")]


def test_no_paid_invoice_since_is_an_empty_list(fake_billing, provider) -> None:  # noqa: ANN001
    sub = fake_billing.seed(customer_id="cus_none")
    assert provider.paid_invoices(sub, since=NOW + timedelta(minutes=1)) == []


def test_the_paid_invoices_of_an_unknown_subscription_are_a_permanent_404(fake_billing, provider) -> None:  # noqa: ANN001
    with pytest.raises(ProviderError) as caught:
        provider.paid_invoices("sub_does_not_exist", since=SAVED)
    assert caught.value.retryable is False
    assert caught.value.status_code == 404


def test_a_failed_read_of_paid_invoices_is_retryable(fake_billing, provider) -> None:  # noqa: ANN001
    sub = fake_billing.seed(customer_id="cus_flaky")
    fake_billing.fail_next(503, times=2)
    with pytest.raises(ProviderError) as caught:
        provider.paid_invoices(sub, since=SAVED)
    assert caught.value.retryable is True
