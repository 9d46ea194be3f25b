"""Abuse limits: /precancel and decision POSTs per client address and per App, the admin login per
address and per username; 429 with Retry-After. The suite's own limits are generous (conftest.py):
each test here sets the real ones it shows."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User

from conftest import need
from flows.models import CancelSession, Decision

pytestmark = pytest.mark.django_db


def precancel(client, body: dict, **extra):  # noqa: ANN001, ANN003, ANN201
    return client.post("/precancel", data=json.dumps(body), content_type="application/json", **extra)


def limit(settings, **rules: str) -> None:  # noqa: ANN001
    # Limits here count per day: a window is fixed and a minute's could end in the middle of a test.
    settings.RATE_LIMIT_RULES = {**settings.RATE_LIMIT_RULES, **{k.replace("_", "-"): v for k, v in rules.items()}}


def test_precancel_over_the_address_limit_is_a_429_with_retry_after_in_brightback_shape(
        client, settings, demo_app, snippet_data):
    limit(settings, precancel_ip="3/d")
    for _ in range(3):
        assert precancel(client, snippet_data()).status_code == 200
    response = precancel(client, snippet_data())
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 24 * 3600
    body = response.json()
    assert body["valid"] is False
    assert "too many requests" in body["message"]
    assert CancelSession.objects.count() == 3
    # Another address is not held back by the first one's burst.
    assert precancel(client, snippet_data(), REMOTE_ADDR="192.0.2.7").status_code == 200


def test_precancel_limit_per_app_counts_every_address(client, settings, demo_app, snippet_data):
    limit(settings, precancel_app="2/d")
    answers = [precancel(client, snippet_data(), REMOTE_ADDR=f"198.51.100.{n}").status_code for n in range(1, 4)]
    assert answers == [200, 200, 429]
    # The App's limit is its own: a body naming no known App still gets its 404.
    assert precancel(client, snippet_data(app_id="nope"), REMOTE_ADDR="198.51.100.9").status_code == 404


def test_behind_a_proxy_the_limit_follows_the_address_the_proxy_saw(client, settings, demo_app, snippet_data):
    settings.BEHIND_PROXY = True
    limit(settings, precancel_ip="1/d")
    # The client may put anything first in X-Forwarded-For; the proxy appends the real address last.
    assert precancel(client, snippet_data(), HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.5").status_code == 200
    assert precancel(client, snippet_data(), HTTP_X_FORWARDED_FOR="10.9.9.8, 203.0.113.5").status_code == 429
    assert precancel(client, snippet_data(), HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.6").status_code == 200


def test_decision_posts_over_the_limit_get_a_429_and_record_nothing(client, settings, demo_app, snippet_data):
    url = precancel(client, snippet_data()).json()["url"]
    limit(settings, decision_ip="2/d")
    path = url.removeprefix("http://testserver")
    assert client.post(path, {"action": "continue", "reason": "too-expensive"}).status_code == 200
    assert client.post(path, {"action": "back"}).status_code == 200
    response = client.post(path, {"action": "cancel", "reason": "too-expensive"})
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert "Please wait a moment" in response.content.decode()
    assert not Decision.objects.exists()
    # Reading the page is not a decision and is not held back.
    assert client.get(path).status_code == 200


def test_admin_login_is_throttled_per_address_against_password_guessing(client, settings):
    User.objects.create_superuser("staff", "staff@example.com", "correct horse battery staple")
    limit(settings, login_ip="3/d")
    for n in range(3):
        response = client.post("/admin/login/", {"username": f"guess{n}", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    response = client.post("/admin/login/", {"username": "staff", "password": "correct horse battery staple"})
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert "_auth_user_id" not in client.session
    # The admin's own page, saying why, with the username kept and the password not echoed.
    html = response.content.decode()
    assert 'id="login-form"' in html and "Too many sign-in attempts. Nothing was checked." in html
    assert 'value="staff"' in html and "correct horse battery staple" not in html


def test_admin_login_is_throttled_per_username_whatever_the_address(client, settings):
    User.objects.create_superuser("staff", "staff@example.com", "correct horse battery staple")
    limit(settings, login_username="2/d")
    for n in range(2):
        client.post("/admin/login/", {"username": "staff", "password": "wrong"}, REMOTE_ADDR=f"192.0.2.{n}")
    response = client.post("/admin/login/", {"username": "Staff", "password": "correct horse battery staple"},
                           REMOTE_ADDR="192.0.2.99")
    assert response.status_code == 429
    # Signing in with another account from the same addresses still works.
    User.objects.create_superuser("other", "other@example.com", "another long passphrase")
    response = client.post("/admin/login/", {"username": "other", "password": "another long passphrase"},
                           REMOTE_ADDR="192.0.2.100")
    assert response.status_code == 302


def test_rate_limits_off_lets_a_burst_through(client, settings, demo_app, snippet_data):
    limit(settings, precancel_ip="1/d")
    settings.RATE_LIMITS = False
    assert {precancel(client, snippet_data()).status_code for _ in range(5)} == {200}


def test_a_cache_that_does_not_answer_lets_customers_through(client, settings, demo_app, snippet_data):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0",
                                   "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}
    limit(settings, precancel_ip="1/d")
    assert [precancel(client, snippet_data()).status_code for _ in range(2)] == [200, 200]


def test_the_limits_are_kept_in_redis_when_redis_is_configured(client, settings, demo_app, snippet_data):
    need(bool(django_settings.REDIS_URL), "REDIS_URL is not set: this shows the shared, Redis-backed counters")
    from django.core.cache.backends.redis import RedisCache
    from django.utils.module_loading import import_string

    assert issubclass(import_string(settings.CACHES["default"]["BACKEND"]), RedisCache)
    limit(settings, precancel_ip="2/d")
    assert [precancel(client, snippet_data()).status_code for _ in range(3)] == [200, 200, 429]
    import redis

    keys = redis.Redis.from_url(django_settings.REDIS_URL).keys(f"bb:1:{settings.RATELIMIT_CACHE_PREFIX}*")
    assert keys, "the counter is not in Redis"


def test_limits_are_on_unless_the_environment_turns_them_off():
    def rate_limits(env: dict[str, str]) -> str:
        code = "from django.conf import settings; print(settings.RATE_LIMITS)"
        env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "brightback_site.settings",
               "SECRET_KEY": "x", "PYTHONPATH": str(django_settings.BASE_DIR), **env}
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              check=True).stdout.strip()

    assert rate_limits({}) == "True"
    assert rate_limits({"RATE_LIMITS": "off"}) == "False"
