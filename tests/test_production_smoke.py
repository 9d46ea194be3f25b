"""The production stack as plain processes: the command lines docker-compose.yml runs (migrate, gunicorn,
a Celery worker, beat), with DEBUG=0 and .env.example's settings, on this machine's PostgreSQL and
Redis (no container engine runs here). One customer journey through /demo/ ends in a webhook the
receiver verifies. About half a minute; CI runs it (marked `production`)."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
import yaml
from django.conf import settings as django_settings

from conftest import need
from tests.test_deploy import production_env
from webhooks.testing import Receiver

pytestmark = [pytest.mark.production]
ROOT = Path(django_settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def compose_commands() -> dict[str, list[str]]:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return {name: services[name]["command"] for name in ("migrate", "web", "worker", "beat")}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict]:
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    need(database_url.startswith(("postgres://", "postgresql://")) and bool(redis_url),
         "the production smoke test runs on PostgreSQL and Redis (DATABASE_URL and REDIS_URL)")
    import psycopg

    name = f"smoke_{os.getpid()}"
    admin_url = urlunsplit(urlsplit(database_url)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    port = free_port()
    env = production_env(tmp_path)
    env.update({
        "DATABASE_URL": urlunsplit(urlsplit(database_url)._replace(path=f"/{name}")), "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": "127.0.0.1", "SITE_URL": f"http://127.0.0.1:{port}",
        # No TLS between this test and gunicorn: what a TLS-terminating proxy would otherwise provide.
        "SECURE_SSL_REDIRECT": "0", "SECURE_HSTS_SECONDS": "0", "SECURE_COOKIES": "0", "TRUSTED_PROXIES": "",
        "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8", "LOG_LEVEL": "INFO",
        "STATIC_ROOT": str(tmp_path / "static"),
    })
    commands = compose_commands()
    commands["web"] = [part.replace("0.0.0.0:8000", f"127.0.0.1:{port}") for part in commands["web"]]
    commands["web"][commands["web"].index("--workers") + 1] = "2"
    commands["worker"] = [*commands["worker"], "--concurrency=1", "--without-gossip", "--without-mingle"]
    commands["beat"] = [part.replace("/var/lib/brightback", str(tmp_path)) for part in commands["beat"]]

    def run(argv: list[str]) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", argv[0]] + argv[1:] if argv[0] in ("gunicorn", "celery") else \
            [sys.executable, *argv[1:]] if argv[0] == "python" else argv
        return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)

    processes: dict[str, subprocess.Popen] = {}
    logs = {}
    try:
        for step in (commands["migrate"], ["python", "manage.py", "demo_setup"]):
            done = run(step)
            assert done.returncode == 0, done.stdout + done.stderr
        for role in ("web", "worker", "beat"):
            argv = commands[role]
            logs[role] = open(tmp_path / f"{role}.log", "w+")  # noqa: SIM115
            processes[role] = subprocess.Popen([sys.executable, "-m", argv[0], *argv[1:]], cwd=ROOT, env=env,
                                               stdout=logs[role], stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                health = requests.get(f"{base}/healthz", timeout=2)
                if health.status_code == 200 and health.json()["status"] == "ok":
                    break
            except requests.RequestException:
                pass
            for role, process in processes.items():
                assert process.poll() is None, f"{role} exited:\n{(tmp_path / f'{role}.log').read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the web server never answered /healthz with ok"
            time.sleep(0.5)
        yield {"base": base, "run": run, "env": env, "logs": tmp_path}
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        for log in logs.values():
            log.close()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_a_demo_journey_on_the_production_stack_ends_in_a_delivered_webhook(stack):
    base = stack["base"]
    with Receiver() as receiver:
        created = stack["run"](["python", "manage.py", "shell", "-c",
                                "from flows.models import App; from webhooks import endpoints; "
                                f"print(endpoints.endpoint_create(app=App.objects.get(app_id='demo'), "
                                f"url={receiver.url!r}).secret)"])
        assert created.returncode == 0, created.stderr
        receiver.secrets.append(created.stdout.strip().splitlines()[-1])

        browser = requests.Session()
        demo = browser.get(f"{base}/demo/", timeout=10)
        assert demo.status_code == 200
        # What the demo page's snippet sends: the page's handleData(...) call plus the snippet's context.
        data = json.loads(html.unescape(re.search(r"handleData\((\{.*?\})\);", demo.text, re.S).group(1)))
        data["context"] = {"locale": "en", "user_agent": "smoke-test", "url": f"{base}/demo/"}
        answer = browser.post(f"{base}/precancel", json=data, headers={"Origin": base}, timeout=10)
        assert answer.status_code == 200, answer.text
        page_url = answer.json()["url"]
        assert page_url.startswith(f"{base}/c/")

        page = browser.get(page_url, timeout=10)
        assert page.status_code == 200 and 'data-bb-action="cancel"' in page.text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        decided = browser.post(page_url, data={"csrfmiddlewaretoken": token, "action": "cancel",
                                               "reason": "too-expensive"},
                               headers={"Referer": page_url}, allow_redirects=False, timeout=10)
        assert decided.status_code == 303, decided.text[:500]
        landing = browser.get(decided.headers["Location"], timeout=10)
        assert landing.status_code == 200 and "canceled" in landing.url

        (got,) = receiver.wait_for(lambda received: any(r.verified for r in received), timeout=30)[:1]
    assert got.verified and got.payload["type"] == "session.canceled"
    assert got.payload["data"]["account"]["internal_id"] == "acct_demo_1"

    # The worker logged through the production handler: JSON lines, one object each.
    worker_lines = [line for line in (stack["logs"] / "worker.log").read_text().splitlines()
                    if line.startswith("{")]
    assert worker_lines and all(json.loads(line)["level"] for line in worker_lines)
