"""The customer's hot path under a burst: /precancel, the hosted page and the decision POST, served by
gunicorn as production runs it (4 sync workers, persistent PostgreSQL connections), loaded by wrk from
a separate process on 127.0.0.1, each next to a baseline view of the same server in the same run.

    eval "$(.venv/bin/python -m brightback_site.probe)"; .venv/bin/python bench/hot_path.py

Bounded: each figure is a short wrk run (--seconds, default 5) after a 1-second warm-up, about a
minute in all. It creates its own database (`bench_hot_path`, dropped afterwards) and uses Redis DB 12.
Figures, not tests: on a shared machine they move with the neighbours' load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _results import record, row  # noqa: E402

BENCH_DB = "bench_hot_path"
BENCH_REDIS_DB = 12
PORT = int(os.environ.get("BENCH_PORT", "18101"))

PRECANCEL_BODY = {"app_id": "demo", "email": "jane@example.com", "subscription_id": "sub_1",
                  "account": {"internal_id": "acct_42", "plan": "pro", "value": 49},
                  "custom": {"seats": 3}, "context": {"locale": "en", "user_agent": "bench"},
                  "cancel_confirmation_url": "http://127.0.0.1/canceled"}

DECISION_LUA = """
local tokens, forms = {}, {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  local token, form = line:match("(%%S+) (%%S+)")
  tokens[#tokens + 1] = token; forms[#forms + 1] = form
end
local thread_count, n = 0, 0
function setup(thread) thread:set("offset", thread_count); thread_count = thread_count + 1 end
function init(args) n = 0 end
function request()
  local i = (n * %(threads)d + offset) %% #tokens + 1
  n = n + 1
  return wrk.format("POST", "/c/" .. tokens[i], {
    ["Content-Type"] = "application/x-www-form-urlencoded"},
    "csrfmiddlewaretoken=" .. forms[i] .. "&action=cancel&reason=too-expensive")
end
"""


def _fernet_key() -> str:
    """A bench-only key for the stored secrets (DEBUG is off, so one is required), the same every run so a
    kept database still reads."""
    import base64
    import hashlib

    return base64.urlsafe_b64encode(hashlib.sha256(b"bench-only field encryption key").digest()).decode()


def _with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


def prepare_environment() -> str:
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")) or not redis_url:
        print("bench/hot_path.py: needs PostgreSQL and Redis (DATABASE_URL and REDIS_URL); skipped.")
        raise SystemExit(0)
    if not shutil.which("wrk"):
        print("bench/hot_path.py: needs wrk (apt-get install wrk); skipped.")
        raise SystemExit(0)
    import psycopg

    admin_url = _with_path(database_url, "/postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    os.environ.update({
        "DATABASE_URL": _with_path(database_url, f"/{BENCH_DB}"),
        "REDIS_URL": _with_path(redis_url, f"/{BENCH_REDIS_DB}"),
        "DJANGO_SETTINGS_MODULE": "brightback_site.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(40),
        "FIELD_ENCRYPTION_KEYS": os.environ.get("FIELD_ENCRYPTION_KEYS") or _fernet_key(),
        "DEBUG": "0", "LOG_LEVEL": "WARNING", "RATE_LIMITS": "off", "BENCH_VIEWS": "1",
        "ALLOWED_HOSTS": "127.0.0.1", "SECURE_COOKIES": "0", "SITE_URL": f"http://127.0.0.1:{PORT}",
        "BRIGHTBACK_VAR_DIR": tempfile.mkdtemp(prefix="bench-var-"),
    })
    os.environ.pop("CELERY_TASK_ALWAYS_EAGER", None)
    return admin_url


def wrk(path: str, *, seconds: int, connections: int, threads: int, script: str | None = None,
        env: dict | None = None) -> dict:
    url = f"http://127.0.0.1:{PORT}{path}"
    base = ["wrk", f"-t{threads}", f"-c{connections}", "--latency", "--timeout", "5s"]
    if script:
        base += ["-s", script]
    run_env = {**os.environ, **(env or {})}
    subprocess.run([*base, "-d1s", url], capture_output=True, env=run_env, check=True)  # warm-up
    out = subprocess.run([*base, f"-d{seconds}s", url], capture_output=True, text=True, env=run_env,
                         check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\b", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rate": rate, "p50": ms("50"), "p99": ms("99"), "non_2xx_3xx": int(errors.group(1)) if errors else 0,
            "output": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    admin_url = prepare_environment()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from flows import csrf, services
    from flows.models import App, CancelSession, Decision
    from flows.snippet_data import clean_snippet_data

    server = None
    workdir = Path(tempfile.mkdtemp(prefix="bench-hot-path-"))
    try:
        call_command("migrate", verbosity=0)
        call_command("demo_setup", stdout=open(os.devnull, "w"))  # noqa: SIM115
        app = App.objects.get(app_id="demo")
        data = clean_snippet_data(PRECANCEL_BODY)
        page_session = services.session_start(app=app, data=data)
        count = 5000
        tokens = [services.session_start(app=app, data=data).token for _ in range(count)]
        # Each page's form carries its session's own token (flows/csrf.py), as a browser would post it.
        (workdir / "tokens").write_text("".join(f"{t} {csrf.page_form_token(t)}\n" for t in tokens))
        (workdir / "decision.lua").write_text(DECISION_LUA % {"threads": args.threads})
        (workdir / "precancel.lua").write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(json.dumps(PRECANCEL_BODY))}\n")
        (workdir / "post.lua").write_text('wrk.method = "POST"\n')

        # SQL queries per page view, read in this process with Django's own counter.
        client = Client(HTTP_HOST="127.0.0.1")
        client.get(f"/c/{page_session.token}")
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/c/{page_session.token}").status_code == 200
        page_queries = len(queries)
        connections.close_all()

        log = open(workdir / "gunicorn.log", "wb")  # noqa: SIM115
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "brightback_site.wsgi", "--bind", f"127.0.0.1:{PORT}",
             "--workers", str(args.workers), "--log-level", "warning"],
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

        common = {"seconds": args.seconds, "connections": args.connections, "threads": args.threads}
        bare_json = wrk("/bench/json", **common)
        bare_template = wrk("/bench/template", **common)
        select_insert = wrk("/bench/select-insert", script=str(workdir / "post.lua"), **common)
        precancel = wrk("/precancel", script=str(workdir / "precancel.lua"), **common)
        page = wrk(f"/c/{page_session.token}", **common)
        template_select = wrk(f"/bench/template-select?token={page_session.token}", **common)
        before = Decision.objects.count()
        started = time.monotonic()
        decision = wrk("/", script=str(workdir / "decision.lua"), env={"BENCH_TOKENS": str(workdir / "tokens")},
                       **common)
        elapsed = time.monotonic() - started
        decided = Decision.objects.count() - before
        # Decisions per second of the measured run: new decisions only (the warm-up's included in the count,
        # so the rate is the run's own, read from wrk, capped by the fresh sessions it had).
        fresh_rate = decision["rate"] if decided < count else decided / elapsed
        for name, result in [("bare json", bare_json), ("bare template", bare_template),
                             ("select+insert", select_insert), ("precancel", precancel), ("page", page),
                             ("decision", decision)]:
            if result["non_2xx_3xx"]:
                print(f"warning: {name}: {result['non_2xx_3xx']} answers were not 2xx/3xx")
        assert CancelSession.objects.filter(pk=page_session.pk, status="open").exists()

        rows = [
            row("precancel", precancel["rate"], "req/s", ">= 0.7 x one-SELECT-one-INSERT view",
                baseline=select_insert["rate"]),
            row("precancel_p99", precancel["p99"], "ms", f"< 100 ms at {args.connections} connections"),
            row("page", page["rate"], "req/s", ">= 0.6 x bare template view", baseline=bare_template["rate"]),
            row("page_sql_queries", page_queries, "queries", "<= 2"),
            row("template_select", template_select["rate"], "req/s",
                "reference: the bare template view after one indexed SELECT", baseline=bare_template["rate"]),
            row("decision", fresh_rate, "req/s", ">= 0.5 x one-SELECT-one-INSERT view",
                baseline=select_insert["rate"]),
            row("bare_json", bare_json["rate"], "req/s", "reference: the stack's ceiling"),
        ]
        record(rows)
        print(f"\nHot path: gunicorn --workers {args.workers}, wrk -t{args.threads} -c{args.connections} "
              f"-d{args.seconds}s, PostgreSQL + Redis; {decided} decisions recorded")
        for r in rows:
            print(f"  {r['name']:<18} {r['value']:>9g} {r['unit']:<8} baseline {r['baseline']!s:>9}  "
                  f"ratio {r['ratio']!s:>6}  goal {r['goal']}")
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        connections.close_all()
        import psycopg

        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
