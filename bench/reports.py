"""Report pages benchmark: each page's server time at 10k, 100k and 1M sessions on PostgreSQL.

    eval "$(.venv/bin/python -m brightback_site.probe)"; .venv/bin/python bench/reports.py [--sizes 10000,100000]

It works in its own database (`bench_reports` on the DATABASE_URL server unless --database names
another; dropped afterwards unless --keep), so it never touches the tests' data. For each size it tops the
seeded sessions up with `seed_sessions` (90 days, the seed App with its experiment and audiences), lets
the rollups be rebuilt as the command does, then requests every report page over those 90 days through
Django's test client as a logged-in superuser: one warm-up, then the median of --runs. It prints a table
(and merges its rows into bench/results.json, the shape `make bench` writes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGES = [("overview", {}), ("reasons", {}), ("offers", {}), ("experiments", {}), ("watch_list", {}),
         ("overview", {"filtered": True})]
GOAL_MS = 1000.0
DAYS = 90


def _fernet_key() -> str:
    """A bench-only key for the stored secrets (DEBUG is off, so one is required), the same every run so a
    kept database still reads."""
    import base64
    import hashlib

    return base64.urlsafe_b64encode(hashlib.sha256(b"bench-only field encryption key").digest()).decode()


def _database_url(name: str) -> tuple[str, str]:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("bench/reports.py measures PostgreSQL: set DATABASE_URL (eval \"$(.venv/bin/python -m "
                 "brightback_site.probe)\")")
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}")), urlunsplit(parts._replace(path="/postgres"))


def _ensure_database(admin_url: str, name: str, *, fresh: bool) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def _drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=os.environ.get("BENCH_REPORTS_SIZES", "10000,100000,1000000"),
                        help="Comma-separated session counts, ascending (default 10000,100000,1000000).")
    parser.add_argument("--database", default="bench_reports")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="Keep the database (and reuse its sessions next time).")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))

    url, admin_url = _database_url(args.database)
    _ensure_database(admin_url, args.database, fresh=not args.keep)
    os.environ.update({"DATABASE_URL": url, "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-only",
                       "FIELD_ENCRYPTION_KEYS": os.environ.get("FIELD_ENCRYPTION_KEYS") or _fernet_key(),
                       "RATE_LIMITS": "off", "DJANGO_SETTINGS_MODULE": "brightback_site.settings",
                       "ALLOWED_HOSTS": "testserver", "SECURE_COOKIES": "0", "LOG_LEVEL": "WARNING"})
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from flows.models import CancelSession, Variant

    call_command("migrate", verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True,
                                                                                  "is_superuser": True})
    client = Client()
    client.force_login(user)
    today = datetime.now(UTC).date()
    period = {"start": (today - timedelta(days=DAYS - 1)).isoformat(), "end": today.isoformat()}

    results: list[dict] = []
    try:
        for size in sizes:
            have = CancelSession.objects.count()
            if have > size:
                print(f"skipping {size:,}: the database already holds {have:,} sessions "
                      "(drop it, or run without --keep)")
                continue
            seeding = 0.0
            if size > have:
                began = time.monotonic()
                call_command("seed_sessions", str(size - have), "--days", str(DAYS), "--seed", str(size),
                             stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))
                seeding = time.monotonic() - began
            connection.cursor().execute("ANALYZE")
            variant = Variant.objects.filter(flow__app__app_id="seed", is_control=False).first()
            for page, options in PAGES:
                query = dict(period)
                name = page
                if options.get("filtered") and variant is not None:
                    query.update(app=str(variant.flow.app_id), flow=str(variant.flow_id), variant=str(variant.pk))
                    name = f"{page} (app+flow+variant)"
                target = reverse(f"reports:{page}")
                queries: list[str] = []

                def count(execute, sql, params, many, context, queries=queries):  # noqa: ANN001, ANN202
                    queries.append(sql)
                    return execute(sql, params, many, context)

                with connection.execute_wrapper(count):
                    assert client.get(target, query).status_code == 200
                times = []
                for _ in range(args.runs):
                    began = time.perf_counter()
                    response = client.get(target, query)
                    times.append((time.perf_counter() - began) * 1000)
                    assert response.status_code == 200
                results.append({"size": size, "page": name, "ms": statistics.median(times),
                                "queries": len(queries), "seed_s": seeding})
            _print(results, sizes)
    finally:
        if not args.keep:
            connection.close()
            _drop_database(admin_url, args.database)
    _write_results(results)


def _print(results: list[dict], sizes: list[int]) -> None:
    pages = list(dict.fromkeys(row["page"] for row in results))
    done = [size for size in sizes if any(row["size"] == size for row in results)]
    header = "| page | " + " | ".join(f"{size:,} sessions" for size in done) + " | queries |"
    print(header)
    print("|---|" + "---:|" * len(done) + "---:|")
    for page in pages:
        cells = {row["size"]: row for row in results if row["page"] == page}
        queries = sorted({row["queries"] for row in cells.values()})
        print(f"| {page} | " + " | ".join(f"{cells[s]['ms']:.0f} ms" if s in cells else "" for s in done)
              + f" | {'/'.join(map(str, queries))} |")
    sys.stdout.flush()


def _write_results(results: list[dict]) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from _results import record, row

    record([row(f"reports.{r['page']}@{r['size']}", r["ms"], "ms",
                f"< {GOAL_MS:.0f} ms, constant queries ({r['queries']})") for r in results])


if __name__ == "__main__":
    main()
