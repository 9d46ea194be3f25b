"""A worker killed in the middle of sending an alert loses nothing: a real `celery worker --beat` on the
real Redis broker and the test database on PostgreSQL, a real SMTP server that keeps the DATA command
waiting, and kill -9 on the worker's whole process group.

Time is compressed with settings (a five-second lease, a one-second sweep), never by sleeping through
real delays; every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from alerts import services
from alerts.models import AlertDelivery
from alerts.testing import SmtpServer, wait_until
from conftest import need

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis]


def redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=2).ping())
    except Exception:  # noqa: BLE001 - any failure means "not answering"
        return False


def database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """`celery worker --beat` in its own process group, pointed at this test's database and SMTP server."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.directory, self.env = directory, env
        self.log_path = directory / "worker.log"
        self.process: subprocess.Popen | None = None

    def start(self, *, timeout: float = 45) -> None:
        env = {**os.environ, **self.env, "DATABASE_URL": database_url(), "REDIS_URL": settings.REDIS_URL,
               "SECRET_KEY": settings.SECRET_KEY, "DJANGO_SETTINGS_MODULE": "brightback_site.settings"}
        env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "brightback_site", "worker", "--beat",
                 "--schedule", str(self.directory / "beat-schedule"), "--loglevel", "INFO", "--pool", "prefork",
                 "--concurrency", "1", "--hostname", f"alerts-{uuid.uuid4().hex[:8]}@%h",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)

        def ready() -> bool:
            assert self.process is not None and self.process.poll() is None, f"the worker exited:\n{self.tail()}"
            return b" ready." in self.log_path.read_bytes()[offset:]

        wait_until(ready, timeout=timeout, what="worker ready")

    def kill(self) -> None:
        """kill -9 the worker and its pool processes, as a crashed machine would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def slow_smtp() -> Iterator[SmtpServer]:
    with SmtpServer(hold=True) as server:
        yield server


@pytest.fixture
def worker(tmp_path, slow_smtp) -> Iterator[Worker]:  # noqa: ANN001
    need(connection.vendor == "postgresql", "fault tests need PostgreSQL (DATABASE_URL)")
    need(bool(getattr(settings, "REDIS_URL", "")), "fault tests need Redis (REDIS_URL)")
    need(redis_answers(), f"Redis at {settings.REDIS_URL} does not answer")
    import redis

    redis.Redis.from_url(settings.REDIS_URL).flushdb()  # only this test run's Redis database
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


def test_a_worker_killed_during_a_slow_smtp_data_loses_nothing(worker, slow_smtp, make_rule, decide):
    make_rule()
    worker.start()

    decision = decide("cancel")
    delivery = AlertDelivery.objects.get(event__session=decision.session)
    assert slow_smtp.holding.wait(30), f"the worker never reached DATA:\n{worker.tail()}"
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
