"""Retries by the provider's rules: a retry after a timeout asks for exactly what the first attempt
asked (the dates it computed are kept on the row) under the same idempotency key, and Stripe's 409
(a request with that key still running) is retried, not a failure for good. Against the local Stripe,
which replays a key's first answer and refuses its reuse with other parameters, as Stripe documents."""

from __future__ import annotations

import time

import pytest
import requests
from django.utils import timezone

from billing import services
from billing.models import BillingAction
from billing.testing.stripe_server import API_KEY, StripeFake
from flows import services as flow_services
from flows.snippet_data import clean_snippet_data

pytestmark = pytest.mark.billing


@pytest.fixture
def fake(stripe_fake: StripeFake) -> StripeFake:
    return stripe_fake  # conftest.py: the module's local Stripe, reset


def run(action: BillingAction) -> BillingAction:
    BillingAction.objects.filter(pk=action.pk).update(next_attempt_at=timezone.now())
    services.action_execute(action_id=action.pk)
    action.refresh_from_db()
    return action


def wait_until(condition, *, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not true after {timeout} s"
        time.sleep(0.05)


def test_the_local_stripe_replays_a_key_and_refuses_it_with_other_parameters(fake: StripeFake) -> None:
    sub = fake.seed(customer_id="cus_keys")

    def update(data: dict[str, str]) -> requests.Response:
        return requests.post(f"{fake.base_url}/v1/subscriptions/{sub}", data=data, auth=(API_KEY, ""),
                             headers={"Idempotency-Key": "k1"}, timeout=5)

    first, again = update({"metadata[a]": "1"}), update({"metadata[a]": "1"})
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()
    other = update({"metadata[a]": "2"})
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    assert fake.writes(sub) == 1


def test_a_pause_retried_after_a_timeout_asks_for_the_same_dates_under_the_same_key(
        demo_app, fake: StripeFake, snippet_data, settings) -> None:  # noqa: ANN001
    settings.BILLING_TIMEOUT_SECONDS = 1.0
    creds = fake.credentials()
    services.connection_save(app=demo_app, provider="stripe", api_key=creds.api_key, api_base=creds.api_base)
    sub = fake.seed(customer_id="cus_jane")
    session = flow_services.session_start(app=demo_app, data=clean_snippet_data(snippet_data(subscription_id=sub)))
    decision = flow_services.decision_record(session=session, kind="accept", reason_code="not-using",
                                             offer_code="pause-2")
    action = BillingAction.objects.filter(session=decision.session, kind="pause").get()
    fake.stall_next(4.0, after=2)  # the reads answer; the pause itself outlives our timeout, then applies

    action = run(action)  # times out: no answer, so the next attempt keeps the key
    assert (action.status, action.last_status_code) == ("pending", None), action.last_error
    action = run(action)  # while the first request still runs: Stripe's 409, to be retried
    assert action.status == "pending", action.last_error
    wait_until(lambda: fake.remote(sub).paused, timeout=10, what="the first pause request went through")
    action = run(action)

    assert action.status == "succeeded", action.last_error
    pauses = [s for s in fake.seen() if s.method == "POST" and "pause_collection" in s.params]
    assert len(pauses) == 2
    assert pauses[0].idempotency_key == pauses[1].idempotency_key
    assert pauses[0].params == pauses[1].params  # the same resume date, worked out once
    assert fake.writes(sub) == 1


def test_the_time_limit_covers_every_call_of_the_longest_action(demo_app, fake: StripeFake,  # noqa: ANN001
                                                                snippet_data) -> None:
    from billing.tasks import CALLS_PER_ACTION, SOFT_TIME_LIMIT
    from offers.models import Offer

    creds = fake.credentials()
    services.connection_save(app=demo_app, provider="stripe", api_key=creds.api_key, api_base=creds.api_base)
    flow = demo_app.flows.get()
    Offer.objects.create(flow=flow, title="Pro", code="go-pro", kind=Offer.Kind.PLAN_CHANGE, plan="pro",
                         plan_change_timing="renewal")
    sub = fake.seed(customer_id="cus_jane")
    data = snippet_data(subscription_id=sub, account={"internal_id": "acct_42", "billing_id": "cus_jane"})
    session = flow_services.session_start(app=demo_app, data=clean_snippet_data(data))
    decision = flow_services.decision_record(session=session, kind="accept", offer_code="go-pro")
    action = run(BillingAction.objects.filter(session=decision.session, kind="plan_change").get())
    assert action.status == "succeeded", action.last_error
    calls = len(fake.seen())
    assert calls <= CALLS_PER_ACTION  # the task's time limit allows a full timeout for each
    assert SOFT_TIME_LIMIT > CALLS_PER_ACTION  # (BILLING_TIMEOUT_SECONDS x CALLS_PER_ACTION + 10)
