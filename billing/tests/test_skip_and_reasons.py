"""Two things a decision tells the billing system, end to end on every provider's local server: an
accepted `skip_renewal` offer (the next N renewals free, the customer keeping the service), and the
reason of a cancel (Stripe's cancellation feedback and the customer's words, Chargebee's reason code)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import stripe
from django.utils.dateparse import parse_datetime

from billing import services
from billing.models import BillingAction, BillingConnection
from billing.providers import provider_for
from billing.providers.base import CancelReason
from billing.tests.test_actions import add_offer, run, the_action
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
                                        site=creds.site, api_base=creds.api_base, **choices)

    return make


@pytest.fixture
def decide(demo_app, snippet_data):  # noqa: ANN001, ANN201
    def record(kind: str, *, subscription_id: str, reason_code: str = "", feedback: str = "",
               offer_code: str = "") -> Decision:
        data = snippet_data(subscription_id=subscription_id, account={"internal_id": "acct_42", "value": 49})
        session = flow_services.session_start(app=demo_app, data=clean_snippet_data(data))
        return flow_services.decision_record(session=session, kind=kind, reason_code=reason_code, feedback=feedback,
                                             offer_code=offer_code)

    return record


# --- skip renewals --------------------------------------------------------------------------------

def test_accepting_a_skip_frees_the_next_renewal_and_keeps_the_subscription(connect, decide, demo_app,  # noqa: ANN001
                                                                          fake_billing) -> None:
    connect()
    add_offer(demo_app, code="skip-one", kind=Offer.Kind.SKIP_RENEWAL)  # skip_renewals left blank: one
    sub = fake_billing.seed(customer_id="cus_jane")
    next_bill = fake_billing.remote(sub).next_bill_at

    action = run(the_action(decide("accept", subscription_id=sub, reason_code="too-expensive",
                                   offer_code="skip-one")))

    assert (action.kind, action.request["renewals"], action.status) == ("skip_renewal", 1, "succeeded"), \
        action.last_error
    until = parse_datetime(action.request["until"][sub])
    assert next_bill < until <= next_bill + timedelta(days=32)
    remote = fake_billing.remote(sub)
    assert remote.status == "active" and not remote.canceled
    assert max(d for d in (remote.next_bill_at, remote.pause_resumes_at) if d) >= until - timedelta(seconds=1)
    assert "renewal" in action.summary


def test_a_skip_retried_asks_for_the_date_stored_on_its_row_and_changes_billing_once(  # noqa: ANN001
        connect, decide, demo_app, fake_billing) -> None:
    connect()
    add_offer(demo_app, code="skip-three", kind=Offer.Kind.SKIP_RENEWAL, skip_renewals=3)
    sub = fake_billing.seed(customer_id="cus_jane")
    action = run(the_action(decide("accept", subscription_id=sub, reason_code="too-expensive",
                                   offer_code="skip-three")))
    assert action.status == "succeeded", action.last_error
    stored = dict(action.request["until"])

    assert services.action_retry(action=action)
    action = run(action)

    assert action.status == "succeeded", action.last_error
    assert action.request["until"] == stored  # not worked out again from the moved bill date
    assert action.result[sub]["changed"] is False
    assert fake_billing.writes(sub) == 1


def test_a_skip_the_provider_does_not_show_is_not_recorded_done(connect, decide, demo_app, fake_billing,  # noqa: ANN001
                                                                monkeypatch) -> None:
    connect()
    add_offer(demo_app, code="skip-one", kind=Offer.Kind.SKIP_RENEWAL)
    sub = fake_billing.seed(customer_id="cus_jane")
    provider_type = type(provider_for(fake_billing.slug, fake_billing.credentials()))
    # A provider module that answers "changed" without sending anything: the read-back must catch it.
    monkeypatch.setattr(provider_type, "renewals_skip", lambda self, sid, **kw: services.ActionResult(
        True, "pretended", self.subscription_get(sid)))

    action = run(the_action(decide("accept", subscription_id=sub, reason_code="too-expensive",
                                   offer_code="skip-one")))

    assert action.status == BillingAction.Status.FAILED
    assert "free of charge" in action.summary


# --- the reason of a cancel -----------------------------------------------------------------------

RECORDED = {"stripe": "too_expensive", "chargebee": "Too Expensive", "recurly": "", "paddle": ""}


def test_a_cancel_tells_the_billing_system_why_where_it_can_hear_it(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect(cancel_reason_codes={"too_expensive": "Too Expensive"} if fake_billing.slug == "chargebee" else {})
    sub = fake_billing.seed(customer_id="cus_jane")

    action = the_action(decide("cancel", subscription_id=sub, reason_code="too-expensive",
                               feedback="  Too pricey for a team of two  "))

    # The customer's words are copied only for a billing system that keeps them (Stripe).
    expected = {"category": "too_expensive",
                "comment": "Too pricey for a team of two" if fake_billing.slug == "stripe" else ""}
    if fake_billing.slug == "chargebee":
        expected["code"] = "Too Expensive"
    assert action.request["reason"] == expected
    action = run(action)
    assert action.status == "succeeded", action.last_error
    assert fake_billing.remote(sub).cancel_reason == RECORDED[fake_billing.slug]


def test_a_cancel_without_reason_or_words_sends_no_reason(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect()
    sub = fake_billing.seed(customer_id="cus_jane")
    action = the_action(decide("cancel", subscription_id=sub))
    assert "reason" not in action.request
    assert run(action).status == "succeeded"
    assert fake_billing.remote(sub).cancel_reason == ""


def test_words_without_a_reason_are_sent_as_other(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect()
    sub = fake_billing.seed(customer_id="cus_jane")
    action = the_action(decide("cancel", subscription_id=sub, feedback="Just because"))
    assert action.request["reason"] == {"category": "other",
                                        "comment": "Just because" if fake_billing.slug == "stripe" else ""}


@pytest.fixture
def stripe_only(fake_billing):  # noqa: ANN001, ANN201
    if fake_billing.slug != "stripe":
        pytest.skip("Stripe's cancellation_details")
    return fake_billing


@pytest.mark.parametrize("timing", ["period_end", "immediately"])
def test_stripe_keeps_the_feedback_and_the_customers_words(connect, decide, stripe_only, timing) -> None:  # noqa: ANN001
    connect(cancel_timing=timing)
    sub = stripe_only.seed(customer_id="cus_jane")
    action = run(the_action(decide("cancel", subscription_id=sub, reason_code="switching",
                                   feedback="Moving to a tool my team already uses")))
    assert action.status == "succeeded", action.last_error

    creds = stripe_only.credentials()  # read back through Stripe's own SDK, not our adapter
    client = stripe.StripeClient(creds.api_key, base_addresses={"api": creds.api_base}, max_network_retries=0)
    details = client.v1.subscriptions.retrieve(sub).cancellation_details
    assert (details.feedback, details.comment) == ("switched_service", "Moving to a tool my team already uses")
    assert details.reason == "cancellation_requested"


def test_stripe_gets_at_most_its_limit_of_the_customers_words(stripe_only) -> None:  # noqa: ANN001
    sub = stripe_only.seed(customer_id="cus_jane")
    provider = provider_for("stripe", stripe_only.credentials())
    provider.subscription_cancel(sub, at_period_end=True, prorate=False, invoice_now=False, idempotency_key="bb_k",
                                 reason=CancelReason(category="other", comment="x" * 6000))
    sent = [seen for seen in stripe_only.seen() if seen.method == "POST"][-1]
    assert len(sent.params["cancellation_details"]["comment"]) == 5000
    assert stripe_only.remote(sub).cancel_at_period_end


def test_stripe_skips_by_voiding_the_renewal_invoices_and_keeps_the_billing_day(stripe_only) -> None:  # noqa: ANN001
    sub = stripe_only.seed(customer_id="cus_jane")
    provider = provider_for("stripe", stripe_only.credentials())
    next_bill = stripe_only.remote(sub).next_bill_at
    until = provider.renewals_skip_until(sub, renewals=1)
    assert provider.renewals_skip(sub, renewals=1, until=until, idempotency_key="bb_skip").changed

    creds = stripe_only.credentials()
    client = stripe.StripeClient(creds.api_key, base_addresses={"api": creds.api_base}, max_network_retries=0)
    read = client.v1.subscriptions.retrieve(sub)
    assert read.pause_collection.behavior == "void"
    # Halfway between the skipped renewal and the next one: neither falls near the switch.
    assert next_bill + timedelta(days=13) < parse_ts(read.pause_collection.resumes_at) < next_bill + timedelta(days=17)
    assert read.status == "active" and stripe_only.remote(sub).next_bill_at == next_bill


def parse_ts(stamp: int):  # noqa: ANN201
    from datetime import UTC, datetime

    return datetime.fromtimestamp(stamp, UTC)


@pytest.fixture
def chargebee_only(fake_billing):  # noqa: ANN001, ANN201
    if fake_billing.slug != "chargebee":
        pytest.skip("Chargebee's reason codes")
    return fake_billing


def test_chargebee_sends_no_code_for_a_category_left_unmapped(connect, decide, chargebee_only) -> None:  # noqa: ANN001
    connect(cancel_reason_codes={"unused": "Not Using"})
    sub = chargebee_only.seed(customer_id="cus_jane")
    action = run(the_action(decide("cancel", subscription_id=sub, reason_code="too-expensive")))
    assert action.status == "succeeded", action.last_error
    assert "code" not in action.request["reason"]
    assert chargebee_only.remote(sub).cancel_reason == ""


def test_chargebee_refusing_a_code_its_site_lacks_fails_for_good_and_cancels_nothing(connect, decide,  # noqa: ANN001
                                                                                    chargebee_only) -> None:
    connect(cancel_reason_codes={"too_expensive": "Pricey"})
    sub = chargebee_only.seed(customer_id="cus_jane")
    action = run(the_action(decide("cancel", subscription_id=sub, reason_code="too-expensive")))
    assert action.status == BillingAction.Status.FAILED
    assert "Pricey" in action.error_detail
    assert not chargebee_only.remote(sub).cancel_at_period_end


def test_a_skip_on_a_yearly_plan_skips_a_year_not_a_month(fake_billing) -> None:  # noqa: ANN001
    if fake_billing.slug == "stripe":
        pytest.skip("Stripe skips by pause_collection, not by moving the next bill: "
                    "test_stripe_skips_by_voiding_the_renewal_invoices… checks it")
    from billing.providers.base import add_months

    sub = fake_billing.seed(customer_id="cus_yearly", plan="annual")
    provider = provider_for(fake_billing.slug, fake_billing.credentials())
    next_bill = fake_billing.remote(sub).next_bill_at

    until = provider.renewals_skip_until(sub, renewals=1)
    assert abs((until - add_months(next_bill, 12)).total_seconds()) < 2
    assert provider.renewals_skip(sub, renewals=1, until=until, idempotency_key="bb_skip_year").changed
    assert abs((fake_billing.remote(sub).next_bill_at - until).total_seconds()) < 2
