"""The customer's hot path as it is deployed: /precancel, the hosted page and the decision POST, each
measured against a baseline view of the same server, in the same run, under the same conditions.

    eval "$(.venv/bin/python -m brightback_site.probe)"; .venv/bin/python bench/hot_path.py

As deployed means:
- gunicorn as docker-compose.yml runs it: 4 sync workers, the access log on stdout (`--access-logfile -`),
  Python unbuffered as the image sets it;
- the production settings as .env.example gives them: DEBUG off, the default logging (LOG_LEVEL INFO, one
  JSON line per record), persistent connections. Only the abuse limits are off (RATE_LIMITS=off, DESIGN §8):
  wrk sends everything from one address;
- a database that has served for a while: --sessions (default 200,000) sessions of the demo App over 90
  days with their decisions and events (`manage.py seed_sessions`), analysed as autovacuum does, then a
  fifth of them written again as the page and the expiry sweep do, leaving the dead rows and index entries
  autovacuum has not cleared yet (it waits for a fifth of a table to be dead);
- customers who differ: each /precancel names another account, the page is read for 2,000 sessions of the
  last day (each already opened once), and each decision closes another customer's open session.
The baselines are views of the same server (brightback_site/bench_views.py, mounted with BENCH_VIEWS=1), so
they pay the same middleware, logging and database.

Rounds: every figure is measured --rounds times (--seconds each), the product's runs between its
baselines' in an order that turns every round, so a change of the neighbours' load favours none of them. A
rate is the mean over the rounds and a ratio that of the means; the rounds' own ratios are printed for the
spread. The `*_cpu` rows read the CPU time each request cost the processes that served it (gunicorn's
workers, the database's backends and the bench's own Redis, started as docker-compose.yml runs it): on a
machine shared with other work the rates move with the neighbours, the CPU per request much less.
It creates its own database (BENCH_DB, default `bench_hot_path`, dropped afterwards).
Figures, not tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _results import record, row  # noqa: E402

BENCH_DB = os.environ.get("BENCH_DB", "bench_hot_path")
PORT = int(os.environ.get("BENCH_PORT", "18101"))
WORKERS = 4  # docker-compose.yml's web service

PRECANCEL_BODY = {"app_id": "demo", "email": "jane@example.com", "subscription_id": "sub_1",
                  "account": {"internal_id": "acct_42", "plan": "pro", "value": 49},
                  "custom": {"seats": 3}, "context": {"locale": "en", "user_agent": "bench"},
                  "cancel_confirmation_url": "http://127.0.0.1/canceled"}

# Each request another customer: the account, email and subscription carry the request's number.
PRECANCEL_LUA = """
local body = [[%(body)s]]
local thread_count, n = 0, 0
function setup(thread) thread:set("offset", thread_count); thread_count = thread_count + 1 end
function init(args) n = 0 end
function request()
  n = n + 1
  local who = tostring(offset) .. "_" .. tostring(n) .. "_" .. tostring(math.random(1, 1000000000))
  return wrk.format("POST", "/precancel", {["Content-Type"] = "application/json"},
    (body:gsub("CUSTOMER", who)))
end
"""

# One path per request, taken in turn from the file BENCH_PATHS names (each thread its share).
PATHS_LUA = """
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local thread_count, n = 0, 0
function setup(thread) thread:set("offset", thread_count); thread_count = thread_count + 1 end
function init(args) n = 0 end
function request()
  local i = (n * %(threads)d + offset) %% #paths + 1
  n = n + 1
  return wrk.format("GET", paths[i])
end
"""

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


def postgres_url_or_skip(script: str, *, tools: tuple[str, ...]) -> str:
    """DATABASE_URL when it names PostgreSQL and every one of `tools` is installed; else says what `script`
    needs and exits, skipped (make bench goes on with the next)."""
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        print(f"bench/{script}: needs PostgreSQL (DATABASE_URL); skipped.")
        raise SystemExit(0)
    for tool in tools:
        if not shutil.which(tool):
            print(f"bench/{script}: needs {tool} (apt-get install {tool}); skipped.")
            raise SystemExit(0)
    return database_url


def prepare_environment(*, reuse: bool, redis_port: int) -> str:
    database_url = postgres_url_or_skip("hot_path.py", tools=("wrk", "redis-server"))
    import psycopg

    admin_url = _with_path(database_url, "/postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone()
        if exists and not reuse:
            conn.execute(f"DROP DATABASE {BENCH_DB} WITH (FORCE)")
        if not (exists and reuse):
            conn.execute(f"CREATE DATABASE {BENCH_DB}")
    os.environ.update({
        "DATABASE_URL": _with_path(database_url, f"/{BENCH_DB}"),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "DJANGO_SETTINGS_MODULE": "brightback_site.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(40),
        "FIELD_ENCRYPTION_KEYS": os.environ.get("FIELD_ENCRYPTION_KEYS") or _fernet_key(),
        "DEBUG": "0", "RATE_LIMITS": "off", "BENCH_VIEWS": "1", "PYTHONUNBUFFERED": "1",
        "ALLOWED_HOSTS": "127.0.0.1", "SECURE_COOKIES": "0", "SITE_URL": f"http://127.0.0.1:{PORT}",
        "BRIGHTBACK_VAR_DIR": tempfile.mkdtemp(prefix="bench-var-"),
    })
    # The deployed defaults, whatever this shell says: INFO, JSON lines, connections kept, statements prepared.
    for name in ("LOG_LEVEL", "LOG_FORMAT", "DB_CONN_MAX_AGE", "DB_PREPARED_STATEMENTS", "DB_HEALTH_CHECK_BYPASS_MS",
                 "CELERY_TASK_ALWAYS_EAGER", "WEB_CONCURRENCY"):
        os.environ.pop(name, None)
    return admin_url


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_redis(*, port: int, workdir: Path) -> subprocess.Popen:
    """Redis as docker-compose.yml runs it (append-only file on), the bench's own: its CPU is the bench's."""
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
         "--dir", str(workdir)], stdout=open(workdir / "redis.log", "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
    import redis

    deadline = time.monotonic() + 10
    while True:
        try:
            if redis.Redis(port=port, socket_connect_timeout=0.5).ping():
                return process
        except redis.RedisError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("redis-server did not start")
        time.sleep(0.05)


# Each figure's baseline, the view its ratio is taken against.
BASELINES = {"precancel": "select_insert", "page": "bare_template", "template_select": "bare_template",
             "decision": "select_insert"}


class Cpu:
    """CPU time (user and system) of the processes that serve a request: the gunicorn workers, the bench
    database's PostgreSQL backends and the bench's Redis. A machine shared with other work slows every run
    by its own amount, but each request still costs the same CPU: the baseline's cost over the product's
    is the ratio a machine of the bench's own would show."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, *, gunicorn: int, redis: int) -> None:
        self.gunicorn, self.redis = gunicorn, redis

    def pids(self) -> dict[str, list[int]]:
        """The processes, by part: gunicorn's workers, PostgreSQL's backends, Redis."""
        from django.db import connection

        workers = [int(d.name) for d in Path("/proc").iterdir()
                   if d.name.isdigit() and _ppid(int(d.name)) == self.gunicorn]
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid()")
            backends = [pid for (pid,) in cursor.fetchall()]
        return {"gunicorn": workers, "postgresql": backends, "redis": [self.redis]}

    @classmethod
    def seconds(cls, pids: dict[str, list[int]]) -> dict[str, float]:
        """CPU seconds so far, by part."""
        parts = {}
        for part, members in pids.items():
            total = 0
            for pid in members:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
                except OSError:
                    continue
                total += int(fields[11]) + int(fields[12])
            parts[part] = total / cls.TICK
        return parts


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def age_database(*, sessions: int) -> dict:
    """Make the bench's database one that has served for a while (see the module's docstring)."""
    from django.core.management import call_command
    from django.db import connection

    call_command("seed_sessions", sessions, app_id="demo", days=90, seed=17, no_refresh=True,
                 stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))  # noqa: SIM115
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        # Later writes of a served table: first opens and the expiry sweep touch sessions after they were
        # analysed. Autovacuum cleans a table once a fifth of it is dead, so up to that much is waiting.
        cursor.execute("UPDATE flows_cancelsession SET opened_at = COALESCE(opened_at, created_at) "
                       "WHERE id % 5 = 0")
        cursor.execute("SELECT n_live_tup, n_dead_tup FROM pg_stat_user_tables WHERE relname = 'flows_cancelsession'")
        live, dead = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM flows_event")
        (events,) = cursor.fetchone()
    return {"sessions": live, "dead": dead, "events": events}


def wrk(path: str, *, seconds: int, connections: int, threads: int, script: str | None = None,
        env: dict | None = None, cpu: Cpu | None = None) -> dict:
    url = f"http://127.0.0.1:{PORT}{path}"
    pids = cpu.pids() if cpu is not None else {}
    cpu_before = Cpu.seconds(pids)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script:
        command += ["-s", script]
    out = subprocess.run([*command, url], capture_output=True, text=True, env={**os.environ, **(env or {})},
                         check=True).stdout
    cpu_parts = {part: spent - cpu_before[part] for part, spent in Cpu.seconds(pids).items()}
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\b", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rate": rate, "requests": requests, "p50": ms("50"), "p99": ms("99"),
            "cpu_seconds": sum(cpu_parts.values()), "cpu_parts": cpu_parts,
            "non_2xx_3xx": int(errors.group(1)) if errors else 0, "output": out}


class Rounds:
    """Each figure's runs, by name; a figure is the mean rate over its rounds."""

    def __init__(self) -> None:
        self.runs: dict[str, list[dict]] = {}

    def add(self, name: str, result: dict) -> None:
        if result["non_2xx_3xx"]:
            print(f"warning: {name}: {result['non_2xx_3xx']} answers were not 2xx/3xx")
        self.runs.setdefault(name, []).append(result)

    def rate(self, name: str) -> float:
        return statistics.fmean(r["rate"] for r in self.runs[name])

    def cpu_us(self, name: str) -> float:
        """CPU microseconds per request over every round."""
        runs = self.runs[name]
        return sum(r["cpu_seconds"] for r in runs) / sum(r["requests"] for r in runs) * 1e6

    def cpu_parts_us(self, name: str) -> dict[str, float]:
        """CPU microseconds per request over every round, by part (gunicorn, postgresql, redis)."""
        runs = self.runs[name]
        requests = sum(r["requests"] for r in runs)
        return {part: sum(r["cpu_parts"][part] for r in runs) / requests * 1e6 for part in runs[0]["cpu_parts"]}

    def p99(self, name: str) -> float:
        return max(r["p99"] for r in self.runs[name])

    def spread(self, name: str, baseline: str) -> str:
        ratios = [a["rate"] / b["rate"] for a, b in zip(self.runs[name], self.runs[baseline], strict=True)]
        return " ".join(f"{r:.2f}" for r in ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=2, help="each run (default 2)")
    parser.add_argument("--rounds", type=int, default=9, help="rounds of every figure (default 9)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sessions", type=int, default=200_000, help="sessions the database has served")
    parser.add_argument("--decisions-per-round", type=int, default=4000, help="open sessions for each round")
    parser.add_argument("--reuse-database", action="store_true",
                        help="keep the database afterwards, and use the one kept last time (while profiling)")
    parser.add_argument("--only", default="", help="while profiling: these figures (comma-separated, e.g. "
                        "decision,page) and their baselines only; prints them and records nothing")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-hot-path-"))
    redis_port = free_port()
    admin_url = prepare_environment(reuse=args.reuse_database, redis_port=redis_port)  # exits when skipped
    redis_server = start_redis(port=redis_port, workdir=workdir)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from flows import csrf, ids, services
    from flows.models import App, CancelSession, Decision
    from flows.snippet_data import clean_snippet_data

    server = None
    try:
        call_command("migrate", verbosity=0)
        call_command("demo_setup", stdout=open(os.devnull, "w"))  # noqa: SIM115
        started = time.monotonic()
        if args.reuse_database and CancelSession.objects.filter(created_at__lt=timezone.now() - timedelta(days=1)):
            aged = {"sessions": CancelSession.objects.count(), "dead": 0, "events": 0}
        else:
            aged = age_database(sessions=args.sessions)
        print(f"Database aged in {time.monotonic() - started:.0f} s: {aged['sessions']:,} sessions "
              f"({aged['dead']:,} dead rows), {aged['events']:,} events")
        body = json.dumps({**PRECANCEL_BODY, "email": "customer_CUSTOMER@example.com",
                           "subscription_id": "sub_CUSTOMER",
                           "account": {**PRECANCEL_BODY["account"], "internal_id": "acct_CUSTOMER"}})
        (workdir / "precancel.lua").write_text(PRECANCEL_LUA % {"body": body})
        (workdir / "paths.lua").write_text(PATHS_LUA % {"threads": args.threads})
        (workdir / "decision.lua").write_text(DECISION_LUA % {"threads": args.threads})
        (workdir / "post.lua").write_text('wrk.method = "POST"\n')
        connections.close_all()

        log = open(workdir / "gunicorn.log", "wb")  # noqa: SIM115
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "brightback_site.wsgi", "--bind", f"127.0.0.1:{PORT}",
             "--workers", str(WORKERS), "--access-logfile", "-"],
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

        warm = {"seconds": 1, "connections": args.connections, "threads": args.threads}
        run = {**warm, "seconds": args.seconds, "cpu": Cpu(gunicorn=server.pid, redis=redis_server.pid)}
        precancel_script = str(workdir / "precancel.lua")
        paths_script = str(workdir / "paths.lua")
        # The pages: open sessions of the last day (the seeded ones and the warm-up's), each already opened
        # once as its customer did (the first view's UPDATE is not what is measured).
        wrk("/precancel", script=precancel_script, **warm)
        pool = list(CancelSession.objects.filter(status="open", decision__isnull=True,
                                                 expires_at__gt=timezone.now() + timedelta(hours=1))
                    .order_by("-id").values_list("pk", "token")[:2000])
        CancelSession.objects.filter(pk__in=[pk for pk, _ in pool]).update(opened_at=timezone.now())
        (workdir / "pages").write_text("".join(f"/c/{token}\n" for _, token in pool))
        (workdir / "selects").write_text("".join(f"/bench/template-select?token={token}\n" for _, token in pool))
        pages, selects = {"BENCH_PATHS": str(workdir / "pages")}, {"BENCH_PATHS": str(workdir / "selects")}
        for path, script, env in [("/bench/json", None, None), ("/bench/template", None, None),
                                  ("/bench/select-insert", str(workdir / "post.lua"), None),
                                  ("/", paths_script, pages), ("/", paths_script, selects)]:
            wrk(path, script=script, env=env, **warm)

        # SQL queries per page view as in the server once it has served a few (the first view renders the
        # flow's copy, the second notes its controls, the third prepares the statement that reads the
        # session and writes the view's step on this connection), read in this process with Django's own
        # counter.
        client = Client(HTTP_HOST="127.0.0.1")
        for _ in range(3):
            client.get(f"/c/{pool[0][1]}")
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/c/{pool[0][1]}").status_code == 200
        page_queries = len(queries)

        rounds = Rounds()
        only = set(filter(None, args.only.split(",")))
        only |= {BASELINES[name] for name in only if name in BASELINES}
        decided_total = 0
        # The decisions' sessions: open, unopened, each another customer's, made as session_start makes them.
        model = services.session_start(app=App.objects.get(app_id="demo"), data=clean_snippet_data(PRECANCEL_BODY))
        per_round = args.decisions_per_round
        made = CancelSession.objects.bulk_create([
            CancelSession(**{**{f.attname: getattr(model, f.attname) for f in CancelSession._meta.concrete_fields
                                if not f.primary_key},
                             "token": ids.page_token(), "public_id": ids.session_id(),
                             "email": f"decider_{n}@example.com", "account_internal_id": f"acct_d{n}",
                             "account_key": f"id:acct_d{n}"})
            for n in range(per_round * args.rounds)], batch_size=2000)
        decision_tokens = [session.token for session in made]
        post = str(workdir / "post.lua")
        for number in range(args.rounds):
            tokens = workdir / f"tokens-{number}"
            tokens.write_text("".join(f"{t} {csrf.page_form_token(t)}\n"
                                      for t in decision_tokens[number * per_round:(number + 1) * per_round]))
            writes = [("precancel", "/precancel", precancel_script, None),
                      ("select_insert", "/bench/select-insert", post, None),
                      ("decision", "/", str(workdir / "decision.lua"), {"BENCH_TOKENS": str(tokens)})]
            reads = [("page", "/", paths_script, pages), ("bare_template", "/bench/template", None, None),
                     ("template_select", "/", paths_script, selects)]
            # Each group's order turns every round, so a change of load between runs favours none of them.
            for name, path, script, env in [*_turned(writes, number), *_turned(reads, number),
                                            ("bare_json", "/bench/json", None, None)]:
                if only and name not in only:
                    continue
                if name != "decision":
                    rounds.add(name, wrk(path, script=script, env=env, **run))
                    continue
                before = Decision.objects.count()
                began = time.monotonic()
                decision = wrk(path, script=script, env=env, **run)
                elapsed = time.monotonic() - began
                decided = Decision.objects.count() - before
                if decided >= per_round:
                    # Ran out of open sessions: a replayed decision is cheaper, so count new decisions only.
                    decision["rate"] = decided / elapsed
                    print(f"warning: decision: {per_round} open sessions were not enough for round {number + 1}")
                decided_total += decided
                rounds.add("decision", decision)
            print(f"round {number + 1}/{args.rounds}: " + ", ".join(
                f"{name} {rounds.runs[name][-1]['rate']:.0f}" for name in rounds.runs) + " req/s", flush=True)

        if only:
            for name in rounds.runs:
                parts = ", ".join(f"{part} {us:,.0f}" for part, us in rounds.cpu_parts_us(name).items())
                print(f"  {name:<16} {rounds.rate(name):8.1f} req/s  p99 {rounds.p99(name):6.1f} ms  "
                      f"CPU {rounds.cpu_us(name):6,.0f} us/req ({parts})")
            for name, baseline in BASELINES.items():
                if name in rounds.runs:
                    print(f"  {name} / {baseline}: {rounds.rate(name) / rounds.rate(baseline):.3f}, in CPU "
                          f"{rounds.cpu_us(baseline) / rounds.cpu_us(name):.3f}; round by round: "
                          f"{rounds.spread(name, baseline)}")
            return
        rows = [
            row("precancel", rounds.rate("precancel"), "req/s", ">= 0.7 x one-SELECT-one-INSERT view",
                baseline=rounds.rate("select_insert")),
            row("precancel_p99", rounds.p99("precancel"), "ms", f"< 100 ms at {args.connections} connections"),
            row("select_insert_p99", rounds.p99("select_insert"), "ms",
                "reference: the one-SELECT-one-INSERT view's p99, measured alike"),
            row("page", rounds.rate("page"), "req/s", ">= 0.6 x bare template view",
                baseline=rounds.rate("bare_template")),
            row("page_sql_queries", page_queries, "queries", "<= 2"),
            row("template_select", rounds.rate("template_select"), "req/s",
                "reference: the bare template view after one indexed SELECT", baseline=rounds.rate("bare_template")),
            row("decision", rounds.rate("decision"), "req/s", ">= 0.5 x one-SELECT-one-INSERT view",
                baseline=rounds.rate("select_insert")),
            row("bare_json", rounds.rate("bare_json"), "req/s", "reference: the stack's ceiling"),
            *[row(f"{name}_cpu", rounds.cpu_us(name), "us/req", f"reference: CPU per request (gunicorn, PostgreSQL, "
                  f"Redis); ratio {baseline}'s over this, what a machine of its own would show",
                  baseline=rounds.cpu_us(baseline), ratio=rounds.cpu_us(baseline) / rounds.cpu_us(name))
              for name, baseline in BASELINES.items()],
        ]
        record(rows)
        print(f"\nHot path as deployed: gunicorn --workers {WORKERS} --access-logfile -, JSON logs at INFO, "
              f"{aged['sessions']:,} sessions served; wrk -t{args.threads} -c{args.connections}, "
              f"{args.rounds} rounds of {args.seconds} s; {decided_total} decisions recorded; "
              f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
        for r in rows:
            print(f"  {r['name']:<18} {r['value']:>9g} {r['unit']:<8} baseline {r['baseline']!s:>9}  "
                  f"ratio {r['ratio']!s:>6}  goal {r['goal']}")
        for name, baseline in BASELINES.items():
            print(f"  {name} / {baseline}, round by round: {rounds.spread(name, baseline)}")
        print("  CPU per request by part, us: " + "; ".join(
            f"{name} " + ", ".join(f"{part} {us:,.0f}" for part, us in rounds.cpu_parts_us(name).items())
            for name in rounds.runs))
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        redis_server.kill()
        redis_server.wait(10)
        connections.close_all()
        if not args.reuse_database:
            import psycopg

            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def _turned(group: list, number: int) -> list:
    shift = number % len(group)
    return group[shift:] + group[:shift]


if __name__ == "__main__":
    main()
