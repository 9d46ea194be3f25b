"""A worker killed in the middle of sending an alert loses nothing: a real `celery worker --beat` on the
test's own Redis broker and the test database on PostgreSQL, a real SMTP server that keeps the DATA command
waiting, and kill -9 on the worker's whole process group.

Time is compressed with settings (a five-second lease, a one-second sweep), never by sleeping through
real delays; every wait is bounded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from alerts import services
from alerts.models import AlertDelivery
from alerts.testing import SmtpServer
from receipts import services as receipt_services
from tests.workers import Worker, real_services, wait_until  # noqa: F401 - real_services: a fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def slow_smtp() -> Iterator[SmtpServer]:
    with SmtpServer(hold=True) as server:
        yield server


@pytest.fixture
def worker(real_services, tmp_path, slow_smtp) -> Iterator[Worker]:  # noqa: ANN001, F811
    from brightback_site import outbox

    outbox.resume()
    running = Worker(tmp_path, {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": slow_smtp.host, "EMAIL_PORT": str(slow_smtp.port), "EMAIL_TIMEOUT": "60",
        "ALERT_LEASE_SECONDS": "5",  # a killed worker's claim is taken over after 5 s
        "OUTBOX_PUBLISH_GRACE_SECONDS": "1", "OUTBOX_SWEEP_SECONDS": "1",
        "SITE_URL": "https://cancel.example.com",
    })
    try:
        yield running
    finally:
        running.stop()


def test_a_worker_killed_during_a_slow_smtp_data_loses_nothing(worker, slow_smtp, make_rule, decide, demo_app):
    # The customer's receipt (another channel, another worker slot) would race the alert for the held DATA.
    receipt_services.settings_update(app=demo_app, enabled=False)
    make_rule()
    worker.start()

    decision = decide("cancel")
    delivery = AlertDelivery.objects.get(event__session=decision.session)
    assert slow_smtp.holding.wait(30), f"the worker never reached DATA:\n{worker.log_tail()}"
    worker.kill()
    slow_smtp.release()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == (AlertDelivery.Status.SENDING, 1)
    assert slow_smtp.accepted == []

    worker.start()  # the sweeper finds the claim whose lease ran out and sends the alert again
    [message] = slow_smtp.wait_for(1, timeout=60)
    wait_until(lambda: AlertDelivery.objects.get(pk=delivery.pk).status == AlertDelivery.Status.SUCCEEDED,
               timeout=20, what="the alert is marked sent")
    time.sleep(2.5)  # two more sweeps: nothing is sent twice

    assert message["Subject"] == "[Test] Canceled: jane@example.com (pro, 49)"
    # Two DATA commands reached the server: the killed attempt's, never answered, and the one accepted.
    assert (len(slow_smtp.accepted), slow_smtp.data_commands) == (1, 2)
    delivery.refresh_from_db()
    assert (delivery.attempt_count, delivery.last_error) == (2, "")
    assert services.delivery_send(delivery_id=delivery.pk).outcome == "skipped"
