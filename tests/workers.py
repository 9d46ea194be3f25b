"""Real Celery workers for tests: `celery worker --beat` on a real Redis broker, pointed at the test's
PostgreSQL database, that a test can start, kill -9 and restart. Used by the fault tests and the browser
journeys that follow a decision into its channels.

Each such test runs its own `redis-server` on a free port (RedisServer), and points this process's
broker and cache at it: a test may stop and restart that Redis, and never touches the machine's.

Every wait is bounded. Time is compressed with settings (retry scales, a short lease, a one-second
sweep), never by sleeping through real retry delays.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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
    """A client of the Redis this test's broker and cache use (its own, under the `real_services` fixture)."""
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
               "SECRET_KEY": settings.SECRET_KEY, "DJANGO_SETTINGS_MODULE": "brightback_site.settings",
               "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS)}
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A `redis-server` of the test's own: a free port, a temporary folder, no persistence. The test may
    stop it (an outage) and start it again on the same port; it is stopped at the end whatever happens."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5,
                                    socket_timeout=1).ping())
        except Exception:  # noqa: BLE001 - any failure means "not answering"
            return False

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

        def up() -> bool:
            assert self.process.poll() is None, f"redis-server exited:\n{self.log_tail()}"
            return self.answers()

        wait_until(up, timeout=15, what=f"redis-server on port {self.port} answers")

    def stop(self) -> None:
        """Stop this server (SIGTERM to its own process: nothing to save) and wait until it is gone."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 20) -> str:
        path = self.directory / "redis.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@contextmanager
def broker_and_cache_at(url: str, django_settings) -> Iterator[None]:  # noqa: ANN001
    """Point this process's Celery broker and Django cache at `url` (the test's own Redis), then back."""
    from brightback_site.celery import app

    previous = app.conf.broker_url
    django_settings.REDIS_URL = url
    django_settings.CELERY_BROKER_URL = url
    # The worker shares the cache with this process (the App copies' versions), so both use this Redis.
    django_settings.CACHES = {"default": {"BACKEND": "brightback_site.cache.RedisCache", "LOCATION": url,
                                          "KEY_PREFIX": "bb",
                                          "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}

    def forget_pools() -> None:  # as Celery does after a fork: the next publish opens a pool for the new URL
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_url = url
    forget_pools()
    assert str(app.connection_for_write().port) in url
    try:
        yield
    finally:
        app.pool.force_close_all()  # this Redis's connections, not the machine's
        app.conf.broker_url = previous
        forget_pools()


def need_real_services() -> None:
    """Skip (fail in CI) unless PostgreSQL and a redis-server to start are there."""
    need(connection.vendor == "postgresql", "fault tests need PostgreSQL (DATABASE_URL)")
    need(shutil.which("redis-server") is not None, "fault tests start their own redis-server (apt-get install redis)")


@pytest.fixture
def real_services(tmp_path, settings) -> Iterator[RedisServer]:  # noqa: ANN001
    """PostgreSQL (the test database) and a Redis of this test's own, broker and cache of this process."""
    need_real_services()
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        with broker_and_cache_at(server.url, settings):
            yield server
    finally:
        server.stop()


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
