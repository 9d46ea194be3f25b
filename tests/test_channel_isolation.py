"""One bad webhook endpoint never holds up the rest: a real `celery worker` consuming every queue on the
real Redis broker and the test's PostgreSQL database; webhook endpoints that hang on every request, a
healthy one, a Slack alert (a local stand-in) and a billing action carried out in a local Stripe server
through the official SDK.

The hanging endpoints' timeout (60 s) is longer than the test: before the run slots, each wake-up of a
hanging endpoint took a slot and kept it for the whole timeout, so two of them took both slots of a
small worker and nothing else moved. Runs hold their endpoint under a 2-second lease here, renewed by
their heartbeat, so a killed worker's endpoint is taken over within seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from alerts import services as alert_services
from alerts.testing import SlackReceiver
from billing import services as billing_services
from billing.models import BillingAction
from billing.testing import FakeBilling, fake_billing
from flows.models import Event
from tests.test_webhook_faults import record_decision
from tests.workers import Worker, wait_until
from webhooks import endpoints
from webhooks.models import DeliveryAttempt, Endpoint
from webhooks.testing import Receiver

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis,
              pytest.mark.billing]

DECISIONS = 6
WITHIN = 30.0  # seconds; the hanging endpoint's timeout is 60
RUN_LEASE = 2.0  # seconds a run holds its endpoint without its heartbeat
SLOW_ENV = {"WEBHOOK_TIMEOUT_SECONDS": "60", "WEBHOOK_LEASE_SECONDS": "120",
            "WEBHOOK_RUN_LEASE_SECONDS": str(RUN_LEASE)}


@pytest.fixture
def stripe_server() -> Iterator[FakeBilling]:
    server = fake_billing("stripe")
    try:
        yield server
    finally:
        server.close()


def _running(tmp_path, settings, *, concurrency: int, env: dict[str, str]) -> Iterator[Worker]:  # noqa: ANN001
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    from brightback_site import outbox

    outbox.resume()
    running = Worker(tmp_path, env=env, concurrency=concurrency)
    running.start()
    try:
        yield running
    finally:
        running.stop()
        outbox.resume()


@pytest.fixture
def slow_worker(real_services, tmp_path, settings) -> Iterator[Worker]:  # noqa: ANN001
    """Three slots, as `make run` starts it: webhook runs may take two. A Redis of its own."""
    yield from _running(tmp_path, settings, concurrency=3, env=SLOW_ENV)


@pytest.fixture
def small_worker(real_services, tmp_path, settings) -> Iterator[Worker]:  # noqa: ANN001
    """Two slots: webhook runs may take one."""
    yield from _running(tmp_path, settings, concurrency=2, env=SLOW_ENV)


def _connect_billing_and_alerts(app, stripe_server: FakeBilling, slack: SlackReceiver) -> None:  # noqa: ANN001
    alert_services.rule_create(app=app, events=[Event.Type.SESSION_CANCELED], slack_webhook_url=slack.url)
    creds = stripe_server.credentials()
    billing_services.connection_save(app=app, provider="stripe", api_key=creds.api_key, api_base=creds.api_base)


def _decide(snippet_data, stripe_server: FakeBilling, count: int) -> list[str]:  # noqa: ANN001
    """`count` customers cancel a subscription held in Stripe; returns the subscriptions."""
    from django.test import Client

    client = Client()
    subscriptions = []
    for n in range(count):
        subscriptions.append(stripe_server.seed(customer_id=f"cus_{n}"))
        record_decision(client, snippet_data(email=f"c{n}@example.com", subscription_id=subscriptions[-1],
                                             account={"internal_id": f"acct_{n}", "billing_id": f"cus_{n}"}))
    return subscriptions


def test_a_hanging_endpoint_delays_no_other_endpoint_nor_billing_nor_alerts(
        demo_app, snippet_data, stripe_server, slow_worker):  # noqa: ANN001
    release = threading.Event()
    hanging = Receiver(respond=lambda got: (release.wait(90), (200, {}, b""))[1]).start()
    healthy = Receiver().start()
    slack = SlackReceiver().start()
    try:
        hanging.secrets.append(endpoints.endpoint_create(app=demo_app, url=hanging.url).secret)
        healthy.secrets.append(endpoints.endpoint_create(app=demo_app, url=healthy.url).secret)
        _connect_billing_and_alerts(demo_app, stripe_server, slack)
        started = time.monotonic()
        subscriptions = _decide(snippet_data, stripe_server, DECISIONS)
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
        # The hanging run keeps its endpoint past its 2-second lease: its heartbeat renews the hold while
        # the POST waits, and nothing else is sent there meanwhile.
        first_hold = Endpoint.objects.get(url=hanging.url).run_lease_until
        assert first_hold is not None

        def renewed() -> bool:
            hold = Endpoint.objects.get(url=hanging.url).run_lease_until
            return hold is not None and hold > first_hold + timedelta(seconds=RUN_LEASE)

        wait_until(renewed, timeout=WITHIN, what="the hanging run's hold renewed past its lease")
        assert not release.is_set() and len(hanging.snapshot()) == 1
    finally:
        release.set()
        for server in (hanging, healthy, slack):
            server.stop()


def test_two_hanging_endpoints_on_a_two_slot_worker_delay_neither_billing_nor_alerts(
        demo_app, snippet_data, stripe_server, small_worker):  # noqa: ANN001
    release = threading.Event()
    hang = lambda got: (release.wait(90), (200, {}, b""))[1]  # noqa: E731
    hanging = [Receiver(respond=hang).start(), Receiver(respond=hang).start()]
    slack = SlackReceiver().start()
    try:
        for receiver in hanging:
            receiver.secrets.append(endpoints.endpoint_create(app=demo_app, url=receiver.url).secret)
        _connect_billing_and_alerts(demo_app, stripe_server, slack)
        started = time.monotonic()
        subscriptions = _decide(snippet_data, stripe_server, DECISIONS)

        def billing_and_alerts_done() -> bool:
            return (len(slack.snapshot()) >= DECISIONS
                    and BillingAction.objects.filter(status="succeeded").count() == DECISIONS)

        try:
            wait_until(billing_and_alerts_done, timeout=WITHIN, what="billing and alerts")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}: slack {len(slack.snapshot())}, billing "
                                 f"{list(BillingAction.objects.values_list('status', flat=True))}; "
                                 f"worker log:\n{small_worker.log_tail()}") from None
        took = time.monotonic() - started
        assert all(stripe_server.remote(sub).cancel_at_period_end for sub in subscriptions)
        # Webhook runs took one of the two slots: one hanging request at a time, the other endpoint
        # handed back at each wake-up, the second slot free for billing and alerts throughout.
        assert not release.is_set() and sum(len(r.snapshot()) for r in hanging) == 1, took
    finally:
        release.set()
        for server in (*hanging, slack):
            server.stop()


def test_a_killed_workers_endpoint_is_taken_over_within_seconds(demo_app, snippet_data, real_services, tmp_path,
                                                              settings):  # noqa: ANN001
    # The sweeper is slowed to ten minutes: the takeover must not wait for it.
    workers = _running(tmp_path, settings, concurrency=2,
                       env={**SLOW_ENV, "OUTBOX_SWEEP_SECONDS": "600", "WEBHOOK_LEASE_SECONDS": "600"})
    worker = next(workers)
    release = threading.Event()
    requests = []

    def first_hangs(got):  # noqa: ANN001, ANN202
        requests.append(got)
        if len(requests) == 1:
            release.wait(90)
        return 200, {}, b""

    receiver = Receiver(respond=first_hangs).start()
    try:
        receiver.secrets.append(endpoints.endpoint_create(app=demo_app, url=receiver.url).secret)
        from django.test import Client

        client = Client()
        record_decision(client, snippet_data(email="first@example.com", account={"internal_id": "acct_1"}))
        wait_until(lambda: len(requests) == 1, timeout=WITHIN, what="the first POST")
        worker.kill()  # mid-POST: its run's hold on the endpoint is no longer renewed
        worker.start()
        decided = time.monotonic()
        record_decision(client, snippet_data(email="second@example.com", account={"internal_id": "acct_2"}))
        first, second = (Event.objects.get(session__email=f"{who}@example.com").id for who in ("first", "second"))
        try:
            # The first too, which the killed run had claimed: taken over with its endpoint, not when its
            # claim's 600 s lease runs out.
            wait_until(lambda: {first, second} <= {g.webhook_id for g in receiver.snapshot() if g.answered == 200},
                       timeout=WITHIN, what="the first and second events")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; worker log:\n{worker.log_tail()}") from None
        # Within the lapsed hold and a wake-up, not the old run's timeout nor a sweep.
        assert time.monotonic() - decided < 5 * RUN_LEASE
    finally:
        release.set()
        receiver.stop()
        next(workers, None)
