"""The provider contract (billing/providers/base.py), one suite for every provider.

Each test drives a provider module through its official SDK over real HTTP to that provider's local
server (billing/testing), then reads the effect back from the server's own state. Nothing is patched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing.providers import ProviderError, provider_for
from billing.providers.base import CancelReason, Credentials, add_months

pytestmark = pytest.mark.billing


def months_ahead(months: int) -> datetime:
    return add_months(datetime.now(UTC), months)


@pytest.fixture
def provider(fake_billing):  # noqa: ANN001, ANN201
    return provider_for(fake_billing.slug, fake_billing.credentials())


@pytest.fixture
def sub(fake_billing) -> str:  # noqa: ANN001
    return fake_billing.seed(customer_id="cus_jane")


def key(name: str) -> str:
    return f"bb_test_{name}"


# --- connection and reads -----------------------------------------------------------------------

def test_connection_check_describes_what_it_found(fake_billing, provider) -> None:  # noqa: ANN001
    found = provider.connection_check()
    assert isinstance(found, str) and found.strip()
    assert provider.name in found


def test_connection_check_with_a_wrong_key_fails_for_good(fake_billing) -> None:  # noqa: ANN001
    provider = provider_for(fake_billing.slug, fake_billing.bad_credentials())
    with pytest.raises(ProviderError) as caught:
        provider.connection_check()
    assert caught.value.retryable is False
    assert caught.value.status_code == 401
    assert caught.value.message


def test_subscription_get_reads_the_subscription(fake_billing, provider, sub) -> None:  # noqa: ANN001
    got = provider.subscription_get(sub)
    assert got.id == sub
    assert got.plan == "basic"
    assert got.is_active and not got.canceled and not got.cancel_at_period_end and not got.paused
    assert got.current_period_end is not None and got.current_period_end > datetime.now(UTC)


def test_an_unknown_subscription_is_a_permanent_404(fake_billing, provider) -> None:  # noqa: ANN001
    with pytest.raises(ProviderError) as caught:
        provider.subscription_get("sub_does_not_exist")
    assert caught.value.retryable is False
    assert caught.value.status_code == 404


def test_subscriptions_for_customer_lists_only_active_ones(fake_billing, provider) -> None:  # noqa: ANN001
    first = fake_billing.seed(customer_id="cus_two")
    second = fake_billing.seed(customer_id="cus_two", plan="pro")
    fake_billing.seed(customer_id="cus_someone_else")
    provider.subscription_cancel(first, at_period_end=False, prorate=False, invoice_now=False, idempotency_key=key("c"))
    got = provider.subscriptions_for_customer("cus_two")
    assert [s.id for s in got] == [second]


# --- cancel -------------------------------------------------------------------------------------

def test_cancel_at_period_end_leaves_it_active_until_then(fake_billing, provider, sub) -> None:  # noqa: ANN001
    result = provider.subscription_cancel(sub, at_period_end=True, prorate=False, invoice_now=False,
                                          idempotency_key=key("cancel"))
    assert result.changed
    remote = fake_billing.remote(sub)
    assert remote.cancel_at_period_end and not remote.canceled
    assert result.subscription.cancel_at_period_end and result.subscription.is_active


def test_cancel_now_ends_it(fake_billing, provider, sub) -> None:  # noqa: ANN001
    result = provider.subscription_cancel(sub, at_period_end=False, prorate=True, invoice_now=True,
                                          idempotency_key=key("cancel"))
    assert result.changed
    assert fake_billing.remote(sub).canceled
    assert not result.subscription.is_active


@pytest.mark.parametrize("at_period_end", [True, False])
def test_cancel_twice_changes_the_subscription_once(fake_billing, provider, sub, at_period_end) -> None:  # noqa: ANN001
    for _ in range(2):
        last = provider.subscription_cancel(sub, at_period_end=at_period_end, prorate=False, invoice_now=False,
                                            idempotency_key=key("cancel"))
    assert last.changed is False
    assert fake_billing.writes(sub) == 1


def test_reactivate_removes_a_scheduled_cancel_once(fake_billing, provider, sub) -> None:  # noqa: ANN001
    provider.subscription_cancel(sub, at_period_end=True, prorate=False, invoice_now=False, idempotency_key=key("c"))
    first = provider.subscription_reactivate(sub, idempotency_key=key("keep"))
    again = provider.subscription_reactivate(sub, idempotency_key=key("keep"))
    assert first.changed and not again.changed
    assert not first.subscription.cancel_at_period_end and first.subscription.is_active
    remote = fake_billing.remote(sub)
    assert not remote.cancel_at_period_end and not remote.canceled
    assert fake_billing.writes(sub) == 2


def test_reactivate_of_a_subscription_not_set_to_cancel_sends_nothing(fake_billing, provider, sub) -> None:  # noqa: ANN001
    assert provider.subscription_reactivate(sub, idempotency_key=key("keep")).changed is False
    assert fake_billing.writes(sub) == 0


def test_reactivate_of_an_ended_subscription_fails_for_good(fake_billing, provider, sub) -> None:  # noqa: ANN001
    provider.subscription_cancel(sub, at_period_end=False, prorate=False, invoice_now=False, idempotency_key=key("c"))
    with pytest.raises(ProviderError) as caught:
        provider.subscription_reactivate(sub, idempotency_key=key("keep"))
    assert caught.value.retryable is False and "cannot be kept" in caught.value.message
    assert fake_billing.remote(sub).canceled


# --- offers -------------------------------------------------------------------------------------

def test_coupon_is_applied_once(fake_billing, provider, sub) -> None:  # noqa: ANN001
    first = provider.coupon_apply(sub, coupon="SAVE30", idempotency_key=key("coupon"))
    again = provider.coupon_apply(sub, coupon="SAVE30", idempotency_key=key("coupon"))
    assert first.changed and not again.changed
    assert fake_billing.remote(sub).coupons == ("SAVE30",)
    assert fake_billing.writes(sub) == 1


def test_an_unknown_coupon_fails_for_good_and_names_it(fake_billing, provider, sub) -> None:  # noqa: ANN001
    with pytest.raises(ProviderError) as caught:
        provider.coupon_apply(sub, coupon="NOPE99", idempotency_key=key("coupon"))
    assert caught.value.retryable is False
    assert "NOPE99" in caught.value.message
    assert fake_billing.remote(sub).coupons == ()
    assert fake_billing.writes(sub) == 0


def test_pause_suspends_billing_once(fake_billing, provider, sub) -> None:  # noqa: ANN001
    first = provider.subscription_pause(sub, months=2, resumes_at=months_ahead(2), idempotency_key=key("pause"))
    again = provider.subscription_pause(sub, months=2, resumes_at=months_ahead(2), idempotency_key=key("pause"))
    assert first.changed and not again.changed
    assert fake_billing.remote(sub).paused
    assert fake_billing.writes(sub) == 1


def test_plan_change_now_moves_the_plan_once(fake_billing, provider, sub) -> None:  # noqa: ANN001
    first = provider.plan_change(sub, plan="pro", at_renewal=False, prorate=True, idempotency_key=key("plan"))
    again = provider.plan_change(sub, plan="pro", at_renewal=False, prorate=True, idempotency_key=key("plan"))
    assert first.changed and not again.changed
    assert fake_billing.remote(sub).plan == "pro"
    assert fake_billing.writes(sub) == 1


def test_plan_change_at_renewal_keeps_the_plan_until_then(fake_billing, provider, sub) -> None:  # noqa: ANN001
    if fake_billing.slug == "paddle":  # Paddle cannot schedule an item change: refused, never done now
        with pytest.raises(ProviderError) as caught:
            provider.plan_change(sub, plan="pro", at_renewal=True, prorate=False, idempotency_key=key("plan"))
        assert caught.value.retryable is False and "renewal" in caught.value.message
        assert fake_billing.remote(sub).plan == "basic"
        assert fake_billing.writes(sub) == 0
        return
    first = provider.plan_change(sub, plan="pro", at_renewal=True, prorate=False, idempotency_key=key("plan"))
    again = provider.plan_change(sub, plan="pro", at_renewal=True, prorate=False, idempotency_key=key("plan"))
    assert first.changed and not again.changed
    remote = fake_billing.remote(sub)
    assert (remote.plan, remote.pending_plan) == ("basic", "pro")
    assert fake_billing.writes(sub) == 1


def test_an_unknown_plan_fails_for_good_and_names_it(fake_billing, provider, sub) -> None:  # noqa: ANN001
    with pytest.raises(ProviderError) as caught:
        provider.plan_change(sub, plan="platinum-9", at_renewal=False, prorate=True, idempotency_key=key("plan"))
    assert caught.value.retryable is False
    assert "platinum-9" in caught.value.message
    assert fake_billing.remote(sub).plan == "basic"


def test_trial_extension_moves_the_trial_end_once(fake_billing, provider) -> None:  # noqa: ANN001
    sub = fake_billing.seed(customer_id="cus_trial", trialing=True)
    before = fake_billing.remote(sub).trial_end
    assert before is not None
    until = (before + timedelta(days=7)).replace(microsecond=0)
    first = provider.trial_extend(sub, until=until, idempotency_key=key("trial"))
    again = provider.trial_extend(sub, until=until, idempotency_key=key("trial"))
    assert first.changed and not again.changed
    assert abs((fake_billing.remote(sub).trial_end - until).total_seconds()) < 2
    assert fake_billing.writes(sub) == 1


def test_trial_extension_of_a_paying_subscription_moves_the_next_bill(fake_billing, provider, sub) -> None:  # noqa: ANN001
    before = fake_billing.remote(sub).next_bill_at
    assert before is not None
    until = (before + timedelta(days=10)).replace(microsecond=0)
    assert provider.trial_extend(sub, until=until, idempotency_key=key("trial")).changed
    assert abs((fake_billing.remote(sub).next_bill_at - until).total_seconds()) < 2
    assert not fake_billing.remote(sub).canceled


# --- failure classes ----------------------------------------------------------------------------

@pytest.mark.parametrize("status", [401, 403, 404, 422])
def test_client_errors_are_permanent(fake_billing, provider, sub, status) -> None:  # noqa: ANN001
    fake_billing.fail_next(status, times=3)
    with pytest.raises(ProviderError) as caught:
        provider.subscription_cancel(sub, at_period_end=True, prorate=False, invoice_now=False,
                                     idempotency_key=key("cancel"))
    assert caught.value.retryable is False
    assert caught.value.status_code == status
    assert fake_billing.writes(sub) == 0


def test_429_is_retryable_and_keeps_retry_after(fake_billing, provider, sub) -> None:  # noqa: ANN001
    fake_billing.fail_next(429, retry_after=7, times=3)
    with pytest.raises(ProviderError) as caught:
        provider.coupon_apply(sub, coupon="SAVE30", idempotency_key=key("coupon"))
    assert caught.value.retryable is True
    assert caught.value.status_code == 429
    assert caught.value.retry_after == 7
    assert fake_billing.writes(sub) == 0


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retryable(fake_billing, provider, sub, status) -> None:  # noqa: ANN001
    fake_billing.fail_next(status, times=3)
    with pytest.raises(ProviderError) as caught:
        provider.subscription_pause(sub, months=1, resumes_at=months_ahead(1), idempotency_key=key("pause"))
    assert caught.value.retryable is True
    assert caught.value.status_code == status


def test_a_timeout_is_retryable(fake_billing, sub) -> None:  # noqa: ANN001
    provider = provider_for(fake_billing.slug, fake_billing.credentials(timeout=0.5))
    fake_billing.stall_next(3.0, times=3)
    with pytest.raises(ProviderError) as caught:
        provider.subscription_cancel(sub, at_period_end=True, prorate=False, invoice_now=False,
                                     idempotency_key=key("cancel"))
    assert caught.value.retryable is True
    assert caught.value.status_code is None


def test_a_refused_connection_is_retryable(fake_billing, settings) -> None:  # noqa: ANN001
    settings.BILLING_ALLOWED_API_BASES = [*settings.BILLING_ALLOWED_API_BASES, "http://127.0.0.1:9"]
    good = fake_billing.credentials()
    closed = Credentials(api_key=good.api_key, site=good.site, api_base="http://127.0.0.1:9", timeout=2.0)
    with pytest.raises(ProviderError) as caught:
        provider_for(fake_billing.slug, closed).subscription_get("sub_1")
    assert caught.value.retryable is True


def test_the_call_after_a_failure_succeeds(fake_billing, provider, sub) -> None:  # noqa: ANN001
    fake_billing.fail_next(500)
    with pytest.raises(ProviderError):
        provider.subscription_cancel(sub, at_period_end=True, prorate=False, invoice_now=False,
                                     idempotency_key=key("cancel"))
    assert provider.subscription_cancel(sub, at_period_end=True, prorate=False, invoice_now=False,
                                        idempotency_key=key("cancel")).changed
    assert fake_billing.writes(sub) == 1


# --- plan changes keep the rest; customers by email ---------------------------------------------

def test_a_plan_change_keeps_the_quantity_and_every_other_item(fake_billing, provider) -> None:  # noqa: ANN001
    sub = fake_billing.seed(customer_id="cus_team", quantity=3, extra_items=(("seats", 5),))
    assert provider.subscription_get(sub).items == (("basic", 3), ("seats", 5))
    provider.plan_change(sub, plan="pro", at_renewal=False, prorate=True, idempotency_key=key("p"))
    assert fake_billing.items(sub) == [("pro", 3), ("seats", 5)]
    assert provider.subscription_get(sub).items == (("pro", 3), ("seats", 5))


def test_a_plan_change_at_renewal_keeps_the_quantity_and_every_other_item(fake_billing, provider) -> None:  # noqa: ANN001
    if fake_billing.slug == "paddle":
        pytest.skip("Paddle cannot schedule an item change for the renewal (refused: see test_paddle)")
    sub = fake_billing.seed(customer_id="cus_team", quantity=3, extra_items=(("seats", 5),))
    provider.plan_change(sub, plan="pro", at_renewal=True, prorate=True, idempotency_key=key("p"))
    assert fake_billing.items(sub) == [("basic", 3), ("seats", 5)]
    assert fake_billing.remote(sub).pending_plan == "pro"
    assert provider.scheduled_plan(sub) == "pro"


@pytest.mark.parametrize(("target", "words"), [("basic-eur", ("EUR", "USD")), ("annual", ("year", "month"))])
def test_a_plan_in_another_currency_or_interval_is_refused_naming_both(fake_billing, provider, target,  # noqa: ANN001
                                                                       words) -> None:
    sub = fake_billing.seed(customer_id="cus_jane", quantity=2)
    for at_renewal in (False, True):
        with pytest.raises(ProviderError) as caught:
            provider.plan_change(sub, plan=target, at_renewal=at_renewal, prorate=True, idempotency_key=key("p"))
        assert caught.value.retryable is False
        if fake_billing.slug != "paddle" or not at_renewal:
            assert all(word in caught.value.message for word in words), caught.value.message
    assert fake_billing.writes(sub) == 0
    assert fake_billing.items(sub) == [("basic", 2)]


def test_a_subscription_reads_its_currency_and_interval(fake_billing, provider) -> None:  # noqa: ANN001
    monthly = provider.subscription_get(fake_billing.seed(customer_id="cus_a"))
    yearly = provider.subscription_get(fake_billing.seed(customer_id="cus_b", plan="annual"))
    euros = provider.subscription_get(fake_billing.seed(customer_id="cus_c", plan="basic-eur"))
    assert (monthly.currency, yearly.currency, euros.currency) == ("USD", "USD", "EUR")
    if fake_billing.slug != "recurly":  # Recurly's interval is its plan's, not on the subscription
        assert (monthly.interval, yearly.interval, euros.interval) == ("1 month", "12 month", "1 month")


def test_customers_are_found_by_their_email(fake_billing, provider) -> None:  # noqa: ANN001
    fake_billing.seed(customer_id="cus_mail", email="mail@example.test")
    fake_billing.seed(customer_id="cus_other", email="other@example.test")
    fake_billing.seed(customer_id="cus_twin_1", email="twin@example.test")
    fake_billing.seed(customer_id="cus_twin_2", email="twin@example.test")
    assert provider.customers_by_email("mail@example.test") == ["cus_mail"]
    assert sorted(provider.customers_by_email("twin@example.test")) == ["cus_twin_1", "cus_twin_2"]
    assert provider.customers_by_email("nobody@example.test") == []
# --- skip renewals ------------------------------------------------------------------------------

def test_a_skip_charges_nothing_for_the_next_renewals_and_keeps_the_service(fake_billing, provider, sub) -> None:  # noqa: ANN001
    next_bill = fake_billing.remote(sub).next_bill_at
    assert next_bill is not None
    until = provider.renewals_skip_until(sub, renewals=2)
    # After the second renewal (next bill + 1 month: skipped too), by the third (charged again).
    assert add_months(next_bill, 1) < until <= add_months(next_bill, 2) + timedelta(seconds=1)

    first = provider.renewals_skip(sub, renewals=2, until=until, idempotency_key=key("skip"))
    again = provider.renewals_skip(sub, renewals=2, until=until, idempotency_key=key("skip"))

    assert first.changed and not again.changed
    remote = fake_billing.remote(sub)
    assert remote.status == "active" and not remote.canceled and not remote.cancel_at_period_end
    free_until = max(d for d in (remote.next_bill_at, remote.pause_resumes_at) if d is not None)
    assert free_until >= until - timedelta(seconds=1)
    assert provider.subscription_get(sub).no_charge_until >= until - timedelta(seconds=1)
    assert fake_billing.writes(sub) == 1


def test_a_skip_of_one_renewal_is_free_until_after_the_next_bill(fake_billing, provider, sub) -> None:  # noqa: ANN001
    next_bill = fake_billing.remote(sub).next_bill_at
    until = provider.renewals_skip_until(sub, renewals=1)
    assert next_bill < until <= add_months(next_bill, 1) + timedelta(seconds=1)
    assert provider.renewals_skip(sub, renewals=1, until=until, idempotency_key=key("skip")).changed
    assert provider.subscription_get(sub).no_charge_until >= until - timedelta(seconds=1)


def test_a_skip_of_an_ended_subscription_fails_for_good(fake_billing, provider, sub) -> None:  # noqa: ANN001
    until = provider.renewals_skip_until(sub, renewals=1)
    provider.subscription_cancel(sub, at_period_end=False, prorate=False, invoice_now=False, idempotency_key=key("c"))
    with pytest.raises(ProviderError) as caught:
        provider.renewals_skip(sub, renewals=1, until=until, idempotency_key=key("skip"))
    assert caught.value.retryable is False
    assert fake_billing.writes(sub) == 1  # the cancel only


# --- the reason of a cancel ---------------------------------------------------------------------

# What each provider records of a cancel's reason: Stripe its feedback category, Chargebee the site's
# code; Recurly's and Paddle's cancels take none.
RECORDED = {"stripe": "too_expensive", "chargebee": "Too Expensive", "recurly": "", "paddle": ""}


@pytest.mark.parametrize("at_period_end", [True, False])
def test_a_cancel_carries_its_reason_where_the_provider_takes_one(fake_billing, provider, sub,  # noqa: ANN001
                                                                  at_period_end) -> None:
    reason = CancelReason(category="too_expensive", comment="Too pricey for a team of two", code="Too Expensive")
    result = provider.subscription_cancel(sub, at_period_end=at_period_end, prorate=False, invoice_now=False,
                                          idempotency_key=key("cancel"), reason=reason)
    assert result.changed
    remote = fake_billing.remote(sub)
    assert remote.cancel_at_period_end if at_period_end else remote.canceled
    assert remote.cancel_reason == RECORDED[fake_billing.slug]
    assert fake_billing.writes(sub) == 1
