"""Stripe beyond the contract suite: what the adapter sends through the SDK, and that the local server
refuses what Stripe would refuse. Everything runs over real HTTP against billing/testing/stripe_server.py;
the raw requests below stand for a caller that breaks Stripe's API description."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from billing.providers import ProviderError, provider_for
from billing.providers.base import add_months
from billing.testing.stripe_server import API_KEY, HARNESS_KEY, StripeFake

pytestmark = pytest.mark.billing


def months_ahead(months: int) -> datetime:
    return add_months(datetime.now(UTC), months)


@pytest.fixture
def fake(stripe_fake: StripeFake) -> StripeFake:
    return stripe_fake  # conftest.py: the module's local Stripe, reset


@pytest.fixture
def provider(fake: StripeFake):  # noqa: ANN201
    return provider_for("stripe", fake.credentials())


@pytest.fixture
def sub(fake: StripeFake) -> str:
    return fake.seed(customer_id="cus_ann")


def raw(fake: StripeFake, method: str, path: str, data: dict[str, str] | None = None) -> requests.Response:
    return requests.request(method, fake.base_url + path, data=data, auth=(API_KEY, ""), timeout=5)


def writes_seen(fake: StripeFake) -> list:  # noqa: ANN001
    return [seen for seen in fake.seen() if seen.method in ("POST", "DELETE")]


# --- what the adapter sends -----------------------------------------------------------------------

def test_every_write_carries_our_idempotency_key(fake: StripeFake, provider, sub: str) -> None:  # noqa: ANN001
    until = datetime.now(UTC) + timedelta(days=60)
    provider.coupon_apply(sub, coupon="SAVE30", idempotency_key="bb_coupon")
    provider.subscription_pause(sub, months=1, resumes_at=months_ahead(1), idempotency_key="bb_pause")
    provider.plan_change(sub, plan="pro", at_renewal=False, prorate=True, idempotency_key="bb_plan")
    provider.trial_extend(sub, until=until, idempotency_key="bb_trial")
    provider.subscription_cancel(sub, at_period_end=False, prorate=False, invoice_now=False,
                                 idempotency_key="bb_cancel")
    sent = [(seen.method, seen.idempotency_key) for seen in writes_seen(fake)]
    assert sent == [("POST", "bb_coupon"), ("POST", "bb_pause"), ("POST", "bb_plan"), ("POST", "bb_trial"),
                    ("DELETE", "bb_cancel")]


def test_plan_change_at_renewal_uses_a_schedule_with_keys_derived_from_ours(fake: StripeFake, provider,  # noqa: ANN001
                                                                           sub: str) -> None:
    provider.plan_change(sub, plan="pro", at_renewal=True, prorate=False, idempotency_key="bb_plan")
    create, phases = writes_seen(fake)
    assert (create.path, create.params, create.idempotency_key) == (
        "/v1/subscription_schedules", {"from_subscription": sub}, "bb_plan-schedule")
    assert phases.idempotency_key == "bb_plan-phases"
    assert [phase["items"][0]["price"] for phase in phases.params["phases"]] == ["basic", "pro"]
    assert phases.params["end_behavior"] == "release"


def test_a_lost_answer_after_the_schedule_was_made_only_sets_its_phases(fake: StripeFake, provider,  # noqa: ANN001
                                                                      sub: str) -> None:
    # The first attempt created the schedule and the worker died before setting its phases.
    assert raw(fake, "POST", "/v1/subscription_schedules", {"from_subscription": sub}).status_code == 200
    result = provider.plan_change(sub, plan="pro", at_renewal=True, prorate=False, idempotency_key="bb_plan")
    assert result.changed
    assert [seen.path.rsplit("/", 1)[0] for seen in writes_seen(fake)][-1] == "/v1/subscription_schedules"
    assert sum(seen.path == "/v1/subscription_schedules" for seen in writes_seen(fake)) == 1
    assert (fake.remote(sub).plan, fake.remote(sub).pending_plan) == ("basic", "pro")


def test_cancel_at_period_end_releases_a_pending_plan_change_first(fake: StripeFake, provider,  # noqa: ANN001
                                                                  sub: str) -> None:
    provider.plan_change(sub, plan="pro", at_renewal=True, prorate=False, idempotency_key="bb_plan")
    result = provider.subscription_cancel(sub, at_period_end=True, prorate=False, invoice_now=False,
                                          idempotency_key="bb_cancel")
    assert result.changed and result.subscription.cancel_at_period_end
    remote = fake.remote(sub)
    assert (remote.cancel_at_period_end, remote.plan, remote.pending_plan) == (True, "basic", "")
    assert [seen.idempotency_key for seen in writes_seen(fake)][-2:] == ["bb_cancel-release", "bb_cancel"]


def test_cancel_now_sends_prorate_and_invoice_now(fake: StripeFake, provider, sub: str) -> None:  # noqa: ANN001
    provider.subscription_cancel(sub, at_period_end=False, prorate=True, invoice_now=False, idempotency_key="bb_c")
    (cancel,) = writes_seen(fake)
    assert (cancel.method, cancel.params["prorate"], cancel.params["invoice_now"]) == ("DELETE", "true", "false")


def test_plan_change_now_without_proration_says_none(fake: StripeFake, provider, sub: str) -> None:  # noqa: ANN001
    provider.plan_change(sub, plan="pro", at_renewal=False, prorate=False, idempotency_key="bb_plan")
    (update,) = writes_seen(fake)
    assert update.params["proration_behavior"] == "none"
    assert update.params["items"][0]["price"] == "pro" and update.params["items"][0]["id"].startswith("si_")


def test_a_trial_extension_charges_nothing_for_the_extra_days(fake: StripeFake, provider, sub: str) -> None:  # noqa: ANN001
    until = (fake.remote(sub).next_bill_at + timedelta(days=5)).replace(microsecond=0)
    provider.trial_extend(sub, until=until, idempotency_key="bb_trial")
    (update,) = writes_seen(fake)
    assert update.params == {"trial_end": str(int(until.timestamp())), "proration_behavior": "none",
                             "expand": ["discounts"]}


def test_a_coupon_keeps_the_discounts_already_there(fake: StripeFake, provider, sub: str) -> None:  # noqa: ANN001
    made = requests.post(fake.base_url + "/v1/coupons", auth=(HARNESS_KEY, ""), timeout=5,  # seeding, not the adapter
                         data={"id": "LOYAL10", "duration": "forever", "percent_off": "10"})
    assert made.status_code == 200
    provider.coupon_apply(sub, coupon="LOYAL10", idempotency_key="bb_c1")
    provider.coupon_apply(sub, coupon="SAVE30", idempotency_key="bb_c2")
    assert fake.remote(sub).coupons == ("LOYAL10", "SAVE30")
    assert provider.subscription_get(sub).coupons == ("LOYAL10", "SAVE30")


def test_a_pause_voids_invoices_until_the_months_have_passed(fake: StripeFake, provider, sub: str) -> None:  # noqa: ANN001
    provider.subscription_pause(sub, months=2, resumes_at=months_ahead(2), idempotency_key="bb_pause")
    pause = raw(fake, "GET", f"/v1/subscriptions/{sub}").json()["pause_collection"]
    resumes = datetime.fromtimestamp(pause["resumes_at"], UTC)
    assert pause["behavior"] == "void"
    assert timedelta(days=58) < resumes - datetime.now(UTC) < timedelta(days=63)


def test_a_server_error_is_asked_once_because_the_sdk_does_not_retry(fake: StripeFake, provider,  # noqa: ANN001
                                                                    sub: str) -> None:
    fake.fail_next(503)
    with pytest.raises(ProviderError):
        provider.subscription_pause(sub, months=1, resumes_at=months_ahead(1), idempotency_key="bb_pause")
    assert len(fake.seen()) == 1


# --- what the adapter says ------------------------------------------------------------------------

def test_connection_check_names_the_account_and_the_mode(provider) -> None:  # noqa: ANN001
    assert provider.connection_check() == "Stripe account acct_localstripe (Local Stripe), test mode"


def test_an_unknown_subscription_is_named_with_stripes_own_words(provider) -> None:  # noqa: ANN001
    with pytest.raises(ProviderError) as caught:
        provider.subscription_get("sub_gone")
    assert caught.value.message == "subscription sub_gone was not found in Stripe"
    assert "No such subscription: 'sub_gone'" in caught.value.detail


def test_an_unknown_customer_is_a_permanent_404(provider) -> None:  # noqa: ANN001
    with pytest.raises(ProviderError) as caught:
        provider.subscriptions_for_customer("cus_nobody")
    assert (caught.value.retryable, caught.value.status_code) == (False, 404)
    assert "cus_nobody" in caught.value.message


def test_a_customers_subscriptions_come_newest_first_even_within_one_second(fake: StripeFake, provider) -> None:  # noqa: ANN001
    made = [fake.seed(customer_id="cus_many", plan=plan) for plan in ("basic", "pro", "basic")]
    assert [found.id for found in provider.subscriptions_for_customer("cus_many")] == made[::-1]


def test_a_request_stripe_refuses_is_permanent_and_quotes_stripe(fake: StripeFake, provider, sub: str) -> None:  # noqa: ANN001
    provider.subscription_cancel(sub, at_period_end=False, prorate=False, invoice_now=False, idempotency_key="k")
    with pytest.raises(ProviderError) as caught:
        provider.coupon_apply(sub, coupon="SAVE30", idempotency_key="bb_coupon")
    assert (caught.value.retryable, caught.value.status_code) == (False, 400)
    assert caught.value.message == f"Stripe refused the change to subscription {sub}"
    assert caught.value.detail.endswith("A canceled subscription can only update its cancellation_details and "
                                        "metadata.")
    assert fake.remote(sub).coupons == ()


def test_a_pause_of_no_months_is_refused_before_asking_stripe(fake: StripeFake, provider, sub: str) -> None:  # noqa: ANN001
    with pytest.raises(ProviderError) as caught:
        provider.subscription_pause(sub, months=0, resumes_at=months_ahead(0), idempotency_key="bb_pause")
    assert caught.value.retryable is False and sub in caught.value.message
    assert fake.seen() == []


def test_a_canceled_subscription_is_left_alone(fake: StripeFake, provider, sub: str) -> None:  # noqa: ANN001
    provider.subscription_cancel(sub, at_period_end=False, prorate=False, invoice_now=False, idempotency_key="k1")
    again = provider.subscription_cancel(sub, at_period_end=True, prorate=False, invoice_now=False,
                                         idempotency_key="k2")
    assert again.changed is False and again.summary == "already canceled"
    assert fake.writes(sub) == 1


# --- the server checks requests against Stripe's description -------------------------------------

def test_the_server_refuses_a_parameter_stripe_does_not_know(fake: StripeFake, sub: str) -> None:
    answer = raw(fake, "POST", f"/v1/subscriptions/{sub}", {"items[0][prise]": "pro"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error", "parameter_unknown", "items[0][prise]")
    assert fake.remote(sub).plan == "basic" and fake.writes(sub) == 0


def test_the_server_refuses_a_value_outside_the_enum(fake: StripeFake, sub: str) -> None:
    answer = raw(fake, "POST", f"/v1/subscriptions/{sub}", {"pause_collection[behavior]": "forever"})
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "pause_collection[behavior]"
    assert not fake.remote(sub).paused


def test_the_server_refuses_a_non_integer_date(fake: StripeFake, sub: str) -> None:
    answer = raw(fake, "POST", f"/v1/subscriptions/{sub}", {"trial_end": "tomorrow"})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "trial_end"


def test_the_server_refuses_coupon_on_update_as_the_pinned_api_version_does(fake: StripeFake, sub: str) -> None:
    answer = raw(fake, "POST", f"/v1/subscriptions/{sub}", {"coupon": "SAVE30"})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "parameter_unknown"
    assert fake.remote(sub).coupons == ()


def test_the_server_refuses_an_unknown_coupon_and_names_it(fake: StripeFake, sub: str) -> None:
    answer = raw(fake, "POST", f"/v1/subscriptions/{sub}", {"discounts[0][coupon]": "NOPE99"})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "No such coupon: 'NOPE99'"


def test_the_server_refuses_a_second_cancel_as_stripe_does(fake: StripeFake, sub: str) -> None:
    assert raw(fake, "DELETE", f"/v1/subscriptions/{sub}").status_code == 200
    again = raw(fake, "DELETE", f"/v1/subscriptions/{sub}")
    assert again.status_code == 404 and again.json()["error"]["code"] == "resource_missing"
    updated = raw(fake, "POST", f"/v1/subscriptions/{sub}", {"cancel_at_period_end": "true"})
    assert updated.status_code == 400
    assert fake.writes(sub) == 1


def test_the_server_refuses_cancellation_changes_on_a_scheduled_subscription(fake: StripeFake, sub: str) -> None:
    assert raw(fake, "POST", "/v1/subscription_schedules", {"from_subscription": sub}).status_code == 200
    answer = raw(fake, "POST", f"/v1/subscriptions/{sub}", {"cancel_at_period_end": "true"})
    assert answer.status_code == 400 and "managed by the subscription schedule" in answer.json()["error"]["message"]
    assert not fake.remote(sub).cancel_at_period_end


def test_an_unknown_address_is_refused_as_by_stripe(fake: StripeFake) -> None:
    answer = raw(fake, "GET", "/v1/subscription_pauses")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "url_invalid"


def test_a_wrong_key_gets_stripes_401(fake: StripeFake) -> None:
    answer = requests.get(fake.base_url + "/v1/account", auth=(fake.bad_credentials().api_key, ""), timeout=5)
    assert answer.status_code == 401
    assert answer.json()["error"]["message"].startswith("Invalid API Key provided: sk_test_")


def test_a_plan_change_at_renewal_keeps_the_coupon_now_and_after(fake: StripeFake, provider, sub: str) -> None:  # noqa: ANN001
    provider.coupon_apply(sub, coupon="SAVE30", idempotency_key="bb_coupon")
    provider.plan_change(sub, plan="pro", at_renewal=True, prorate=False, idempotency_key="bb_plan")
    assert fake.remote(sub).coupons == ("SAVE30",)
    phases = writes_seen(fake)[-1].params["phases"]
    assert [list(phase["discounts"][0]) for phase in phases] == [["discount"], ["discount"]]


def test_a_plan_change_at_renewal_during_a_trial_keeps_the_trial(fake: StripeFake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_trial", trialing=True)
    trial_end = fake.remote(sub).trial_end
    provider.plan_change(sub, plan="pro", at_renewal=True, prorate=False, idempotency_key="bb_plan")
    remote = fake.remote(sub)
    assert (remote.status, remote.trial_end, remote.pending_plan) == ("trialing", trial_end, "pro")


def test_the_local_stripe_keeps_nothing_on_disk(fake: StripeFake, provider, sub: str) -> None:  # noqa: ANN001
    pickle = Path("/tmp/localstripe.pickle")
    before = pickle.stat().st_mtime_ns if pickle.exists() else None
    provider.subscription_cancel(sub, at_period_end=True, prorate=False, invoice_now=False, idempotency_key="k")
    assert (pickle.stat().st_mtime_ns if pickle.exists() else None) == before


# --- several items, Stripe Connect ------------------------------------------------------------------

def test_a_plan_change_moves_the_plans_item_not_the_first_one(fake: StripeFake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_team", plan="seats", quantity=4, extra_items=(("basic", 2),))
    provider.plan_change(sub, plan="pro", at_renewal=False, prorate=True, idempotency_key="k")
    assert fake.items(sub) == [("seats", 4), ("pro", 2)]
    sent = [seen.params for seen in writes_seen(fake)]
    assert sent[-1]["items"] == [{"id": sent[-1]["items"][0]["id"], "price": "pro", "quantity": "2"}]


def test_a_plan_change_at_renewal_schedules_every_item(fake: StripeFake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_team", plan="seats", quantity=4, extra_items=(("basic", 2),))
    provider.plan_change(sub, plan="pro", at_renewal=True, prorate=True, idempotency_key="k")
    phases = [seen.params for seen in writes_seen(fake)][-1]["phases"]
    assert [i["price"] for i in phases[1]["items"]] == ["seats", "pro"]
    assert [i["quantity"] for i in phases[1]["items"]] == ["4", "2"]
    assert fake.items(sub) == [("seats", 4), ("basic", 2)]


def test_items_of_which_none_is_on_the_targets_product_are_refused_not_guessed(fake: StripeFake,  # noqa: ANN001
                                                                             provider) -> None:
    sub = fake.seed(customer_id="cus_team", plan="seats", extra_items=(("seats", 2),))
    with pytest.raises(ProviderError) as caught:
        provider.plan_change(sub, plan="pro", at_renewal=False, prorate=True, idempotency_key="k")
    assert caught.value.retryable is False and "prod_brightback" in caught.value.message
    assert fake.writes(sub) == 0


def test_the_server_refuses_items_of_two_currencies_as_stripe_does(fake: StripeFake, sub: str) -> None:
    item = raw(fake, "GET", f"/v1/subscriptions/{sub}").json()["items"]["data"][0]["id"]
    answer = raw(fake, "POST", f"/v1/subscriptions/{sub}", {"items[0][id]": item, "items[0][price]": "basic-eur"})
    assert answer.status_code == 400 and "currency" in answer.json()["error"]["message"]
    assert fake.items(sub) == [("basic", 1)]


CONNECTED = "acct_1ConnectedShop"


def test_a_connected_account_is_named_on_every_call_and_only_it_is_reached(fake: StripeFake, sub: str) -> None:
    fake.connect_account(CONNECTED)
    theirs = fake.seed(customer_id="cus_shop", account=CONNECTED, email="shop@example.test")
    connected = provider_for("stripe", replace(fake.credentials(), stripe_account=CONNECTED))
    assert CONNECTED in connected.connection_check()
    assert connected.customers_by_email("shop@example.test") == ["cus_shop"]
    assert connected.subscription_cancel(theirs, at_period_end=True, prorate=False, invoice_now=False,
                                         idempotency_key="k").changed
    assert fake.remote(theirs).cancel_at_period_end
    assert {seen.stripe_account for seen in fake.seen()} == {CONNECTED}
    with pytest.raises(ProviderError) as caught:
        connected.subscription_get(sub)  # the platform's own subscription is not on the connected account
    assert caught.value.status_code == 404
    platform = provider_for("stripe", fake.credentials())
    with pytest.raises(ProviderError) as caught:
        platform.subscription_get(theirs)  # nor the connected account's on the platform
    assert caught.value.status_code == 404
    assert platform.customers_by_email("shop@example.test") == []


def test_an_account_the_platform_is_not_connected_to_fails_for_good(fake: StripeFake, sub: str) -> None:
    stranger = provider_for("stripe", replace(fake.credentials(), stripe_account="acct_1NotConnected"))
    with pytest.raises(ProviderError) as caught:
        stranger.subscription_get(sub)
    assert (caught.value.retryable, caught.value.status_code) == (False, 403)
    assert "acct_1NotConnected" in caught.value.detail


def test_requests_are_checked_against_the_api_version_the_sdk_sends(fake: StripeFake, sub: str) -> None:
    import stripe

    from billing.testing.stripe_spec import SPEC_PATH, stripe_spec

    assert stripe.api_version in SPEC_PATH.name and stripe_spec() is not None
    # cancellation_details came after the 2022 description; pause_collection's behaviors are the version's
    assert raw(fake, "DELETE", f"/v1/subscriptions/{sub}?cancellation_details[feedback]=unused").status_code == 200
    sub = fake.seed(customer_id="cus_other")
    answer = raw(fake, "POST", f"/v1/subscriptions/{sub}", {"pause_collection[behavior]": "skip"})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "pause_collection[behavior]"
    answer = raw(fake, "GET", "/v1/customers?emails=x@example.test")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "parameter_unknown"
