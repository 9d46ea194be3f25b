"""Soak: one bad webhook endpoint must not hold up the rest, and faults lose nothing.

    eval "$(.venv/bin/python -m brightback_site.probe)"; .venv/bin/python bench/soak.py [--minutes 12]

What runs: PostgreSQL (its own database, `bench_soak`, dropped afterwards, on the DATABASE_URL server),
a Redis of its own (`redis-server` on a free port, so it can be stopped and restarted empty), gunicorn
with 4 sync workers serving the site (as docker-compose.yml runs it), two Celery workers with 2 slots
each consuming every queue, and one beat. Customer flows (/precancel, then a decision on the hosted
page: half cancel a subscription held in Stripe, half click Never mind) arrive at a steady rate. Each
event goes to three webhook endpoints: a healthy one, a flaky one (500 to a quarter of requests) and one that hangs
past the timeout on every request; each cancel is carried out in the local Stripe
server (billing/testing, through the official SDK, in a process of its own, its subscriptions seeded
straight in its store), which answers 429 or 500
to some calls; each cancel also alerts the team by email (a local SMTP server) and Slack (a local stand-in).
Meanwhile a worker is killed with SIGKILL several times (and restarted), beat once, and Redis is stopped
and restarted empty.

When the load stops it waits for the backlog to drain, then writes its rows to bench/results.json:
lost, duplicated and stuck effects, 5xx answers, decision latency, and the time from decision to
delivery on the healthy endpoint, to billing done and to alert sent (p50/p99). Latencies are given for
the flows decided outside the Redis outage (what the goals speak of) and for all of them.

`--split-pools` runs two pools instead (the README's "pools where a channel grows"): one worker of 8 slots
consuming only the webhooks queue (a webhooks-only pool's runs may take all its slots, so it needs many
more than the endpoints that may hang) and one of 2 slots consuming every other queue; its rows are named
`soak_split_*`.

`--seed-only` seeds the Stripe server as the run would (half the flows' subscriptions, straight in its
store: 3,600 for `--minutes 12`), says how long it took, and stops.

`--make-run` plays the issue's acceptance check instead, on the small install `make run` starts: one
worker with beat (3 slots, every queue, -O fair), a healthy endpoint and one hanging on every request,
150 cancels at 10 a second (each carried out in Stripe and alerted), no faults; its rows are named
`make_run_*`.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _results import record, row  # noqa: E402

BENCH_DB = "bench_soak"  # prepare_environment names it after the DATABASE_URL's database: <name>_soak
# gunicorn's sync workers as docker-compose.yml runs them (the README: about two per CPU).
WEB_WORKERS = 4
# --split-pools: the webhooks pool's slots. Its runs may take every one (webhooks/runs.py), and a run holds
# its process while its POST waits, so a wake-up finds a process only while runs hold fewer than all:
# many more than the endpoints that may hang at once (a slot waiting on a POST costs memory, not CPU).
WEBHOOK_POOL_SLOTS = 8
HANG_SECONDS = 20.0  # the hanging endpoint answers after this long, past the webhook timeout (15 s)


def _with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def _sinks_main(conn) -> None:  # noqa: ANN001
    """The three webhook receivers, the Slack stand-in and the SMTP server, in a process of their own."""
    from alerts.testing import SlackReceiver, SmtpServer
    from webhooks.testing import Receiver

    rng = random.Random(7)
    release = threading.Event()
    receivers = {
        "healthy": Receiver().start(),
        "flaky": Receiver(respond=lambda got: (500, {}, b"oops") if rng.random() < 0.25 else (200, {}, b"ok")).start(),
        "hanging": Receiver(respond=lambda got: (release.wait(HANG_SECONDS), (200, {}, b""))[1]).start(),
    }
    slack, smtp = SlackReceiver().start(), SmtpServer().start()
    conn.send({**{name: r.url for name, r in receivers.items()}, "slack": slack.url, "smtp_port": smtp.port})
    while True:
        command, *args = conn.recv()
        if command == "secret":
            receivers[args[0]].secrets.append(args[1])
            conn.send(None)
        elif command == "report":
            first_ok: dict[str, float] = {}
            copies = 0
            for got in receivers["healthy"].snapshot():
                if got.answered == 200:
                    copies += got.webhook_id in first_ok
                    first_ok.setdefault(got.webhook_id, got.at)
            bodies = [p.body for p in slack.snapshot() if p.answered == 200]
            emails = [m.raw for m in smtp.accepted]
            conn.send({"healthy_first_ok": first_ok, "healthy_copies": copies,
                       "flaky_ok": sorted({g.webhook_id for g in receivers["flaky"].snapshot() if g.answered == 200}),
                       "hanging_requests": len(receivers["hanging"].snapshot()),
                       "alert_duplicates": (len(bodies) - len(set(bodies))) + (len(emails) - len(set(emails)))})
        else:
            release.set()
            for receiver in (*receivers.values(), slack):
                receiver.stop()
            smtp.stop()
            conn.send(None)
            return


class Child:
    """A helper process answering commands over a pipe."""

    def __init__(self, target) -> None:  # noqa: ANN001
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=target, args=(child,), daemon=True)
        self.process.start()
        self.lock = threading.Lock()

    def call(self, method: str, *args: object, **kwargs: object) -> Any:
        with self.lock:
            self.conn.send((method, args, kwargs))
            return self.conn.recv()

    def send(self, *command: object) -> Any:
        with self.lock:
            self.conn.send(command)
            return self.conn.recv()

    def close(self, *command: object) -> None:
        if self.process.is_alive():
            self.send(*command)
            self.process.join(10)


def _stripe_main(conn) -> None:  # noqa: ANN001
    """The Stripe server in a process of its own (its own interpreter lock): seeding and serving the
    workers' calls do not compete with the load generator and the receivers."""
    from billing.testing import fake_billing

    fake = fake_billing("stripe")
    while True:
        method, args, kwargs = conn.recv()
        if method == "close":
            fake.close()
            conn.send(None)
            return
        if method == "seed_many":  # straight in the server's store (seconds, where HTTP took half an hour)
            conn.send(fake.seed_in_store([f"cus_{n}" for n in args[0]]))
            continue
        if method == "writes_many":
            conn.send([fake.writes(sub) for sub in args[0]])
            continue
        conn.send(getattr(fake, method)(*args, **kwargs))


def seed_stripe(stripe: Child, flows: int, *, make_run: bool) -> dict[int, str]:
    """Seed a subscription in the Stripe server for each flow that will cancel one (half of them; every
    one for --make-run): flow number -> subscription id."""
    billed = [n for n in range(flows) if make_run or n % 2 == 0]
    print(f"soak: seeding {len(billed)} subscriptions in the Stripe server…", flush=True)
    started = time.monotonic()
    subscriptions = dict(zip(billed, stripe.call("seed_many", billed), strict=True))
    print(f"soak: seeded {len(subscriptions)} in {time.monotonic() - started:.1f} s", flush=True)
    return subscriptions


class Redis:
    """A redis-server of the bench's own, on a free port, that can be stopped and started empty."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=open(self.workdir / "redis.log", "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis(port=self.port, socket_connect_timeout=0.5).ping():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class Proc:
    """A child process (gunicorn, a Celery worker, beat) in its own process group."""

    def __init__(self, name: str, argv: list[str], workdir: Path) -> None:
        self.name, self.argv, self.workdir = name, argv, workdir
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.workdir / f"{self.name}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(self.argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.kill9()


def prepare_environment(workdir: Path, redis_port: int, port: int) -> str:
    global BENCH_DB
    database_url = os.environ.get("DATABASE_URL", "")
    import psycopg
    from cryptography.fernet import Fernet

    # A database of its own next to the one it was given, so two checkouts benchmarking on one server
    # never drop each other's.
    BENCH_DB = f"{urlsplit(database_url).path.strip('/') or 'bench'}_soak"

    admin_url = _with_path(database_url, "/postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    os.environ.update({
        "DATABASE_URL": _with_path(database_url, f"/{BENCH_DB}"),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "DJANGO_SETTINGS_MODULE": "brightback_site.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(40),
        "FIELD_ENCRYPTION_KEYS": os.environ.get("FIELD_ENCRYPTION_KEYS") or Fernet.generate_key().decode(),
        "DEBUG": "0", "LOG_LEVEL": "WARNING", "RATE_LIMITS": "off", "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_COOKIES": "0", "SITE_URL": f"http://127.0.0.1:{port}", "BRIGHTBACK_VAR_DIR": str(workdir / "var"),
        "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        # Retries compressed a hundredfold (5 min → 3 s) so the flaky endpoint's and the billing
        # server's retries finish within the run; the webhook timeout and the leases keep their defaults.
        "WEBHOOK_RETRY_SCALE": "0.01", "BILLING_RETRY_SCALE": "0.01", "ALERT_RETRY_SCALE": "0.01",
        # A busy install's sweeper: every 5 s, for rows lost more than 10 s.
        "OUTBOX_SWEEP_SECONDS": "5", "OUTBOX_PUBLISH_GRACE_SECONDS": "10",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1",
        "EMAIL_USE_TLS": "0",
    })
    os.environ.pop("CELERY_TASK_ALWAYS_EAGER", None)
    return admin_url


def main() -> None:  # noqa: C901, PLR0915 - one scenario, told in order
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="how long the load lasts (default 2)")
    parser.add_argument("--rate", type=float, default=10.0, help="customer flows a second (default 10)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the benchmark's database and logs afterwards, to look into a run")
    parser.add_argument("--loglevel", default="WARNING",
                        help="the workers' log level (INFO logs every task with its run time)")
    parser.add_argument("--make-run", action="store_true",
                        help="the acceptance check: make run's one worker, 150 cancels, no faults")
    parser.add_argument("--split-pools", action="store_true",
                        help=f"a worker of {WEBHOOK_POOL_SLOTS} slots for webhooks only and one of 2 for every "
                             "other queue (the README's pools where a channel grows); rows named soak_split_*")
    parser.add_argument("--seed-only", action="store_true",
                        help="only seed the Stripe server as the run would, say how long it took, and stop")
    args = parser.parse_args()
    if args.make_run:
        args.minutes = 150 / args.rate / 60
    if args.seed_only:  # no database, no workers: the Stripe server alone
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brightback_site.settings")
        os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(40))
        stripe = Child(_stripe_main)
        try:
            seed_stripe(stripe, int(args.minutes * 60 * args.rate), make_run=args.make_run)
        finally:
            stripe.close("close", (), {})
        return
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        print("bench/soak.py: needs PostgreSQL (DATABASE_URL); skipped.")
        return
    if not shutil.which("redis-server"):
        print("bench/soak.py: needs redis-server; skipped.")
        return

    workdir = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    (workdir / "var").mkdir()
    redis_server = Redis(workdir)
    port = free_port()
    admin_url = prepare_environment(workdir, redis_server.port, port)
    duration = args.minutes * 60
    outage = 30.0 if args.minutes >= 10 else 10.0

    sinks = Child(_sinks_main)
    urls = sinks.conn.recv()
    os.environ["EMAIL_PORT"] = str(urls["smtp_port"])
    stripe = Child(_stripe_main)
    creds = stripe.call("credentials")
    # The operator's explicit trust in the local Stripe server (scheme, host and port must match).
    os.environ["BILLING_ALLOWED_API_BASES"] = creds.api_base
    import django

    django.setup()
    import requests
    from django.core.management import call_command
    from django.db import connections

    from alerts import services as alert_services
    from alerts.models import AlertDelivery
    from billing import services as billing_services
    from billing.models import BillingAction
    from flows.csrf import page_form_token  # the token the page's form carries (the same SECRET_KEY)
    from flows.models import App, Decision, Event
    from webhooks import endpoints as webhook_endpoints
    from webhooks.models import Delivery

    rng = random.Random(11)
    redis_server.start()
    procs: list[Proc] = []
    try:
        call_command("migrate", verbosity=0)
        call_command("demo_setup", stdout=open(os.devnull, "w"))  # noqa: SIM115
        app = App.objects.get(app_id="demo")
        endpoints = {}
        for name in ("healthy", "hanging") if args.make_run else ("healthy", "flaky", "hanging"):
            endpoint = webhook_endpoints.endpoint_create(app=app, url=urls[name])
            sinks.send("secret", name, endpoint.secret)
            endpoints[name] = endpoint.pk
        alert_services.rule_create(app=app, events=["session.canceled"], recipients=["team@example.com"],
                                   slack_webhook_url=urls["slack"])
        billing_services.connection_save(app=app, provider="stripe", api_key=creds.api_key, api_base=creds.api_base)

        flows = int(duration * args.rate)
        # Half the flows cancel a subscription held in Stripe; the other half click Never mind.
        subscriptions = seed_stripe(stripe, flows, make_run=args.make_run)
        connections.close_all()

        python = sys.executable
        procs.append(Proc("gunicorn", [python, "-m", "gunicorn", "brightback_site.wsgi", "--bind", f"127.0.0.1:{port}",
                                       "--workers", str(WEB_WORKERS), "--log-level", "warning",
                                       # Each request's own time in the worker (µs), for the server's side
                                       # of the decision's latency.
                                       "--access-logfile", str(workdir / "access.log"),
                                       "--access-logformat", "%(m)s %(U)s %(s)s %(D)s"], workdir))
        queues = "webhooks,billing,alerts,receipts,sweeps,reports,celery"
        if args.make_run:  # as the Makefile's `run` starts it
            procs.append(Proc("worker1", [python, "-m", "celery", "-A", "brightback_site", "worker", "--beat",
                                          "--loglevel", args.loglevel, "--concurrency", "3", "-O", "fair", "--queues",
                                          queues, "--schedule", str(workdir / "beat-schedule")], workdir))
        for n in () if args.make_run else (1, 2):
            consumed, slots = queues, 2
            if args.split_pools:
                consumed = "webhooks" if n == 1 else queues.replace("webhooks,", "")
                slots = WEBHOOK_POOL_SLOTS if n == 1 else 2
            procs.append(Proc(f"worker{n}", [python, "-m", "celery", "-A", "brightback_site", "worker", "--loglevel",
                                             args.loglevel, "--concurrency", str(slots), "-O", "fair", "--queues",
                                             consumed,
                                             "--hostname", f"soak{n}@%h", "--without-gossip", "--without-mingle"],
                              workdir))
        if not args.make_run:
            procs.append(Proc("beat", [python, "-m", "celery", "-A", "brightback_site", "beat", "--loglevel",
                                       "WARNING", "--schedule", str(workdir / "beat-schedule")], workdir))
        for proc in procs:
            proc.start()
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not start; see {workdir}/gunicorn.log")
            time.sleep(0.2)

        # --- the load, and the faults on a schedule ---------------------------------------------
        answers: list[tuple[int, int]] = []  # status codes of /precancel and of the decision
        decision_ms: list[float] = []
        lock = threading.Lock()
        local = threading.local()

        def flow(n: int) -> None:
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = requests.Session()
            cancel = n in subscriptions
            data = {"app_id": "demo", "email": f"c{n}@example.com",
                    "account": {"internal_id": f"acct_{n}", "plan": "pro", "value": 49},
                    "save_return_url": "http://127.0.0.1/account", "cancel_confirmation_url": "http://127.0.0.1/bye"}
            if n in subscriptions:
                data["subscription_id"] = subscriptions[n]
                data["account"]["billing_id"] = f"cus_{n}"
            first = session.post(f"http://127.0.0.1:{port}/precancel", json=data, timeout=30)
            second_status = 0
            if first.status_code == 200:
                token = first.json()["url"].rsplit("/", 1)[-1]
                started = time.monotonic()
                second = session.post(f"http://127.0.0.1:{port}/c/{token}", allow_redirects=False, timeout=30,
                                      data={"action": "cancel" if cancel else "nevermind", "reason": "too-expensive",
                                            "csrfmiddlewaretoken": page_form_token(token)},
                                      headers={"Referer": f"http://127.0.0.1:{port}/c/{token}"})
                took = (time.monotonic() - started) * 1000
                second_status = second.status_code
                with lock:
                    decision_ms.append(took)
            with lock:
                answers.append((first.status_code, second_status))

        def billing_faults(stop: threading.Event) -> None:
            # About one provider call in twelve answers 429 or 500 (some 8 calls every 1.5 s).
            while not stop.wait(1.5):
                stripe.call("fail_next", rng.choice((429, 500)), retry_after=1)

        faults_log: list[str] = []
        outage_window: list[float] = []
        workers = [p for p in procs if p.name.startswith("worker")]
        beat = next((p for p in procs if p.name == "beat"), None)

        def faults(stop: threading.Event) -> None:
            # Five worker kills in twelve minutes, as in the scenario this plays; at least two.
            kills_planned = max(2, round(5 * duration / 720))
            plan = sorted([(duration * (0.1 + 0.8 * k / kills_planned), "kill-worker") for k in range(kills_planned)]
                          + [(duration * 0.45, "kill-beat"), (duration * 0.25, "redis")])
            start = time.monotonic()
            kills = 0
            for at, what in plan:
                if stop.wait(max(0.0, start + at - time.monotonic())):
                    return
                if what == "kill-worker":
                    victim = workers[kills % 2]
                    kills += 1
                    victim.kill9()
                    faults_log.append(f"{time.monotonic() - start:.0f}s kill -9 {victim.name}")
                    stop.wait(2)
                    victim.start()
                elif what == "kill-beat" and beat is not None:
                    beat.kill9()
                    faults_log.append(f"{time.monotonic() - start:.0f}s kill -9 beat")
                    stop.wait(2)
                    beat.start()
                else:
                    outage_window.append(time.time())
                    redis_server.stop()
                    faults_log.append(f"{time.monotonic() - start:.0f}s Redis stopped for {outage:g} s")
                    stop.wait(outage)
                    redis_server.start()
                    outage_window.append(time.time())

        def sample_queues(stop: threading.Event) -> None:
            # Each queue's waiting messages and the messages workers hold, every second, for looking into
            # where the time goes (queues.log in the logs' folder).
            import redis

            client = redis.Redis(port=redis_server.port, socket_timeout=1, socket_connect_timeout=1)
            names = queues.split(",")
            with open(workdir / "queues.log", "a") as log:
                log.write("time " + " ".join(names) + " unacked\n")
                while not stop.wait(1):
                    try:
                        sizes = [client.llen(name) for name in names] + [client.hlen("unacked")]
                    except redis.RedisError:
                        continue
                    log.write(f"{time.time():.1f} " + " ".join(map(str, sizes)) + "\n")
                    log.flush()

        stop = threading.Event()
        sampler_stop = threading.Event()
        sampler = threading.Thread(target=sample_queues, args=(sampler_stop,), daemon=True)
        sampler.start()
        side = [] if args.make_run else [threading.Thread(target=billing_faults, args=(stop,), daemon=True),
                                         threading.Thread(target=faults, args=(stop,), daemon=True)]
        print(f"soak: {flows} flows at {args.rate:g}/s over {duration:.0f} s…", flush=True)
        load_started = time.time()
        for thread in side:
            thread.start()
        with ThreadPoolExecutor(16) as pool:
            futures = []
            t0 = time.monotonic()
            for n in range(flows):
                time.sleep(max(0.0, t0 + n / args.rate - time.monotonic()))
                futures.append(pool.submit(flow, n))
            errors = [f.exception() for f in futures if f.exception() is not None]
        stop.set()
        load_stopped = time.time()
        for thread in side:
            thread.join(outage + 10)
        print(f"soak: load done in {load_stopped - load_started:.0f} s; faults: {'; '.join(faults_log)}", flush=True)

        # --- drain ----------------------------------------------------------------------------------
        from django.db.models import Q
        from django.utils import timezone

        def overdue() -> int:
            now = timezone.now()
            late = now - timedelta(seconds=1)
            rows = (Delivery.objects.exclude(endpoint_id=endpoints["hanging"])
                    .filter(Q(status="pending", next_attempt_at__lt=late)
                            | Q(status="sending", lease_expires_at__lt=now))
                    .count())
            rows += BillingAction.objects.filter(Q(status="pending", next_attempt_at__lt=late)
                                                 | Q(status="running", lease_expires_at__lt=now)).count()
            rows += AlertDelivery.objects.filter(Q(status="pending", next_attempt_at__lt=late)
                                                 | Q(status="sending", lease_expires_at__lt=now)).count()
            return rows

        def unfinished() -> int:
            # Rows not finished, leaving aside retries scheduled for later (the flaky endpoint's).
            later = Q(status="pending", next_attempt_at__gt=timezone.now())
            return (Delivery.objects.exclude(endpoint_id=endpoints["hanging"])
                    .exclude(status="succeeded").exclude(later).count()
                    + BillingAction.objects.exclude(status__in=["succeeded", "failed", "skipped"])
                    .exclude(later).count()
                    + AlertDelivery.objects.exclude(status__in=["succeeded", "failed"]).exclude(later).count())

        def overdue_by_kind() -> str:
            # What the drain waits for, printed every 10 s while rows are overdue.
            now = timezone.now()
            late = now - timedelta(seconds=1)
            names = {pk: name for name, pk in endpoints.items()}
            kinds: dict[str, int] = {}
            for model, claimed, by in ((Delivery, "sending", "endpoint_id"), (BillingAction, "running", "kind"),
                                       (AlertDelivery, "sending", "kind")):
                for status, key in model.objects.filter(
                        Q(status="pending", next_attempt_at__lt=late) | Q(status=claimed, lease_expires_at__lt=now)
                ).exclude(**({"endpoint_id": endpoints["hanging"]} if model is Delivery else {})
                          ).values_list("status", by):
                    name = f"{model.__name__}:{names.get(key, key)}:{status}"
                    kinds[name] = kinds.get(name, 0) + 1
            return ", ".join(f"{name} {count}" for name, count in sorted(kinds.items()))

        drained_at = None
        deadline = time.monotonic() + 180
        next_report = time.monotonic() + 10
        while time.monotonic() < deadline:
            if drained_at is None and time.monotonic() >= next_report:
                next_report += 10
                print(f"soak: +{time.time() - load_stopped:.0f} s after the load, overdue: {overdue_by_kind()}",
                      flush=True)
            if overdue() == 0 and drained_at is None:
                drained_at = time.time()
            if unfinished() == 0:
                break
            time.sleep(1)
        settled_at = time.time()
        sampler_stop.set()
        drain_seconds = (drained_at or settled_at) - load_stopped

        # --- what happened --------------------------------------------------------------------------
        decisions = {d.pk: d for d in Decision.objects.all()}
        events = list(Event.objects.filter(type__in=["session.canceled", "session.nevermind"])
                      .values_list("id", "created_at", "type"))
        decided_at = {eid: created.timestamp() for eid, created, _ in events}

        def outside_outage(moment: float) -> bool:
            return not (len(outage_window) == 2 and outage_window[0] - 1 <= moment <= outage_window[1] + 15)

        report = sinks.send("report")
        first_ok: dict[str, float] = report["healthy_first_ok"]
        flaky_ok = set(report["flaky_ok"])
        healthy_ms = [(first_ok[e] - decided_at[e]) for e in decided_at if e in first_ok]
        healthy_ms_calm = [(first_ok[e] - decided_at[e]) for e in decided_at if e in first_ok
                           and outside_outage(decided_at[e])]
        # Where the healthy endpoint's tail comes from: the slowest 2% of its calm deliveries, by when in the
        # load they were decided (beside the faults' times above).
        slowest = sorted(((first_ok[e] - decided_at[e], decided_at[e] - load_started) for e in decided_at
                          if e in first_ok and outside_outage(decided_at[e])), reverse=True)
        tail = slowest[:max(1, len(slowest) // 50)]
        print("soak: healthy endpoint's slowest (decided at +s: waited s): "
              + ", ".join(f"+{at:.0f}: {waited:.1f}" for waited, at in sorted(tail, key=lambda t: t[1])), flush=True)
        lost_healthy = sum(1 for e in decided_at if e not in first_ok)
        flaky_retrying = set(Delivery.objects.filter(endpoint_id=endpoints.get("flaky"), status="pending")
                             .values_list("message_id", flat=True))
        lost_flaky = sum(1 for e in decided_at if e not in flaky_ok and e not in flaky_retrying)

        # A Never mind names the customer by email alone (they have no subscription in Stripe): billing
        # looks them up to remove a scheduled cancel, finds nobody and fails the action as designed,
        # without writing anything. Those are counted apart; every other action must succeed.
        unknown = Q(status="failed", kind="reactivate", last_error__startswith="no Stripe customer has the email")
        unknown_customers = BillingAction.objects.filter(unknown).count()
        actions = list(BillingAction.objects.exclude(unknown).select_related("event").values_list(
            "status", "finished_at", "event__created_at", "subscription_ids"))
        billing_s = [(f - c).total_seconds() for s, f, c, _ in actions if s == "succeeded" and f]
        billing_s_calm = [(f - c).total_seconds() for s, f, c, _ in actions
                          if s == "succeeded" and f and outside_outage(c.timestamp())]
        billing_not_done = sum(1 for s, *_ in actions if s not in ("succeeded",))
        cancels = sum(1 for _, _, t in events if t == "session.canceled")
        writes = stripe.call("writes_many", list(subscriptions.values()))
        double_writes = sum(1 for w in writes if w > 1)  # type: ignore[union-attr]

        alerts = list(AlertDelivery.objects.values_list("kind", "status", "sent_at", "occurred_at", "event_id"))
        alert_s = [(sent - occurred).total_seconds() for _, status, sent, occurred, _ in alerts
                   if status == "succeeded" and sent]
        alert_s_calm = [(sent - occurred).total_seconds() for _, status, sent, occurred, _ in alerts
                        if status == "succeeded" and sent and outside_outage(occurred.timestamp())]
        alerts_not_sent = sum(1 for _, status, *_ in alerts if status != "succeeded")
        alert_duplicates = report["alert_duplicates"]
        stuck = overdue()
        five_xx = sum(1 for a, b in answers if a >= 500 or b >= 500)
        failed_flows = len(errors) + sum(1 for a, b in answers if a != 200 or b != 303)

        if not decisions:
            statuses = sorted({f"{a} then {b}" for a, b in answers})
            raise SystemExit(f"bench/soak.py: no flow was decided ({', '.join(statuses) or 'no answer'}); "
                             f"nothing recorded; see {workdir}/gunicorn.log")
        decision_server_ms = []
        with open(workdir / "access.log") as access:
            for line in access:
                method, path, status, micros = line.split()
                if method == "POST" and path.startswith("/c/") and status == "303":
                    decision_server_ms.append(int(micros) / 1000)
        p = percentile
        rows = [
            row("soak_flows", len(answers), "flows", f"{args.rate:g}/s for {duration:.0f} s; "
                f"{len(decisions)} decisions, {cancels} cancels"),
            row("soak_5xx", five_xx, "answers", "0"),
            row("soak_failed_requests", failed_flows, "flows", "0 (not 200 then 303, or no answer)"),
            row("soak_decision_p50", p(decision_ms, 50), "ms", "reference"),
            row("soak_decision_p99", p(decision_ms, 99), "ms", "< 100 ms"),
            row("soak_decision_server_p50", p(decision_server_ms, 50), "ms",
                "reference: in the web worker (gunicorn's access log), without the wait for a free worker"),
            row("soak_decision_server_p99", p(decision_server_ms, 99), "ms", "reference: the same, p99"),
            row("soak_lost_healthy", lost_healthy, "events", "0: every event reached the healthy endpoint"),
            row("soak_lost_flaky", lost_flaky, "events", "0: every event reached the 500-a-quarter endpoint, "
                "or has its retry scheduled"),
            row("soak_flaky_retrying", len(flaky_retrying), "events", "reference: failed 4+ times in a row, "
                "retry scheduled (the schedule compressed 100x)"),
            row("soak_duplicated_healthy", report["healthy_copies"], "copies",
                "reference: at-least-once, same webhook-id (after killed workers)"),
            row("soak_billing_not_done", billing_not_done, "actions", f"0 of {len(actions)}"),
            row("soak_billing_unknown_customer", unknown_customers, "actions",
                "reference: a Never mind of a customer Stripe does not know, failed as designed (nothing written)"),
            row("soak_billing_double_writes", double_writes, "subscriptions", "0"),
            row("soak_alerts_not_sent", alerts_not_sent, "alerts", f"0 of {len(alerts)}"),
            row("soak_alerts_duplicated", alert_duplicates, "alerts", "0"),
            row("soak_stuck", stuck, "rows", "0 overdue at the end (the hanging endpoint's aside)"),
            row("soak_drain", drain_seconds, "s", "< 60 s from the load stopping to no overdue row"),
            row("soak_healthy_p50", p(healthy_ms_calm, 50), "s", "decision → healthy endpoint"),
            row("soak_healthy_p99", p(healthy_ms_calm, 99), "s", "< 10 s while the bad endpoints fail"),
            row("soak_billing_p50", p(billing_s_calm, 50), "s", "decision → billing done"),
            row("soak_billing_p99", p(billing_s_calm, 99), "s", "< 10 s"),
            row("soak_alert_p50", p(alert_s_calm, 50), "s", "decision → alert sent"),
            row("soak_alert_p99", p(alert_s_calm, 99), "s", "< 10 s"),
            row("soak_healthy_p99_all", p(healthy_ms, 99), "s", "reference: with the flows decided during the "
                f"{outage:g} s Redis outage"),
            row("soak_billing_p99_all", p(billing_s, 99), "s", "reference: the same, billing"),
            row("soak_alert_p99_all", p(alert_s, 99), "s", "reference: the same, alerts"),
        ]
        if args.split_pools:
            rows = [{**r, "name": "soak_split_" + r["name"].removeprefix("soak_")} for r in rows
                    if not r["name"].endswith("_all")]
        if args.make_run:
            dropped = ("soak_lost_flaky", "soak_flaky_retrying")
            rows = [{**r, "name": "make_run_" + r["name"].removeprefix("soak_")} for r in rows
                    if r["name"] not in dropped and not r["name"].endswith("_all")]
        record(rows)
        print(f"\nSoak: {'; '.join(faults_log)}")
        for r in rows:
            print(f"  {r['name']:<28} {r['value']:>9g} {r['unit']:<13} goal {r['goal']}")
        print(f"(logs in {workdir})")
    finally:
        for proc in reversed(procs):
            proc.stop()
        sinks.close("stop")
        stripe.close("close", (), {})
        redis_server.stop()
        connections.close_all()
        import psycopg

        if not args.keep:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
