from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from brightback_site.env import envbool, envint


def test_envbool_refuses_a_malformed_value(monkeypatch):
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        envbool("X_FLAG", False)


def test_envbool_reads_usual_spellings(monkeypatch):
    monkeypatch.setenv("X_FLAG", "Yes")
    assert envbool("X_FLAG", False) is True
    monkeypatch.setenv("X_FLAG", "0")
    assert envbool("X_FLAG", True) is False


def test_envint_refuses_text_and_values_below_the_minimum(monkeypatch):
    monkeypatch.setenv("X_NUM", "ten")
    with pytest.raises(ImproperlyConfigured, match="whole number"):
        envint("X_NUM", 1)
    monkeypatch.setenv("X_NUM", "5")
    with pytest.raises(ImproperlyConfigured, match="at least 60"):
        envint("X_NUM", 100, minimum=60)


def test_envfloat_refuses_zero_negative_and_infinite_values_where_positive(monkeypatch):
    from brightback_site.env import envfloat

    for raw in ("0", "-1", "inf", "nan"):
        monkeypatch.setenv("X_SECONDS", raw)
        with pytest.raises(ImproperlyConfigured, match="X_SECONDS"):
            envfloat("X_SECONDS", 1.0, positive=True)
    monkeypatch.setenv("X_SECONDS", "2.5")
    assert envfloat("X_SECONDS", 1.0, positive=True) == 2.5


@pytest.mark.parametrize("raw", ["30", "30/x", "-1/m", "0/m", "m/30", "30 per minute"])
def test_envrate_refuses_what_is_not_a_rate(monkeypatch, raw):
    from brightback_site.env import envrate

    monkeypatch.setenv("X_RATE", raw)
    with pytest.raises(ImproperlyConfigured, match="X_RATE"):
        envrate("X_RATE", "30/m")


@pytest.mark.parametrize("raw", ["30/m", "100/5m", "2/s", "1000/d"])
def test_envrate_reads_counts_per_period(monkeypatch, raw):
    from brightback_site.env import envrate

    monkeypatch.setenv("X_RATE", raw)
    assert envrate("X_RATE", "1/s") == raw


def test_envzone_takes_a_time_zone_name_and_refuses_anything_else(monkeypatch):
    from brightback_site.env import envzone

    for raw, zone in (("Europe/Paris", "Europe/Paris"), (" Europe/Paris ", "Europe/Paris"), ("", "UTC")):
        monkeypatch.setenv("X_ZONE", raw)
        assert envzone("X_ZONE", "UTC") == zone
    for raw in ("Mars/Olympus_Mons", "../etc/passwd", "PST8PDT/x"):
        monkeypatch.setenv("X_ZONE", raw)
        with pytest.raises(ImproperlyConfigured, match="X_ZONE"):
            envzone("X_ZONE", "UTC")
