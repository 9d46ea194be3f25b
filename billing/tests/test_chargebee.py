"""Chargebee beyond the shared contract: what the SDK really sends, and that the local server refuses
what Chargebee's API reference does not allow. Real HTTP to the local server throughout; nothing patched.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import pytest

from billing.providers import ProviderError, provider_for
from billing.providers.base import add_months
from billing.providers.chargebee import provider_error
from billing.testing.chargebee_server import API_KEY, SITE, ChargebeeFake

pytestmark = pytest.mark.billing


def months_ahead(months: int) -> datetime:
    return add_months(datetime.now(UTC), months)


@pytest.fixture
def fake(chargebee_fake: ChargebeeFake) -> ChargebeeFake:
    return chargebee_fake  # conftest.py: the module's local Chargebee, reset


@pytest.fixture
def provider(fake: ChargebeeFake):  # noqa: ANN201
    return provider_for("chargebee", fake.credentials())


def writes_sent(fake: ChargebeeFake) -> list[dict]:
    return [r for r in fake.requests if r["method"] == "POST"]


def form(request: dict) -> dict[str, str]:
    return dict(parse_qsl(request["body"], keep_blank_values=True))


def post(fake: ChargebeeFake, path: str, body: str, *, key: str = API_KEY,
         headers: dict[str, str] | None = None) -> tuple[int, dict, dict[str, str]]:
    """A raw POST, as any HTTP client would send it (to test the server's own checks)."""
    request = urllib.request.Request(f"{fake.url}/api/v2/{path}", data=body.encode(), method="POST", headers={
        "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        "Content-Type": "application/x-www-form-urlencoded", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read()), dict(answer.headers)
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read()), dict(refused.headers)


# --- what the SDK sends -------------------------------------------------------------------------

def test_every_write_carries_our_idempotency_key(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_keys")
    provider.coupon_apply(sub, coupon="SAVE30", idempotency_key="bb_coupon_1")
    provider.plan_change(sub, plan="pro", at_renewal=False, prorate=True, idempotency_key="bb_plan_2")
    provider.trial_extend(sub, until=datetime.now(UTC) + timedelta(days=45), idempotency_key="bb_trial_3")
    provider.subscription_cancel(sub, at_period_end=True, prorate=False, invoice_now=False,
                                 idempotency_key="bb_cancel_4")
    sent = writes_sent(fake)
    assert [r["headers"].get("chargebee-idempotency-key") for r in sent] == [
        "bb_coupon_1", "bb_plan_2", "bb_trial_3", "bb_cancel_4"]
    assert all(r["headers"]["content-type"].startswith("application/x-www-form-urlencoded") for r in sent)


def test_cancel_now_asks_for_prorated_credit_and_an_invoice_now(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_now")
    provider.subscription_cancel(sub, at_period_end=False, prorate=True, invoice_now=True, idempotency_key="k")
    (sent,) = writes_sent(fake)
    assert sent["path"] == f"/api/v2/subscriptions/{sub}/cancel_for_items"
    assert form(sent) == {"end_of_term": "false", "credit_option_for_current_term_charges": "prorate",
                          "unbilled_charges_option": "invoice"}


def test_cancel_at_period_end_sends_only_end_of_term(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_later")
    result = provider.subscription_cancel(sub, at_period_end=True, prorate=True, invoice_now=True,
                                          idempotency_key="k")
    assert form(writes_sent(fake)[0]) == {"end_of_term": "true"}
    assert result.subscription.status == "non_renewing" and result.subscription.is_active


def test_a_subscription_set_to_end_can_still_be_canceled_now(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_twice")
    provider.subscription_cancel(sub, at_period_end=True, prorate=False, invoice_now=False, idempotency_key="a")
    now = provider.subscription_cancel(sub, at_period_end=False, prorate=False, invoice_now=False,
                                       idempotency_key="b")
    assert now.changed and fake.remote(sub).canceled
    assert form(writes_sent(fake)[1]) == {"end_of_term": "false", "credit_option_for_current_term_charges": "none"}


def test_pause_waits_for_the_term_paid_for_and_resumes_on_the_date_asked(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_pause")
    term_end = fake.remote(sub).next_bill_at
    resumes_at = add_months(term_end, 3)
    provider.subscription_pause(sub, months=3, resumes_at=resumes_at, idempotency_key="k")
    sent = form(writes_sent(fake)[0])
    assert sent["pause_option"] == "end_of_term"
    assert datetime.fromtimestamp(int(sent["resume_date"]), UTC) == resumes_at
    remote = fake.remote(sub)
    assert remote.status == "active" and remote.paused and remote.pause_resumes_at == resumes_at


def test_a_plan_change_at_renewal_is_scheduled_and_read_back_as_scheduled(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_renewal")
    provider.plan_change(sub, plan="pro", at_renewal=True, prorate=True, idempotency_key="k")
    assert form(writes_sent(fake)[0]) == {"subscription_items[item_price_id][0]": "pro",
                                          "subscription_items[quantity][0]": "1", "change_option": "end_of_term"}
    again = provider.plan_change(sub, plan="pro", at_renewal=True, prorate=True, idempotency_key="k")
    assert not again.changed
    assert any(r["path"].endswith("/retrieve_with_scheduled_changes") for r in fake.requests)


def test_trial_extension_does_not_charge_for_the_extra_days(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_trial", trialing=True)
    until = (fake.remote(sub).trial_end + timedelta(days=7)).replace(microsecond=0)
    provider.trial_extend(sub, until=until, idempotency_key="k")
    assert form(writes_sent(fake)[0]) == {"term_ends_at": str(int(until.timestamp())), "prorate": "false",
                                          "invoice_immediately": "false"}


def test_the_sdk_does_not_retry_by_itself(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_retry")
    fake.fail_next(503, times=3)
    with pytest.raises(ProviderError):
        provider.subscription_get(sub)
    assert len(fake.requests) == 1


# --- reads and messages --------------------------------------------------------------------------

def test_connection_check_names_the_site_and_catalog(fake, provider) -> None:  # noqa: ANN001
    assert provider.connection_check() == f"Chargebee site {SITE} (product catalog v2)"


def test_an_unknown_customer_is_a_permanent_404(fake, provider) -> None:  # noqa: ANN001
    with pytest.raises(ProviderError) as caught:
        provider.subscriptions_for_customer("cus_nobody")
    assert (caught.value.status_code, caught.value.retryable) == (404, False)
    assert "cus_nobody" in caught.value.message


def test_a_refused_action_names_the_subscription_and_keeps_chargebees_words(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_trialing", trialing=True)
    with pytest.raises(ProviderError) as caught:
        provider.subscription_pause(sub, months=1, resumes_at=months_ahead(1), idempotency_key="k")
    assert (caught.value.status_code, caught.value.retryable) == (409, False)
    assert sub in caught.value.message and "invalid_state_for_request" in caught.value.detail
    assert fake.writes(sub) == 0


def test_a_non_chargebee_error_page_is_classed_by_its_status() -> None:
    # The SDK raises a bare Exception carrying the status in its text for a body that is not JSON.
    bad_gateway = provider_error(Exception("something went wrong \n http_status_code: 502, \n"), "reading")
    assert (bad_gateway.status_code, bad_gateway.retryable) == (502, True)


def test_a_blank_id_is_refused_for_good_without_a_request(fake, provider) -> None:  # noqa: ANN001
    with pytest.raises(ProviderError) as caught:
        provider.coupon_apply("  ", coupon="SAVE30", idempotency_key="k")
    assert caught.value.retryable is False
    assert not [r for r in fake.requests if "/subscriptions/" in r["path"]]


def test_add_months_keeps_the_day_or_takes_the_months_last() -> None:
    assert add_months(datetime(2026, 1, 31, 9, tzinfo=UTC), 1) == datetime(2026, 2, 28, 9, tzinfo=UTC)
    assert add_months(datetime(2026, 11, 15, tzinfo=UTC), 3) == datetime(2027, 2, 15, tzinfo=UTC)


# --- the server checks what it is sent ------------------------------------------------------------

@pytest.mark.parametrize(("body", "param"), [
    ("end_of_term=yes", "end_of_term"),  # not a boolean
    ("credit_option_for_current_term_charges=partial", "credit_option_for_current_term_charges"),  # not in the enum
    ("cancel_at_end=true", "cancel_at_end"),  # no such parameter
    ("subscription_items[item_price_id]=pro", "subscription_items[item_price_id]"),  # a list sent without index
])
def test_the_server_refuses_a_cancel_that_breaks_the_reference(fake, body, param) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_spec")
    status, error, _ = post(fake, f"subscriptions/{sub}/cancel_for_items", body)
    assert status == 400
    assert error["type"] == "invalid_request" and error["api_error_code"] == "param_wrong_value"
    assert error["param"] == param
    assert fake.writes(sub) == 0 and not fake.remote(sub).canceled


def test_the_server_needs_the_required_term_end(fake) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_required")
    status, error, _ = post(fake, f"subscriptions/{sub}/change_term_end", "prorate=false")
    assert (status, error["param"]) == (400, "term_ends_at")


def test_the_server_refuses_a_coupon_under_the_wrong_name(fake) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_coupon")
    status, error, _ = post(fake, f"subscriptions/{sub}/update_for_items", "coupon_id[0]=SAVE30")
    assert (status, error["param"]) == (400, "coupon_id[0]")
    assert fake.remote(sub).coupons == ()


def test_the_server_refuses_a_wrong_key_as_chargebee_does(fake) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_auth")
    status, error, _ = post(fake, f"subscriptions/{sub}/pause", "pause_option=immediately", key="wrong")
    assert (status, error["api_error_code"]) == (401, "api_authentication_failed")


def test_a_replayed_write_answers_the_first_result_and_changes_nothing(fake) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_replay")
    headers = {"chargebee-idempotency-key": "bb_replay"}
    first = post(fake, f"subscriptions/{sub}/update_for_items", "coupon_ids[0]=SAVE30", headers=headers)
    again = post(fake, f"subscriptions/{sub}/update_for_items", "coupon_ids[0]=SAVE30", headers=headers)
    assert first[0] == again[0] == 200 and first[1] == again[1]
    assert again[2].get("chargebee-idempotency-replayed") == "true"
    assert fake.writes(sub) == 1


def test_a_plan_change_names_the_plans_quantity_chargebee_would_otherwise_reset_to_one(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_team", quantity=4, extra_items=(("seats", 2),))
    bare = fake.seed(customer_id="cus_bare", quantity=4)
    status, _, _ = post(fake, f"subscriptions/{bare}/update_for_items", "subscription_items[item_price_id][0]=pro")
    assert status == 200 and fake.items(bare) == [("pro", 1)]  # Chargebee's default: the seats are gone
    provider.plan_change(sub, plan="pro", at_renewal=False, prorate=True, idempotency_key="k")
    assert fake.items(sub) == [("pro", 4), ("seats", 2)]
    assert form([r for r in writes_sent(fake) if sub in r["path"]][0]) == {
        "subscription_items[item_price_id][0]": "pro", "subscription_items[quantity][0]": "4",
        "change_option": "immediately", "prorate": "true"}


def test_the_server_refuses_an_item_price_of_another_currency(fake) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_usd")
    status, body, _ = post(fake, f"subscriptions/{sub}/update_for_items",
                           "subscription_items[item_price_id][0]=basic-eur")
    assert status == 400 and "currency" in body["message"] and fake.items(sub) == [("basic", 1)]


def test_customers_are_looked_up_by_email_with_chargebees_filter(fake, provider) -> None:  # noqa: ANN001
    fake.seed(customer_id="cus_mail", email="mail@example.test")
    assert provider.customers_by_email("mail@example.test") == ["cus_mail"]
    [lookup] = [r for r in fake.requests if r["path"] == "/api/v2/customers"]
    assert dict(parse_qsl(lookup["query"]))["email[is]"] == "mail@example.test"
