"""The sessions CSV export at 300,000 sessions, served by gunicorn as production runs it: rows a second and
the time to the first byte (and to the first session's line), next to the previous way of writing it
(Python's csv module over the database's cursor, still SQLite's) measured in the same run.

    eval "$(.venv/bin/python -m brightback_site.probe)"; .venv/bin/python bench/export.py [--sessions 300000]

It works in its own database (`bench_export` on the DATABASE_URL server; dropped afterwards unless --keep,
which also reuses its sessions next time), seeds it with `seed_sessions` (90 days), then downloads the
whole range as a logged-in superuser with a streaming HTTP client, --runs times each way, and keeps the
median. The baseline is the same view with COPY switched off, mounted with the bench views (BENCH_VIEWS=1).
Figures, not tests: on a shared machine they move with the neighbours' load.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _results import record, row  # noqa: E402
from hot_path import _fernet_key, _with_path  # noqa: E402

PORT = int(os.environ.get("BENCH_PORT", "18102"))
DAYS = 90
GOAL_ROWS = 50_000
GOAL_FIRST_BYTE_MS = 1000.0


def download(url: str, cookies: dict[str, str]) -> dict[str, float]:
    """One whole download: seconds to the first body byte, to the first session's line, to the end; lines."""
    import requests

    began = time.perf_counter()
    first_byte = first_row = None
    lines = 0
    with requests.get(url, cookies=cookies, stream=True, timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_content(chunk_size=256 * 1024):
            now = time.perf_counter()
            if first_byte is None:
                first_byte = now - began
            lines += chunk.count(b"\r\n")
            if first_row is None and lines >= 2:
                first_row = now - began
    ended = time.perf_counter() - began
    return {"first_byte": first_byte or ended, "first_row": first_row or ended, "seconds": ended,
            "rows": lines - 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=300_000)
    parser.add_argument("--database", default="bench_export")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        print("bench/export.py: needs PostgreSQL (DATABASE_URL); skipped.")
        raise SystemExit(0)
    import psycopg

    admin_url = _with_path(database_url, "/postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [args.database]).fetchone()
        if exists and not args.keep:
            conn.execute(f'DROP DATABASE "{args.database}" WITH (FORCE)')
        if not exists or not args.keep:
            conn.execute(f'CREATE DATABASE "{args.database}"')
    os.environ.update({
        "DATABASE_URL": _with_path(database_url, f"/{args.database}"),
        "DJANGO_SETTINGS_MODULE": "brightback_site.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-only",
        "FIELD_ENCRYPTION_KEYS": os.environ.get("FIELD_ENCRYPTION_KEYS") or _fernet_key(),
        "DEBUG": "0", "LOG_LEVEL": "WARNING", "RATE_LIMITS": "off", "BENCH_VIEWS": "1",
        "ALLOWED_HOSTS": "127.0.0.1", "SECURE_COOKIES": "0",
        "BRIGHTBACK_VAR_DIR": tempfile.mkdtemp(prefix="bench-var-"),
    })
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test import Client

    from flows.models import CancelSession

    server = None
    workdir = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        call_command("migrate", verbosity=0)
        have = CancelSession.objects.count()
        if have < args.sessions:
            began = time.monotonic()
            call_command("seed_sessions", str(args.sessions - have), "--days", str(DAYS), "--seed", "15",
                         stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))  # noqa: SIM115
            print(f"seeded {args.sessions - have:,} sessions in {time.monotonic() - began:.0f} s")
        connection.cursor().execute("ANALYZE")
        user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True,
                                                                                      "is_superuser": True})
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        cookies = {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}
        today = datetime.now(UTC).date()
        # The whole seeded range (and a day either side, whatever the team's time zone).
        query = f"start={today - timedelta(days=DAYS + 1)}&end={today + timedelta(days=1)}&include_test=on"
        expected = CancelSession.objects.filter(opened_at__isnull=False).count()
        connections.close_all()

        log = open(workdir / "gunicorn.log", "wb")  # noqa: SIM115
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "brightback_site.wsgi", "--bind", f"127.0.0.1:{PORT}",
             "--workers", str(args.workers), "--log-level", "warning", "--timeout", "600"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        import requests

        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{PORT}/bench/json", timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not start:\n{(workdir / 'gunicorn.log').read_text()[-3000:]}")
            time.sleep(0.2)

        base = f"http://127.0.0.1:{PORT}"
        ways = {"copy": f"{base}/admin/reports/sessions.csv?{query}",
                "python": f"{base}/bench/sessions-csv-python?{query}"}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in ways}
        for _ in range(args.runs):  # interleaved, so both ways see the same neighbours
            for name, url in ways.items():
                got = download(url, cookies)
                if got["rows"] != expected:
                    raise SystemExit(f"{name}: {got['rows']:,} rows, expected {expected:,}")
                results[name].append(got)

        def median(name: str, key: str) -> float:
            return statistics.median(r[key] for r in results[name])

        rate = {name: expected / median(name, "seconds") for name in ways}
        rows = [
            row("export_csv", rate["copy"], "rows/s", f">= {GOAL_ROWS:,} rows/s under gunicorn",
                baseline=rate["python"]),
            row("export_csv_first_byte", median("copy", "first_byte") * 1000, "ms",
                f"< {GOAL_FIRST_BYTE_MS:.0f} ms at {expected:,} sessions",
                baseline=median("python", "first_byte") * 1000),
            row("export_csv_first_row", median("copy", "first_row") * 1000, "ms",
                "reference: to the first session's line", baseline=median("python", "first_row") * 1000),
        ]
        record(rows)
        print(f"\nSessions CSV: {expected:,} sessions, gunicorn --workers {args.workers}, median of {args.runs}; "
              f"baseline: the csv module over the cursor, same run")
        for r in rows:
            print(f"  {r['name']:<22} {r['value']:>10g} {r['unit']:<7} baseline {r['baseline']!s:>9}  "
                  f"ratio {r['ratio']!s:>6}  goal {r['goal']}")
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        connections.close_all()
        if not args.keep:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
