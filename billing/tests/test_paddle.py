"""Paddle beyond the shared contract: what the SDK really sends, the meanings that are Paddle's own
(several items, annual plans, another currency, customers found by email, keys that name their
environment), and that the local server refuses what Paddle does not allow. Real HTTP to the local server
through the official SDK throughout; nothing patched.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from billing.providers import ProviderError, provider_for
from billing.providers.base import add_months
from billing.providers.paddle import PaddleProvider
from billing.testing.paddle_server import PaddleFake

pytestmark = pytest.mark.billing


@pytest.fixture
def fake(paddle_fake: PaddleFake) -> PaddleFake:
    return paddle_fake  # conftest.py: the module's local Paddle, reset


@pytest.fixture
def provider(fake: PaddleFake) -> PaddleProvider:
    return provider_for("paddle", fake.credentials())  # type: ignore[return-value]


def sent(fake: PaddleFake, method: str) -> list[dict]:
    return [{**r, "json": json.loads(r["body"]) if r["body"] else None} for r in fake.received if r["method"] == method]


def raw(fake: PaddleFake, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """A request as any HTTP client would send it (to test the server's own checks)."""
    request = urllib.request.Request(f"http://127.0.0.1:{fake.port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {fake.api_key}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - a local test server
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


# --- keys and addresses ---------------------------------------------------------------------------

def test_sandbox_and_live_keys_are_told_apart() -> None:
    assert PaddleProvider.key_mode("pdl_sdbx_apikey_01abc") == "test"
    assert PaddleProvider.key_mode("pdl_live_apikey_01abc") == "live"
    assert PaddleProvider.key_mode("a1b2c3d4e5") is None  # a key of the older format says nothing


def test_a_blank_address_means_paddle_itself_sandbox_for_a_sandbox_key() -> None:
    from billing.providers.base import Credentials

    assert PaddleProvider(Credentials(api_key="pdl_sdbx_apikey_x"))._base_url() == "https://sandbox-api.paddle.com"
    assert PaddleProvider(Credentials(api_key="pdl_live_apikey_x"))._base_url() == "https://api.paddle.com"


def test_the_key_goes_only_to_paddle_or_an_allowed_address() -> None:
    from billing.addresses import AddressRefused, api_base_check

    api_base_check("paddle", "https://sandbox-api.paddle.com")
    with pytest.raises(AddressRefused):
        api_base_check("paddle", "https://api.paddle.com.evil.example")


# --- what is sent ---------------------------------------------------------------------------------

def test_cancel_at_period_end_sends_next_billing_period_and_is_a_scheduled_change(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="ctm_a")
    result = provider.subscription_cancel(sub, at_period_end=True, prorate=True, invoice_now=True, idempotency_key="k")
    assert [r["json"] for r in sent(fake, "POST")] == [{"effective_from": "next_billing_period"}]
    assert result.subscription.cancel_at_period_end and result.subscription.raw_status["scheduled_change"] == "cancel"
    assert fake.remote(sub).status == "active"


def test_a_pause_starts_when_the_paid_period_ends_and_resumes_by_itself(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="ctm_a")
    period_end = fake.remote(sub).next_bill_at
    resumes = add_months(period_end, 3)
    provider.subscription_pause(sub, months=3, resumes_at=resumes, idempotency_key="k")
    body = sent(fake, "POST")[0]["json"]
    assert body["effective_from"] == "next_billing_period"
    assert datetime.fromisoformat(body["resume_at"].replace("Z", "+00:00")) == resumes
    remote = fake.remote(sub)
    assert remote.paused and remote.status == "active"  # still billable until the period ends
    assert remote.pause_resumes_at == resumes


def test_a_pause_of_an_annual_plan_is_months_not_years(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="ctm_a", plan="annual")
    period_end = fake.remote(sub).next_bill_at
    assert period_end is not None and period_end - datetime.now(UTC) > timedelta(days=300)
    provider.subscription_pause(sub, months=2, resumes_at=add_months(period_end, 2), idempotency_key="k")
    assert fake.remote(sub).pause_resumes_at == add_months(period_end, 2)


def test_reactivate_sends_a_null_scheduled_change(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="ctm_a")
    provider.subscription_cancel(sub, at_period_end=True, prorate=False, invoice_now=False, idempotency_key="k")
    provider.subscription_reactivate(sub, idempotency_key="k2")
    assert sent(fake, "PATCH")[0]["json"] == {"scheduled_change": None}
    assert not provider.subscription_get(sub).cancel_at_period_end


def test_a_plan_change_keeps_every_other_item_and_the_quantities(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="ctm_a", quantity=5, extra_items=(("seats", 3),))
    provider.plan_change(sub, plan="pro", at_renewal=False, prorate=True, idempotency_key="k")
    assert fake.items(sub) == [("pro", 5), ("seats", 3)]
    body = sent(fake, "PATCH")[0]["json"]
    assert body == {"items": [{"price_id": "pro", "quantity": 5}, {"price_id": "seats", "quantity": 3}],
                    "proration_billing_mode": "prorated_immediately"}


def test_a_plan_change_without_proration_does_not_bill_the_change(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="ctm_a")
    provider.plan_change(sub, plan="pro", at_renewal=False, prorate=False, idempotency_key="k")
    assert sent(fake, "PATCH")[0]["json"]["proration_billing_mode"] == "do_not_bill"


@pytest.mark.parametrize(("plan", "target", "words"), [("basic", "basic-eur", "EUR"), ("basic", "annual", "year"),
                                                       ("basic-eur", "pro", "USD")])
def test_a_plan_change_to_another_currency_or_cycle_is_refused_naming_both(fake, provider, plan, target,  # noqa: ANN001
                                                                           words) -> None:
    sub = fake.seed(customer_id="ctm_a", plan=plan)
    with pytest.raises(ProviderError) as caught:
        provider.plan_change(sub, plan=target, at_renewal=False, prorate=True, idempotency_key="k")
    assert caught.value.retryable is False
    assert words in caught.value.message and "the subscription in" in caught.value.message
    assert fake.writes(sub) == 0 and fake.remote(sub).plan == plan


def test_a_trial_extension_while_trialing_moves_trial_and_bill_without_charging(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="ctm_a", trialing=True)
    until = (fake.remote(sub).trial_end + timedelta(days=5)).replace(microsecond=0)
    provider.trial_extend(sub, until=until, idempotency_key="k")
    assert sent(fake, "PATCH")[0]["json"]["proration_billing_mode"] == "do_not_bill"
    remote = fake.remote(sub)
    assert remote.trial_end == until and remote.next_bill_at == until


def test_a_trial_that_ended_long_ago_is_not_the_base(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="ctm_a", trial_ended=True)
    got = provider.subscription_get(sub)
    assert not got.trialing and got.trial_end is not None and got.trial_end < datetime.now(UTC)
    until = (got.current_period_end + timedelta(days=10)).replace(microsecond=0)
    assert provider.trial_extend(sub, until=until, idempotency_key="k").changed
    assert fake.remote(sub).next_bill_at == until


def test_a_second_discount_is_refused_rather_than_replacing_the_first(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="ctm_a")
    fake.subs[sub].discount = "dsc_01someoneelsesdiscount0000"
    with pytest.raises(ProviderError) as caught:
        provider.coupon_apply(sub, coupon="SAVE30", idempotency_key="k")
    assert caught.value.retryable is False and "one discount" in caught.value.message
    assert fake.writes(sub) == 0


def test_a_discount_is_found_by_its_id_too(fake, provider) -> None:  # noqa: ANN001
    from billing.testing.paddle_server import DISCOUNT_ID

    sub = fake.seed(customer_id="ctm_a")
    assert provider.coupon_apply(sub, coupon=DISCOUNT_ID, idempotency_key="k").changed
    assert fake.remote(sub).coupons == ("SAVE30",)
    assert sent(fake, "PATCH")[0]["json"] == {"discount": {"id": DISCOUNT_ID, "effective_from": "next_billing_period"}}


# --- customers ------------------------------------------------------------------------------------

def test_a_customer_named_by_email_is_found_by_email(fake, provider) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="ctm_jane", email="jane@example.test")
    fake.seed(customer_id="ctm_other", email="other@example.test")
    assert [s.id for s in provider.subscriptions_for_customer("jane@example.test")] == [sub]
    assert sent(fake, "GET")[0]["query"] == {"email": "jane@example.test"}


def test_an_email_two_customers_share_is_refused_naming_the_ambiguity(fake, provider) -> None:  # noqa: ANN001
    fake.seed(customer_id="ctm_one", email="shared@example.test")
    fake.seed(customer_id="ctm_two", email="shared@example.test")
    with pytest.raises(ProviderError) as caught:
        provider.subscriptions_for_customer("shared@example.test")
    assert caught.value.retryable is False
    assert "2 Paddle customers" in caught.value.message and "ctm_one" in caught.value.message


def test_an_unknown_email_is_a_permanent_404(fake, provider) -> None:  # noqa: ANN001
    with pytest.raises(ProviderError) as caught:
        provider.subscriptions_for_customer("nobody@example.test")
    assert (caught.value.retryable, caught.value.status_code) == (False, 404)


# --- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [409, 400])
def test_other_client_errors_are_permanent(fake, provider, status) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="ctm_a")
    fake.fail_next(status, times=3)
    with pytest.raises(ProviderError) as caught:
        provider.subscription_cancel(sub, at_period_end=True, prorate=False, invoice_now=False, idempotency_key="k")
    assert (caught.value.retryable, caught.value.status_code) == (False, status)
    assert "Injected failure" in caught.value.detail


def test_a_canceled_subscription_cannot_be_changed_at_the_server(fake) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="ctm_a")
    assert raw(fake, "POST", f"/subscriptions/{sub}/cancel", {"effective_from": "immediately"})[0] == 200
    status, body = raw(fake, "PATCH", f"/subscriptions/{sub}", {"scheduled_change": None})
    assert status == 400 and body["error"]["code"] == "subscription_locked_canceled"


def test_the_server_refuses_an_item_change_without_proration_mode(fake) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="ctm_a")
    status, body = raw(fake, "PATCH", f"/subscriptions/{sub}", {"items": [{"price_id": "pro", "quantity": 1}]})
    assert status == 400 and body["error"]["errors"][0]["field"] == "proration_billing_mode"
    assert fake.remote(sub).plan == "basic"


def test_the_server_refuses_what_the_description_rules_out(fake) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="ctm_a")
    status, body = raw(fake, "POST", f"/subscriptions/{sub}/pause", {"effective_from": "someday"})
    assert status == 400 and body["error"]["type"] == "request_error"
    status, body = raw(fake, "POST", f"/subscriptions/{sub}/cancel", {"effective_from": "immediately", "refund": True})
    assert status == 400 and "refund" in body["error"]["detail"]
    assert fake.writes(sub) == 0 and not fake.remote(sub).canceled


def test_the_server_checks_patch_fields_against_the_description(fake) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="ctm_a")
    status, body = raw(fake, "PATCH", f"/subscriptions/{sub}", {"items": [{"price_id": "pro", "quantity": 1}],
                                                                 "proration_billing_mode": "prorate_please"})
    assert status == 400 and body["error"]["errors"][0]["field"] == "proration_billing_mode"
    status, body = raw(fake, "PATCH", f"/subscriptions/{sub}", {"next_billed_at": "next tuesday",
                                                                 "proration_billing_mode": "do_not_bill"})
    assert status == 400 and body["error"]["errors"][0]["field"] == "next_billed_at"
    assert fake.writes(sub) == 0 and fake.remote(sub).plan == "basic"
