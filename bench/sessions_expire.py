"""Closing expired sessions: how many open sessions past their expiry one beat run closes per second,
each with its `session.abandoned` event and a webhook delivery row for the App's endpoint.

    eval "$(.venv/bin/python -m brightback_site.probe)"; .venv/bin/python bench/sessions_expire.py

Creates its own database (`bench_sessions_expire`, dropped afterwards); bounded by --sessions.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _results import record, row  # noqa: E402
from hot_path import _fernet_key, _with_path, free_port, postgres_url_or_skip, start_redis  # noqa: E402

BENCH_DB = os.environ.get("BENCH_DB", "bench_sessions_expire")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=5000)
    args = parser.parse_args()
    database_url = postgres_url_or_skip("sessions_expire.py", tools=("redis-server",))
    import psycopg

    workdir = Path(tempfile.mkdtemp(prefix="bench-expire-"))
    redis_port = free_port()
    admin_url = _with_path(database_url, "/postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    os.environ.update({
        "DATABASE_URL": _with_path(database_url, f"/{BENCH_DB}"), "DJANGO_SETTINGS_MODULE": "brightback_site.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(40),
        "FIELD_ENCRYPTION_KEYS": os.environ.get("FIELD_ENCRYPTION_KEYS") or _fernet_key(), "DEBUG": "0",
        "LOG_LEVEL": "WARNING", "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "BRIGHTBACK_VAR_DIR": tempfile.mkdtemp(prefix="bench-var-"),
        # Publishing wake-ups goes to a broker nobody reads: a Redis of the bench's own.
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
    })
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from django.utils import timezone

    from flows import services
    from flows.models import App, CancelSession, Event
    from flows.snippet_data import clean_snippet_data
    from webhooks.models import Delivery, Endpoint

    redis_server = start_redis(port=redis_port, workdir=workdir)
    try:
        call_command("migrate", verbosity=0)
        call_command("demo_setup", stdout=open(os.devnull, "w"))  # noqa: SIM115
        app = App.objects.get(app_id="demo")
        Endpoint.objects.create(app=app, url="http://127.0.0.1:9/hook")
        template = services.session_start(app=app, data=clean_snippet_data({
            "app_id": "demo", "email": "jane@example.com", "account": {"internal_id": "acct_1"}}))
        past = timezone.now() - timedelta(minutes=1)
        CancelSession.objects.bulk_create([
            CancelSession(app=app, flow_id=template.flow_id, email=f"c{n}@example.com", data=template.data,
                          account_internal_id=f"acct_{n}", expires_at=past, created_at=past - timedelta(days=1),
                          opened_at=past - timedelta(days=1))  # opened pages: each is abandoned with its event
            for n in range(args.sessions)], batch_size=1000)
        expected = CancelSession.objects.filter(status="open", expires_at__lte=timezone.now(),
                                                opened_at__isnull=False).count()
        started = time.monotonic()
        closed = services.sessions_abandon_expired()
        elapsed = time.monotonic() - started
        assert closed == expected, (closed, expected)
        assert Event.objects.filter(type="session.abandoned").count() == closed
        assert Delivery.objects.count() == closed
        rate = closed / elapsed
        record([row("sessions_expire", rate, "closed/s", ">= 2000/s")])
        print(f"\nSessions expiry: {closed} sessions closed in {elapsed:.1f} s by one run: {rate:.0f}/s "
              "(each with its event and a webhook delivery row)")
    finally:
        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        redis_server.kill()
        redis_server.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
