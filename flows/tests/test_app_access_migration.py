"""Upgrading to App access locks nobody out: staff keep the Apps they could reach before."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("flows", "0004_audiences_experiments")]
AFTER = [("flows", "0005_app_access")]


@pytest.mark.django_db(transaction=True)
def test_upgrading_makes_existing_staff_editors_of_existing_apps_and_no_one_else():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    App = old.get_model("flows", "App")  # noqa: N806
    acme = App.objects.create(app_id="acme", name="Acme", secret="s")
    globex = App.objects.create(app_id="globex", name="Globex", secret="s")
    User.objects.create(username="support", is_staff=True)
    User.objects.create(username="owner", is_staff=True, is_superuser=True)
    User.objects.create(username="customer")
    User.objects.create(username="gone", is_staff=True, is_active=False)

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    granted = set(new.get_model("flows", "AppAccess").objects.values_list("user__username", "app_id", "role"))
    assert granted == {("support", acme.pk, "editor"), ("support", globex.pk, "editor")}
