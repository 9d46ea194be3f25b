"""Webhook delivery benchmark: decision-to-delivered latency and sustained throughput of one Celery
worker on PostgreSQL and Redis, next to a bare `requests.Session` loop POSTing the same bodies.

    eval "$(.venv/bin/python -m brightback_site.probe)"; .venv/bin/python bench/webhook_delivery.py

It creates its own database (BENCH_DB, default `bench_webhooks`, dropped afterwards) on the DATABASE_URL
server and starts its own `redis-server` on a free port (stopped afterwards), so it never touches the
tests' data or anyone else's Redis. The receiver runs in its own process and verifies every delivery with
`standardwebhooks`, as a customer's would.

Phases:
1. latency: N decisions recorded one after another at a steady rate while the worker runs; latency is
   from the start of `decision_record` (the customer's click) to the receiver reading the POST.
2. throughput: N more decisions recorded with the worker stopped, then the worker is started and the
   rate is measured from the first to the last delivery the receiver reads.
3. ceiling: the same N bodies, signed the same way, POSTed by a bare requests.Session loop in one process.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _results import record, row  # noqa: E402
from hot_path import _fernet_key, _with_path, free_port, postgres_url_or_skip, start_redis  # noqa: E402

BENCH_DB = os.environ.get("BENCH_DB", "bench_webhooks")


# --- the receiver, in its own process ----------------------------------------------------------

def _receiver_main(conn, secret: str) -> None:  # noqa: ANN001
    from webhooks.testing import Receiver

    receiver = Receiver(secrets=[secret]).start()
    conn.send(receiver.url)
    while True:
        command = conn.recv()
        if command == "stop":
            receiver.stop()
            conn.send("stopped")
            return
        if command == "clear":
            with receiver._changed:
                receiver.received.clear()
            conn.send("cleared")
        elif command == "snapshot":
            conn.send([(g.webhook_id, g.at, g.verified, g.answered) for g in receiver.snapshot()])


class ReceiverProcess:
    def __init__(self, secret: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_receiver_main, args=(child, secret), daemon=True)
        self.process.start()
        self.url = self.conn.recv()

    def call(self, command: str):  # noqa: ANN201
        self.conn.send(command)
        return self.conn.recv()

    def wait_for(self, ids: set[str], timeout: float) -> dict[str, float]:
        """Wait until every id was answered; return id → first arrival time."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.call("snapshot")
            first: dict[str, float] = {}
            for webhook_id, at, verified, answered in got:
                if not verified:
                    raise SystemExit(f"a delivery failed signature verification: {webhook_id}")
                if answered == 200 and webhook_id not in first:
                    first[webhook_id] = at
            if ids <= first.keys():
                return first
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out: {len(ids - first.keys())} of {len(ids)} deliveries missing")
            time.sleep(0.2)

    def stop(self) -> None:
        self.call("stop")
        self.process.join(5)


# --- the worker ----------------------------------------------------------------------------------

class Worker:
    def __init__(self, env: dict[str, str], concurrency: int, pool: str) -> None:
        self.env, self.concurrency, self.pool = env, concurrency, pool
        self.process: subprocess.Popen | None = None
        self.log = Path(tempfile.mkdtemp(prefix="bench-worker-")) / "worker.log"
        self.hostname = f"bench-{os.getpid()}@{socket.gethostname()}"

    def start(self) -> None:
        from django.conf import settings

        with open(self.log, "ab") as log:
            # Every queue, as `make run` does: webhooks.deliver is routed to `webhooks`, not the default.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "brightback_site", "worker", "--loglevel", "WARNING",
                 "--pool", self.pool, "--concurrency", str(self.concurrency), "--queues",
                 ",".join(settings.WORKER_QUEUES), "--without-gossip", "--without-mingle", "--without-heartbeat",
                 "--hostname", self.hostname],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        # At WARNING the worker does not log "ready": ask it over the broker instead.
        from brightback_site.celery import app

        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[self.hostname], timeout=0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


# --- setup ---------------------------------------------------------------------------------------

def prepare_environment(*, redis_port: int) -> tuple[str, str]:
    """The bench's own database, created empty, and the environment pointing at it and at the bench's own
    Redis on `redis_port` (started by the caller). Exits (skipped) before creating anything when
    PostgreSQL or redis-server is missing."""
    database_url = postgres_url_or_skip("webhook_delivery.py", tools=("redis-server",))
    import psycopg

    admin_url = _with_path(database_url, "/postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    bench_db_url = _with_path(database_url, f"/{BENCH_DB}")
    os.environ.update({
        "DATABASE_URL": bench_db_url, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "DJANGO_SETTINGS_MODULE": "brightback_site.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(40),
        "FIELD_ENCRYPTION_KEYS": os.environ.get("FIELD_ENCRYPTION_KEYS") or _fernet_key(),
        "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8", "LOG_LEVEL": "WARNING", "DEBUG": "0",
    })
    os.environ.pop("CELERY_TASK_ALWAYS_EAGER", None)
    return database_url, admin_url


def drop_database(admin_url: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


# --- the run -------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="decisions per second in the latency phase")
    parser.add_argument("--concurrency", type=int, default=max(2, os.cpu_count() or 2))
    parser.add_argument("--pool", default="prefork", choices=["prefork", "threads"])
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    redis_port = free_port()
    _, admin_url = prepare_environment(redis_port=redis_port)
    import django

    django.setup()
    import requests
    from django.core.management import call_command

    from flows import services as flow_services
    from flows.models import App, Event
    from flows.snippet_data import clean_snippet_data
    from webhooks import services, signing
    from webhooks.models import Delivery, Endpoint

    redis_server = None
    worker = None
    receiver = None
    try:
        redis_server = start_redis(port=redis_port, workdir=workdir)
        call_command("migrate", verbosity=0)
        call_command("demo_setup", stdout=open(os.devnull, "w"))  # noqa: SIM115
        app = App.objects.get(app_id="demo")
        secret = signing.secret_new()
        receiver = ReceiverProcess(secret)
        endpoint = Endpoint.objects.create(app=app, url=receiver.url, secret=secret)
        endpoint.full_clean()

        def sessions(count: int, tag: str) -> list:
            return [flow_services.session_start(app=app, data=clean_snippet_data({
                "app_id": "demo", "email": f"{tag}{i}@example.com", "subscription_id": f"sub_{tag}{i}",
                "account": {"internal_id": f"acct_{tag}{i}", "plan": "pro", "value": 49},
                "custom": {"seats": 3}, "cancel_confirmation_url": "http://127.0.0.1/canceled",
            })) for i in range(count)]

        worker = Worker(dict(os.environ), args.concurrency, args.pool)
        worker.start()

        # 1. latency, at a steady rate with the worker running
        pending = sessions(args.events, "lat")
        started_at: dict[str, float] = {}
        recording: list[float] = []
        interval = 1.0 / args.rate
        next_at = time.monotonic()
        for session in pending:
            next_at += interval
            t0 = time.time()
            decision = flow_services.decision_record(session=session, kind="cancel", reason_code="too-expensive",
                                                     feedback="benchmark")
            recording.append((time.time() - t0) * 1000)
            started_at[Event.objects.only("id").get(session=decision.session).id] = t0
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        arrived = receiver.wait_for(set(started_at), timeout=120)
        latencies = [(arrived[event_id] - t0) * 1000 for event_id, t0 in started_at.items()]

        # 2. throughput: queue N deliveries with the worker stopped, then let one worker drain them
        worker.stop()
        receiver.call("clear")
        queued = [flow_services.decision_record(session=s, kind="cancel", reason_code="too-expensive",
                                                feedback="benchmark") for s in sessions(args.events, "thr")]
        ids = set(Event.objects.filter(session__in=[d.session for d in queued]).values_list("id", flat=True))
        assert Delivery.objects.filter(message_id__in=ids).count() == len(ids)
        worker.start()
        arrived = receiver.wait_for(ids, timeout=300)
        first, last = min(arrived.values()), max(arrived.values())
        worker_rate = (len(arrived) - 1) / (last - first)
        worker.stop()

        # 3. the ceiling: the same bodies, signed the same way, from a bare requests.Session loop
        receiver.call("clear")
        bodies = [(d.message_id, services.body_bytes(d.payload))
                  for d in Delivery.objects.filter(message_id__in=ids)]
        session = requests.Session()
        t_start = time.monotonic()
        for message_id, body in bodies:
            timestamp = int(time.time())
            response = session.post(receiver.url, data=body, timeout=15, allow_redirects=False, headers={
                "Content-Type": "application/json", "webhook-id": message_id, "webhook-timestamp": str(timestamp),
                "webhook-signature": signing.signature_header(secrets=[secret], msg_id=message_id,
                                                              timestamp=timestamp, body=body)})
            response.content  # noqa: B018 - read the answer, as the worker does
            assert response.status_code == 200, response.status_code
        bare_rate = len(bodies) / (time.monotonic() - t_start)
        receiver.wait_for({m for m, _ in bodies}, timeout=30)

        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        ratio = worker_rate / bare_rate
        print()
        print(f"Webhook delivery: {args.events} events, PostgreSQL + Redis, one worker "
              f"(--pool {args.pool} --concurrency {args.concurrency}), {os.cpu_count()} CPUs")
        print(f"latency phase at {args.rate:g} decisions/s; mean {statistics.mean(latencies):.1f} ms, "
              f"max {max(latencies):.1f} ms, of which recording the decision (commit and wake-up "
              f"included) p50 {percentile(recording, 50):.1f} ms")
        print()
        rows = [
            ("decision → delivered p50", f"{p50:.1f} ms", "—", "target < 50 ms", p50 < 50),
            ("decision → delivered p99", f"{p99:.1f} ms", "—", "target < 250 ms", p99 < 250),
            ("deliveries per second", f"{worker_rate:.0f}/s", f"{bare_rate:.0f}/s",
             f"ratio {ratio:.0%} (target ≥ 60%)", ratio >= 0.6),
        ]
        record([
            row("webhooks", worker_rate, "delivered/s", ">= 0.6 x a bare requests.Session loop", baseline=bare_rate),
            row("decision_to_webhook_p50", p50, "ms", f"< 50 ms at {args.rate:g} decisions/s"),
            row("decision_to_webhook_p99", p99, "ms", f"< 250 ms at {args.rate:g} decisions/s"),
        ])
        print(f"| {'metric':<26} | {'worker':>10} | {'bare loop':>10} | {'':<28} | ok  |")
        print(f"|{'-' * 28}|{'-' * 12}|{'-' * 12}|{'-' * 30}|-----|")
        for name, ours, bare, note, ok in rows:
            print(f"| {name:<26} | {ours:>10} | {bare:>10} | {note:<28} | {'yes' if ok else 'NO':<3} |")
    finally:
        if worker is not None:
            worker.stop()
        if receiver is not None:
            receiver.stop()
        if redis_server is not None:
            redis_server.kill()
            redis_server.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
        drop_database(admin_url)


if __name__ == "__main__":
    main()
