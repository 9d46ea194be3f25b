"""Webhooks survive faults: a real `celery worker` (with embedded beat) on the real Redis broker, the test
database on PostgreSQL, and a real HTTP receiver on 127.0.0.1 verifying every delivery with the
`standardwebhooks` package.

Every wait is bounded. Time is compressed with settings (WEBHOOK_RETRY_SCALE, a short lease, a
one-second sweep), never by sleeping through real retry delays.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from conftest import need, worker_database_url
from flows.models import CancelSession, Event
from webhooks import services
from webhooks.models import Delivery, DeliveryAttempt, Endpoint
from webhooks.testing import Received, Receiver, in_turn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis]

REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
               "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"]
WORKER_ENV = {
    "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "WEBHOOK_RETRY_SCALE": "0.001",  # 5 s → 5 ms, 5 min → 0.3 s, 30 min → 1.8 s
    "WEBHOOK_TIMEOUT_SECONDS": "3",
    "WEBHOOK_LEASE_SECONDS": "5",  # a killed worker's claim is taken over after 5 s
    "WEBHOOK_PUBLISH_GRACE_SECONDS": "1",
    "OUTBOX_SWEEP_SECONDS": "1",
}


def redis_client():  # noqa: ANN201
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=2)


def redis_answers() -> bool:
    try:
        return bool(redis_client().ping())
    except Exception:  # noqa: BLE001 - any failure means "not answering"
        return False


def wait_until(condition, *, timeout: float, what: str, interval: float = 0.1) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not true after {timeout} s")
        time.sleep(interval)


class Worker:
    """`celery worker --beat` in its own process group, pointed at this test's database."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process: subprocess.Popen | None = None
        self.log_path = directory / "worker.log"
        self.starts = 0

    def start(self, *, timeout: float = 45) -> None:
        self.starts += 1
        env = {**os.environ, **WORKER_ENV, "DATABASE_URL": worker_database_url(), "REDIS_URL": settings.REDIS_URL,
               "SECRET_KEY": settings.SECRET_KEY, "DJANGO_SETTINGS_MODULE": "brightback_site.settings"}
        env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "brightback_site", "worker", "--beat",
             "--schedule", str(self.directory / "beat-schedule"), "--loglevel", "INFO", "--pool", "prefork",
             "--concurrency", "2", "--hostname", f"faults-{uuid.uuid4().hex[:8]}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()

        def ready() -> bool:
            assert self.process.poll() is None, f"the worker exited:\n{self.log_tail()}"
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

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def real_services() -> None:
    need(connection.vendor == "postgresql", "fault tests need PostgreSQL (DATABASE_URL)")
    need(bool(getattr(settings, "REDIS_URL", "")), "fault tests need Redis (REDIS_URL)")
    need(redis_answers(), f"Redis at {settings.REDIS_URL} does not answer")
    redis_client().flushdb()  # only this test database's Redis DB (15 in CI)


@pytest.fixture
def worker(real_services, tmp_path, settings) -> Iterator[Worker]:  # noqa: ANN001
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    from brightback_site import outbox

    outbox.resume()
    running = Worker(tmp_path)
    running.start()
    try:
        yield running
    finally:
        running.stop()
        outbox.resume()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def endpoint(demo_app, receiver) -> Endpoint:  # noqa: ANN001
    endpoint = services.endpoint_create(app=demo_app, url=receiver.url)
    receiver.secrets.append(endpoint.secret)
    return endpoint


def record_decision(client: Client, data: dict, *, action: str = "cancel") -> float:
    """The customer's two requests: the snippet's /precancel, then the decision on the hosted page.
    Returns how long the decision request took."""
    response = client.post("/precancel", data=json.dumps(data), content_type="application/json")
    assert response.status_code == 200, response.content
    token = response.json()["url"].rsplit("/", 1)[-1]
    started = time.monotonic()
    response = client.post(f"/c/{token}", {"action": action, "reason": "too-expensive"})
    took = time.monotonic() - started
    assert response.status_code == 303, response.status_code
    return took


def record_decisions(snippet_data, count: int) -> list[float]:  # noqa: ANN001
    client = Client()
    return [record_decision(client, snippet_data(email=f"customer{i}@example.com",
                                                 account={"internal_id": f"acct_{i}"}))
            for i in range(count)]


def assert_every_event_arrived_under_its_own_id(receiver: Receiver, events: list[Event]) -> None:
    got = [g for g in receiver.snapshot() if g.answered == 200]
    assert all(g.verified for g in receiver.snapshot()), "a delivery failed standardwebhooks verification"
    # None lost: every event was answered 200 at least once...
    assert {g.webhook_id for g in got} == {e.id for e in events}
    # ...and none delivered under two ids: each body names the id it was sent under, and every
    # copy of an event (at-least-once) is byte-identical, so receivers can dedupe on webhook-id.
    by_id: dict[str, set[bytes]] = {}
    for g in receiver.snapshot():
        assert g.payload["data"]["event_id"] == g.webhook_id
        by_id.setdefault(g.webhook_id, set()).add(g.body)
    assert all(len(bodies) == 1 for bodies in by_id.values())


def wait_for_all(receiver: Receiver, events: list[Event], *, timeout: float, worker: Worker) -> None:
    wanted = {e.id for e in events}
    try:
        receiver.wait_for(lambda got: wanted <= {g.webhook_id for g in got if g.answered == 200}, timeout=timeout)
    except TimeoutError as exc:
        missing = wanted - receiver.ids()
        raise AssertionError(f"{exc}; {len(missing)} events never arrived; worker log:\n{worker.log_tail()}") from None


def test_killing_the_worker_mid_delivery_loses_nothing(worker, receiver, endpoint, snippet_data):
    hanging, release = threading.Event(), threading.Event()
    seen: list[str] = []
    lock = threading.Lock()

    def respond(got: Received) -> tuple[int, dict, bytes]:
        with lock:
            seen.append(got.webhook_id)
            hang = len(seen) == 5
        if hang:  # the fifth delivery hangs until the worker sending it has been killed
            hanging.set()
            release.wait(20)
        return 200, {}, b"ok"

    receiver.respond = respond
    record_decisions(snippet_data, 12)
    events = list(Event.objects.all())
    assert len(events) == 12
    assert hanging.wait(30), f"no delivery reached the receiver; worker log:\n{worker.log_tail()}"

    worker.kill()
    release.set()
    interrupted = Delivery.objects.get(message_id=seen[4])
    assert interrupted.status == Delivery.Status.SENDING  # claimed by the dead worker
    worker.start()

    wait_for_all(receiver, events, timeout=60, worker=worker)
    assert_every_event_arrived_under_its_own_id(receiver, events)
    wait_until(lambda: not Delivery.objects.exclude(status=Delivery.Status.SUCCEEDED).exists(), timeout=15,
               what="every delivery succeeded")
    outcomes = list(interrupted.attempts.order_by("number").values_list("outcome", flat=True))
    assert outcomes[0] == DeliveryAttempt.Outcome.INTERRUPTED and outcomes[-1] == DeliveryAttempt.Outcome.SUCCEEDED


def test_a_redis_outage_fails_no_decision_and_loses_no_event(worker, receiver, endpoint, snippet_data):
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"], timeout=10,
                   capture_output=True)
    try:
        wait_until(lambda: not redis_answers(), timeout=15, what="Redis stopped")
        started = time.monotonic()
        durations = record_decisions(snippet_data, 50)
        elapsed = time.monotonic() - started
        # Every decision request succeeded (record_decisions checks each 303) and none waited on the broker.
        assert max(durations) < 2.0, f"slowest decision took {max(durations):.2f} s"
        assert elapsed < 60
        assert Delivery.objects.filter(status=Delivery.Status.PENDING).count() == 50
        assert CancelSession.objects.filter(status=CancelSession.Status.DECIDED).count() == 50
    finally:
        if not redis_answers():
            subprocess.run(REDIS_START, timeout=30, check=True)
        wait_until(redis_answers, timeout=30, what="Redis answers again")

    events = list(Event.objects.all())
    wait_for_all(receiver, events, timeout=120, worker=worker)
    assert_every_event_arrived_under_its_own_id(receiver, events)


def test_a_receiver_failing_twice_gets_the_event_on_the_third_attempt(worker, receiver, endpoint, snippet_data):
    receiver.respond = in_turn((500, {}, b"down"), (500, {}, b"still down"), then=(200, {}, b"ok"))
    started = time.monotonic()
    record_decisions(snippet_data, 1)
    event = Event.objects.get()

    wait_for_all(receiver, [event], timeout=30, worker=worker)

    assert time.monotonic() - started < 30
    assert [(g.webhook_id, g.answered) for g in receiver.snapshot()] == [(event.id, 500), (event.id, 500),
                                                                          (event.id, 200)]
    assert_every_event_arrived_under_its_own_id(receiver, [event])
    delivery = Delivery.objects.get()
    wait_until(lambda: Delivery.objects.get().status == Delivery.Status.SUCCEEDED, timeout=10, what="succeeded")
    attempts = list(delivery.attempts.order_by("number").values_list("number", "status_code", "outcome"))
    assert attempts == [(1, 500, "retrying"), (2, 500, "retrying"), (3, 200, "succeeded")]


def test_a_302_is_a_failure_and_is_not_followed(worker, receiver, endpoint, snippet_data):
    def respond(got: Received) -> tuple[int, dict, bytes]:
        if got.path != "/hooks":
            return 200, {}, b"followed"
        first = sum(1 for g in receiver.snapshot() if g.path == "/hooks") == 1
        return (302, {"Location": "/moved"}, b"") if first else (200, {}, b"ok")

    receiver.respond = respond
    record_decisions(snippet_data, 1)
    event = Event.objects.get()

    wait_for_all(receiver, [event], timeout=30, worker=worker)

    assert [g.path for g in receiver.snapshot()] == ["/hooks", "/hooks"]  # /moved was never requested
    wait_until(lambda: Delivery.objects.get().status == Delivery.Status.SUCCEEDED, timeout=10, what="succeeded")
    first, second = Delivery.objects.get().attempts.order_by("number")
    assert first.status_code == 302 and first.outcome == "retrying" and "not followed" in first.error
    assert second.status_code == 200 and second.outcome == "succeeded"
