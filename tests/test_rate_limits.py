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


def test_rotating_x_forwarded_for_from_an_untrusted_peer_is_limited_by_the_peer(client, settings, demo_app,
                                                                               snippet_data):
    limit(settings, precancel_ip="2/d")
    for trusted in ([], ["10.0.0.0/8"]):
        settings.TRUSTED_PROXIES = trusted
        settings.RATELIMIT_CACHE_PREFIX += "x"  # a fresh count for each setting
        answers = [precancel(client, snippet_data(), REMOTE_ADDR="203.0.113.9",
                             HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code for n in range(1, 6)]
        assert answers == [200, 200, 429, 429, 429], trusted


def test_behind_a_trusted_proxy_the_right_most_untrusted_entry_is_the_client(client, settings, demo_app,
                                                                             snippet_data):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "127.0.0.1"]
    limit(settings, precancel_ip="1/d")

    def through_proxies(forwarded: str) -> int:
        return precancel(client, snippet_data(), REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded).status_code

    # The client may put anything on the left; the proxies append the address they saw, then each other's.
    assert through_proxies("192.0.2.1, 203.0.113.5, 10.0.0.7") == 200
    assert through_proxies("192.0.2.2, 203.0.113.5, 10.0.0.7") == 429  # the same client, another lie
    assert through_proxies("203.0.113.5") == 429
    assert through_proxies("192.0.2.1, 203.0.113.6, 10.0.0.7") == 200  # another client


@pytest.mark.parametrize("garbage", ["not-an-ip", "unknown", "1.2.3.4:80", "::zz", "203.0.113.5 junk", "_",
                                     "1.2.3", "999.1.1.1", "[::1]", "\u0661.1.1.1"])
def test_garbage_forwarded_entries_count_as_the_direct_peer(client, settings, demo_app, snippet_data, garbage):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    limit(settings, precancel_ip="2/d")
    answers = [precancel(client, snippet_data(), REMOTE_ADDR="10.0.0.2",
                         HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, {garbage}").status_code for n in range(1, 4)]
    assert answers == [200, 200, 429]


@pytest.mark.parametrize(
    ("peer", "forwarded", "client_address"),
    [
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # an untrusted peer's header is not read
        ("10.0.0.2", "", "10.0.0.2"),
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "198.51.100.1,10.0.0.3", "198.51.100.1"),
        ("10.0.0.2", "10.0.0.4, 10.0.0.3", "10.0.0.4"),  # every hop trusted: the furthest one
        ("10.0.0.2", "198.51.100.1, bogus, 10.0.0.3", "10.0.0.2"),
        ("10.0.0.2", "::ffff:198.51.100.1", "198.51.100.1"),
        ("::ffff:10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "2001:db8::1", "2001:db8::1"),
        ("", "198.51.100.1", "0.0.0.0"),
        ("not an address", "198.51.100.1", "0.0.0.0"),
    ],
)
def test_the_client_address_is_read_from_trusted_proxies_only(rf, settings, peer, forwarded, client_address):
    from brightback_site.ratelimits import client_ip

    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = rf.get("/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == client_address


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


def test_a_stranger_hammering_an_admins_username_cannot_lock_the_admin_out(client, settings):
    User.objects.create_superuser("staff", "staff@example.com", "correct horse battery staple")
    limit(settings, login_username="2/d", login_ip="3/d")
    for _ in range(5):
        client.post("/admin/login/", {"username": "staff", "password": "wrong"}, REMOTE_ADDR="198.51.100.66")
    # The stranger is held back...
    held = client.post("/admin/login/", {"username": "staff", "password": "correct horse battery staple"},
                       REMOTE_ADDR="198.51.100.66")
    assert held.status_code == 429
    # ...the admin, signing in from their own address, is not.
    response = client.post("/admin/login/", {"username": "staff", "password": "correct horse battery staple"},
                           REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 302
    assert client.session["_auth_user_id"]


def test_password_guessing_on_one_username_from_one_address_is_throttled(client, settings):
    User.objects.create_superuser("staff", "staff@example.com", "correct horse battery staple")
    limit(settings, login_username="2/d")
    for _ in range(2):
        client.post("/admin/login/", {"username": "staff", "password": "wrong"}, REMOTE_ADDR="198.51.100.66")
    response = client.post("/admin/login/", {"username": "Staff ", "password": "correct horse battery staple"},
                           REMOTE_ADDR="198.51.100.66")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_login_guessing_through_a_trusted_proxy_is_throttled_per_client_not_per_proxy(client, settings):
    User.objects.create_superuser("staff", "staff@example.com", "correct horse battery staple")
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    limit(settings, login_ip="2/d")
    for _ in range(2):
        client.post("/admin/login/", {"username": "x", "password": "wrong"}, REMOTE_ADDR="10.0.0.2",
                    HTTP_X_FORWARDED_FOR="198.51.100.66")
    assert client.post("/admin/login/", {"username": "y", "password": "wrong"}, REMOTE_ADDR="10.0.0.2",
                       HTTP_X_FORWARDED_FOR="203.0.113.1, 198.51.100.66").status_code == 429
    response = client.post("/admin/login/", {"username": "staff", "password": "correct horse battery staple"},
                           REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.10")
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


def test_only_a_trusted_proxy_may_say_the_request_came_over_https(client, settings, db):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    spoofed = client.get("/admin/login/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_PROTO="https")
    assert spoofed.status_code == 301 and spoofed["Location"].startswith("https://")
    proxied = client.get("/admin/login/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_PROTO="https")
    assert proxied.status_code == 200


def settings_in_a_fresh_process(env: dict[str, str], code: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "brightback_site.settings",
           "SECRET_KEY": "x", "PYTHONPATH": str(django_settings.BASE_DIR), **env}
    return subprocess.run([sys.executable, "-c", f"from django.conf import settings; {code}"], env=env,
                          capture_output=True, text=True)


def test_behind_proxy_is_refused_at_start_up_naming_trusted_proxies():
    ran = settings_in_a_fresh_process({"BEHIND_PROXY": "1"}, "settings.TRUSTED_PROXIES")
    assert ran.returncode != 0
    assert "ImproperlyConfigured" in ran.stderr and "TRUSTED_PROXIES" in ran.stderr
    # Set to off it says nothing about proxies: nothing to refuse.
    assert settings_in_a_fresh_process({"BEHIND_PROXY": "0"}, "print(settings.TRUSTED_PROXIES)").returncode == 0


def test_trusted_proxies_are_addresses_or_networks_and_anything_else_is_refused_at_start_up():
    ran = settings_in_a_fresh_process({"TRUSTED_PROXIES": " 10.0.0.0/8, 127.0.0.1,::1 "},
                                      "print(settings.TRUSTED_PROXIES, settings.SECURE_PROXY_SSL_HEADER)")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "['10.0.0.0/8', '127.0.0.1/32', '::1/128'] ('HTTP_X_FORWARDED_PROTO', 'https')"
    ran = settings_in_a_fresh_process({}, "print(settings.TRUSTED_PROXIES, settings.SECURE_PROXY_SSL_HEADER)")
    assert ran.stdout.strip() == "[] None"
    for bad in ("10.0.0.0/33", "proxy.internal", "10.0.0.1-10.0.0.9", "*"):
        ran = settings_in_a_fresh_process({"TRUSTED_PROXIES": bad}, "settings.TRUSTED_PROXIES")
        assert ran.returncode != 0 and "TRUSTED_PROXIES" in ran.stderr, bad


def test_limits_are_on_unless_the_environment_turns_them_off():
    def rate_limits(env: dict[str, str]) -> str:
        code = "from django.conf import settings; print(settings.RATE_LIMITS)"
        env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "brightback_site.settings",
               "SECRET_KEY": "x", "PYTHONPATH": str(django_settings.BASE_DIR), **env}
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              check=True).stdout.strip()

    assert rate_limits({}) == "True"
    assert rate_limits({"RATE_LIMITS": "off"}) == "False"
