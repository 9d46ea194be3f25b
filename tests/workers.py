"""Real Celery workers for tests: `celery worker --beat` on the real Redis broker, pointed at the test's
PostgreSQL database, that a test can start, kill -9 and restart. Used by the fault tests and the browser
journeys that follow a decision into its channels.

Every wait is bounded. Time is compressed with settings (retry scales, a short lease, a one-second
sweep), never by sleeping through real retry delays.
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

import pytest
from django.conf import settings
from django.db import connection

from conftest import need, worker_database_url

WORKER_ENV = {
    "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "WEBHOOK_RETRY_SCALE": "0.001",  # 5 s → 5 ms, 5 min → 0.3 s, 30 min → 1.8 s
    "WEBHOOK_TIMEOUT_SECONDS": "3",
    "WEBHOOK_LEASE_SECONDS": "5",  # a killed worker's claim is taken over after 5 s
    "WEBHOOK_PUBLISH_GRACE_SECONDS": "1",
    "OUTBOX_SWEEP_SECONDS": "1",
    "OUTBOX_PUBLISH_GRACE_SECONDS": "1",
    "BILLING_RETRY_SCALE": "0.001",
    "BILLING_LEASE_SECONDS": "5",
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

    def __init__(self, directory: Path, env: dict[str, str] | None = None, *, concurrency: int = 2) -> None:
        self.directory, self.concurrency = directory, concurrency
        self.env = {**WORKER_ENV, **(env or {})}
        self.process: subprocess.Popen | None = None
        self.log_path = directory / "worker.log"
        self.starts = 0

    def start(self, *, timeout: float = 45) -> None:
        self.starts += 1
        env = {**os.environ, **self.env, "DATABASE_URL": worker_database_url(), "REDIS_URL": settings.REDIS_URL,
               "SECRET_KEY": settings.SECRET_KEY, "DJANGO_SETTINGS_MODULE": "brightback_site.settings"}
        env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "brightback_site", "worker", "--beat",
             "--schedule", str(self.directory / "beat-schedule"), "--loglevel", "INFO", "--pool", "prefork",
             "--concurrency", str(self.concurrency), "-O", "fair", "--queues", ",".join(settings.WORKER_QUEUES),
             "--hostname", f"faults-{uuid.uuid4().hex[:8]}@%h",
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


def need_real_services() -> None:
    """Skip (fail in CI) unless PostgreSQL and Redis are there; empty this run's Redis database."""
    need(connection.vendor == "postgresql", "fault tests need PostgreSQL (DATABASE_URL)")
    need(bool(getattr(settings, "REDIS_URL", "")), "fault tests need Redis (REDIS_URL)")
    need(redis_answers(), f"Redis at {settings.REDIS_URL} does not answer")
    redis_client().flushdb()  # only this test database's Redis DB (15 in CI)


@pytest.fixture
def real_services() -> None:
    need_real_services()


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
