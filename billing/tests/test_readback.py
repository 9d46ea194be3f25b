"""What billing records as done is what the billing system shows: every action reads the subscription
back, and a customer named by email alone is acted on only when the provider has exactly one customer
with that email and exactly one active subscription. For every provider, against its local server."""

from __future__ import annotations

from dataclasses import replace

import pytest

from billing import services
from billing.models import BillingAction, BillingConnection
from billing.providers import provider_class
from billing.providers.base import ActionResult
from flows import services as flow_services
from flows.models import Decision
from flows.snippet_data import clean_snippet_data
from offers.models import Offer

pytestmark = pytest.mark.billing


@pytest.fixture
def connect(demo_app, fake_billing):  # noqa: ANN001, ANN201
    def make(**choices) -> BillingConnection:  # noqa: ANN003
        creds = fake_billing.credentials()
        return services.connection_save(app=demo_app, provider=fake_billing.slug, api_key=creds.api_key,
                                        site=creds.site, test_site=creds.site, api_base=creds.api_base, **choices)

    return make


@pytest.fixture
def decide(demo_app, snippet_data):  # noqa: ANN001, ANN201
    def record(kind: str = "cancel", *, email: str = "", subscription_id: str = "", offer_code: str = "",
               reason_code: str = "") -> Decision:
        data = snippet_data(subscription_id=subscription_id or None, email=email or "jane@example.com",
                            account={"internal_id": "acct_42"})
        session = flow_services.session_start(app=demo_app, data=clean_snippet_data(data))
        return flow_services.decision_record(session=session, kind=kind, offer_code=offer_code,
                                             reason_code=reason_code)

    return record


def run_first(decision: Decision) -> BillingAction:
    action = BillingAction.objects.filter(session=decision.session).order_by("pk").first()
    assert action is not None, "no billing action"
    services.action_execute(action_id=action.pk)
    action.refresh_from_db()
    return action


def add_offer(demo_app, **fields) -> Offer:  # noqa: ANN001, ANN003
    return Offer.objects.create(flow=demo_app.flows.get(), title=fields["code"], **fields)


# --- customers named by email alone ------------------------------------------------------------------

def test_a_customer_named_by_email_alone_is_found_by_email(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect()
    sub = fake_billing.seed(customer_id="cus_mail", email="mail@example.test")
    fake_billing.seed(customer_id="cus_other", email="other@example.test")
    action = run_first(decide("cancel", email="mail@example.test"))
    assert action.request["email"] == "mail@example.test" and not action.request["customer_id"]
    assert (action.status, action.subscription_ids) == ("succeeded", [sub]), action.last_error
    assert fake_billing.remote(sub).cancel_at_period_end


def test_an_email_two_customers_share_fails_naming_the_ambiguity(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect()
    one = fake_billing.seed(customer_id="cus_twin_1", email="twin@example.test")
    two = fake_billing.seed(customer_id="cus_twin_2", email="twin@example.test")
    action = run_first(decide("cancel", email="twin@example.test"))
    assert action.status == "failed"
    assert "2 " in action.last_error and "cus_twin_1" in action.last_error and "twin@example.test" in action.last_error
    assert fake_billing.writes(one) == fake_billing.writes(two) == 0


def test_an_email_with_several_or_no_subscriptions_fails_naming_them(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect()
    first = fake_billing.seed(customer_id="cus_two_subs", email="busy@example.test")
    second = fake_billing.seed(customer_id="cus_two_subs", plan="pro")
    action = run_first(decide("cancel", email="busy@example.test"))
    assert action.status == "failed" and first in action.last_error and second in action.last_error
    assert "2 active subscriptions" in action.last_error
    nobody = run_first(decide("cancel", email="nobody@example.test"))
    assert nobody.status == "failed" and "no " in nobody.last_error and "nobody@example.test" in nobody.last_error


def test_a_save_by_email_removes_the_scheduled_cancel(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect()
    sub = fake_billing.seed(customer_id="cus_mail", email="mail@example.test")
    provider = provider_class(fake_billing.slug)(fake_billing.credentials())
    provider.subscription_cancel(sub, at_period_end=True, prorate=False, invoice_now=False, idempotency_key="k0")
    action = run_first(decide("nevermind", email="mail@example.test"))
    assert (action.kind, action.status) == ("reactivate", "succeeded"), action.last_error
    assert not fake_billing.remote(sub).cancel_at_period_end


# --- done only when the provider shows it -----------------------------------------------------------

def claims_done(monkeypatch, slug: str, method: str) -> None:  # noqa: ANN001
    """The provider answers "already in place" without writing anything: only reading back tells."""
    def lie(self, subscription_id: str, **_: object) -> ActionResult:  # noqa: ANN001
        return ActionResult(False, "already in place", self.subscription_get(subscription_id))

    monkeypatch.setattr(provider_class(slug), method, lie)


@pytest.mark.parametrize(("kind", "method", "offer", "reason"), [
    ("cancel", "subscription_cancel", "", ""),
    ("accept", "coupon_apply", "discount-30", "too-expensive"),  # the demo flow's offers
    ("accept", "subscription_pause", "pause-2", "not-using"),
    ("accept", "plan_change", "go-pro", ""),
])
def test_already_in_place_must_be_true_when_read_back(connect, decide, demo_app, fake_billing, monkeypatch,  # noqa: ANN001
                                                      kind, method, offer, reason) -> None:
    connect()
    sub = fake_billing.seed(customer_id="cus_jane")
    if offer == "go-pro":
        add_offer(demo_app, code="go-pro", kind=Offer.Kind.PLAN_CHANGE, plan="pro")
    claims_done(monkeypatch, fake_billing.slug, method)
    action = run_first(decide(kind, subscription_id=sub, offer_code=offer, reason_code=reason))
    assert action.status == "failed", action.summary
    assert f"shows subscription {sub}" in action.last_error and "not recorded as done" in action.last_error
    assert fake_billing.writes(sub) == 0


def test_a_change_the_provider_shows_is_done(connect, decide, demo_app, fake_billing) -> None:  # noqa: ANN001
    connect()
    sub = fake_billing.seed(customer_id="cus_jane", quantity=2, extra_items=(("seats", 3),))
    add_offer(demo_app, code="go-pro", kind=Offer.Kind.PLAN_CHANGE, plan="pro")
    action = run_first(decide("accept", subscription_id=sub, offer_code="go-pro"))
    assert action.status == "succeeded", action.last_error
    assert fake_billing.items(sub) == [("pro", 2), ("seats", 3)]


def test_a_plan_in_another_currency_fails_naming_both(connect, decide, demo_app, fake_billing) -> None:  # noqa: ANN001
    connect()
    sub = fake_billing.seed(customer_id="cus_jane")
    add_offer(demo_app, code="euro", kind=Offer.Kind.PLAN_CHANGE, plan="basic-eur")
    action = run_first(decide("accept", subscription_id=sub, offer_code="euro"))
    assert action.status == "failed" and "EUR" in action.last_error and "USD" in action.last_error
    assert fake_billing.writes(sub) == 0


def test_a_stripe_connect_account_is_used_for_every_action(connect, decide, fake_billing) -> None:  # noqa: ANN001
    if fake_billing.slug != "stripe":
        pytest.skip("Stripe Connect is Stripe's")
    fake_billing.connect_account("acct_1Shop")
    sub = fake_billing.seed(customer_id="cus_shop", account="acct_1Shop")
    connect(stripe_account="acct_1Shop")
    action = run_first(decide("cancel", subscription_id=sub))
    assert action.status == "succeeded", action.last_error
    assert {seen.stripe_account for seen in fake_billing.seen()} == {"acct_1Shop"}
    assert replace(fake_billing.credentials(), stripe_account="").stripe_account == ""
