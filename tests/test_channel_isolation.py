"""One bad webhook endpoint never holds up the rest: a real `celery worker` (two slots, consuming every
queue, as `make run` starts it) on the real Redis broker and the test's PostgreSQL database; a webhook
endpoint that hangs on every request, a healthy one, a Slack alert (a local stand-in) and a billing
action carried out in a local Stripe server through the official SDK.

The worker's timeout is longer than the test: before the change each wake-up of the hanging endpoint
took a slot and kept it for the whole timeout, so both slots hung and nothing else moved.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from alerts import services as alert_services
from alerts.testing import SlackReceiver
from billing import services as billing_services
from billing.models import BillingAction
from billing.testing import FakeBilling, fake_billing
from flows.models import Event
from tests.test_webhook_faults import record_decision
from tests.workers import Worker, need_real_services, wait_until
from webhooks import services
from webhooks.models import DeliveryAttempt
from webhooks.testing import Receiver

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis,
              pytest.mark.billing]

DECISIONS = 6
WITHIN = 30.0  # seconds; the hanging endpoint's timeout is 60


@pytest.fixture
def stripe_server() -> Iterator[FakeBilling]:
    server = fake_billing("stripe")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def slow_worker(tmp_path, settings) -> Iterator[Worker]:  # noqa: ANN001
    need_real_services()
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    from brightback_site import outbox

    outbox.resume()
    running = Worker(tmp_path, env={"WEBHOOK_TIMEOUT_SECONDS": "60", "WEBHOOK_LEASE_SECONDS": "120"})
    running.start()
    try:
        yield running
    finally:
        running.stop()
        outbox.resume()


def test_a_hanging_endpoint_delays_no_other_endpoint_nor_billing_nor_alerts(
        demo_app, snippet_data, stripe_server, slow_worker):  # noqa: ANN001
    release = threading.Event()
    hanging = Receiver(respond=lambda got: (release.wait(90), (200, {}, b""))[1]).start()
    healthy = Receiver().start()
    slack = SlackReceiver().start()
    try:
        hanging.secrets.append(services.endpoint_create(app=demo_app, url=hanging.url).secret)
        healthy.secrets.append(services.endpoint_create(app=demo_app, url=healthy.url).secret)
        alert_services.rule_create(app=demo_app, events=[Event.Type.SESSION_CANCELED], slack_webhook_url=slack.url)
        creds = stripe_server.credentials()
        billing_services.connection_save(app=demo_app, provider="stripe", api_key=creds.api_key,
                                         api_base=creds.api_base)
        from django.test import Client

        client = Client()
        subscriptions = []
        started = time.monotonic()
        for n in range(DECISIONS):
            subscriptions.append(stripe_server.seed(customer_id=f"cus_{n}"))
            record_decision(client, snippet_data(email=f"c{n}@example.com", subscription_id=subscriptions[-1],
                                                 account={"internal_id": f"acct_{n}", "billing_id": f"cus_{n}"}))
        events = set(Event.objects.values_list("id", flat=True))
        assert len(events) == DECISIONS

        def everything_else_done() -> bool:
            return (events <= {g.webhook_id for g in healthy.snapshot() if g.answered == 200}
                    and len(slack.snapshot()) >= DECISIONS
                    and BillingAction.objects.filter(status="succeeded").count() == DECISIONS)

        try:
            wait_until(everything_else_done, timeout=WITHIN, what="the healthy endpoint, billing and alerts")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}: healthy got {len(healthy.ids())}, slack {len(slack.snapshot())}, "
                                 f"billing {list(BillingAction.objects.values_list('status', flat=True))}; "
                                 f"worker log:\n{slow_worker.log_tail()}") from None
        took = time.monotonic() - started
        # All of it while the bad endpoint was still hanging on its first request: it held one slot.
        assert not release.is_set() and len(hanging.snapshot()) == 1, took
        assert all(stripe_server.remote(sub).cancel_at_period_end for sub in subscriptions)
        assert DeliveryAttempt.objects.filter(delivery__endpoint__url=hanging.url).count() == 1
    finally:
        release.set()
        for server in (hanging, healthy, slack):
            server.stop()
