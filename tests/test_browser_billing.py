"""The billing promise in a real browser: the demo App connected to a local Stripe server (localstripe,
through the official SDK), a customer clicking on the hosted page, a real Celery worker on Redis carrying
the decision out, and the effect read back from that server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from billing import services
from billing.models import BillingAction
from billing.testing import FakeBilling, fake_billing
from tests.test_browser_journey import continue_with_reason
from tests.workers import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.billing, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[FakeBilling]:
    server = fake_billing("stripe")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def connected(demo_app, stripe_server):  # noqa: ANN001, ANN201
    stripe_server.reset()
    creds = stripe_server.credentials()
    services.connection_save(app=demo_app, provider="stripe", api_key=creds.api_key, api_base=creds.api_base)
    return stripe_server


def open_hosted_page_for(page, live_server, subscription_id: str) -> None:  # noqa: ANN001
    page.goto(f"{live_server.url}/demo/?subscription_id={subscription_id}")
    page.click("#bb-cancel")
    page.wait_for_selector("input[name=reason]")


def carried_out(session_filter: dict) -> BillingAction:
    wait_until(lambda: BillingAction.objects.filter(**session_filter, status__in=["succeeded", "failed"]).exists(),
               timeout=30, what="the billing action finished")
    return BillingAction.objects.get(**session_filter)


def test_cancel_leaves_the_subscription_canceled_at_period_end(page, live_server, connected, worker) -> None:  # noqa: ANN001
    sub = connected.seed(customer_id="cus_demo")
    open_hosted_page_for(page, live_server, sub)
    page.check("input[name=reason][value=not-using]")
    page.click("[data-bb-action=cancel]")
    page.wait_for_url("**/demo/return/canceled?**")

    action = carried_out({"kind": "cancel"})
    assert action.status == "succeeded", action.last_error
    remote = connected.remote(sub)
    assert remote.cancel_at_period_end and not remote.canceled


def test_apply_this_discount_leaves_the_coupon_on_the_subscription(page, live_server, connected, worker) -> None:  # noqa: ANN001
    sub = connected.seed(customer_id="cus_demo")
    open_hosted_page_for(page, live_server, sub)
    continue_with_reason(page, "too-expensive")
    page.get_by_role("button", name="Apply this discount").click()
    page.wait_for_url("**/demo/return/offer?**")

    action = carried_out({"kind": "coupon"})
    assert action.status == "succeeded", action.last_error
    assert connected.remote(sub).coupons == ("SAVE30",)
