"""The embedded defaults `make run` starts with (SQLite under var/, the filesystem broker) carry a customer
through the whole page: the rest of the suite runs on PostgreSQL, so this runs the journey in a process of
its own with neither DATABASE_URL nor REDIS_URL set."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from django.conf import settings

JOURNEY = textwrap.dedent("""
    import io, json
    import django
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    assert connection.vendor == "sqlite", connection.vendor
    call_command("migrate", verbosity=0)
    call_command("demo_setup", stdout=io.StringIO())
    client = Client()
    data = {"app_id": "demo", "email": "jane@example.com", "subscription_id": "sub_1",
            "save_return_url": "http://127.0.0.1/saved", "cancel_confirmation_url": "http://127.0.0.1/canceled",
            "offer_1_url": "http://127.0.0.1/offer",
            "account": {"internal_id": "acct_1", "plan": "pro", "plan_term": "monthly", "value": 49}}
    answer = client.post("/precancel", json.dumps(data), content_type="application/json")
    assert answer.status_code == 200, answer.content
    page = answer.json()["url"].split("testserver", 1)[-1]
    for attempt in range(2):  # the first view is rendered, the second comes from the process's copy
        shown = client.get(page)
        assert shown.status_code == 200 and b'name="reason"' in shown.content, shown.status_code
    offers = client.post(page, {"reason": "too-expensive", "action": "continue"})
    assert offers.status_code == 200 and b'data-bb-offer="discount-30"' in offers.content, offers.status_code
    decided = client.post(page, {"reason": "too-expensive", "accept": "discount-30"})
    assert decided.status_code == 303 and decided["Location"].startswith("http://127.0.0.1/offer?"), decided
    health = client.get("/healthz")  # the load balancer's probe, answered by SQLite and the filesystem broker
    assert health.status_code == 200, health.content
    assert health.json() == {"status": "ok", "database": "ok", "broker": "ok", "secrets": "ok"}, health.content
    print("journey ok")
""")


VERSION = textwrap.dedent("""
    import django
    django.setup()
    from flows import selectors

    print("version", selectors._app_version_now("demo"))
""")


def embedded(script: str, var_dir) -> subprocess.CompletedProcess:  # noqa: ANN001
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
    env.update(DJANGO_SETTINGS_MODULE="brightback_site.settings", BRIGHTBACK_VAR_DIR=str(var_dir), DEBUG="0",
               ALLOWED_HOSTS="testserver", RATE_LIMITS="off")
    return subprocess.run([sys.executable, "-c", script], cwd=settings.BASE_DIR, env=env, capture_output=True,
                          text=True, timeout=300)


def test_make_runs_embedded_defaults_carry_a_customer_through_the_page(tmp_path):
    done = embedded(JOURNEY, tmp_path)
    assert done.returncode == 0 and "journey ok" in done.stdout, done.stderr[-3000:]


def test_the_web_server_and_the_worker_share_the_versions_of_an_apps_copies(tmp_path):
    # make run's web server and Celery worker are separate processes: a change staff save in one must
    # retire the copies the other keeps, so both must read the same App version.
    first, second = embedded(VERSION, tmp_path), embedded(VERSION, tmp_path)
    assert first.returncode == second.returncode == 0, (first.stderr + second.stderr)[-3000:]
    assert first.stdout.startswith("version ") and "None" not in first.stdout
    assert first.stdout == second.stdout
