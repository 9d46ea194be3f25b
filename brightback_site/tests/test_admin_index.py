"""The admin index: grouped by task, with a getting-started panel for an App that has no flow."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from flows.models import App

pytestmark = pytest.mark.django_db


def captions(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", caption).strip() for caption in re.findall(r"<caption>(.*?)</caption>", html, re.S)]


def test_the_index_groups_models_by_task(admin_client: Client, demo_app: App) -> None:
    html = admin_client.get(reverse("admin:index")).content.decode()
    groups = captions(html)
    for task in ("Flows and offers", "Delivery", "Billing", "Reports"):
        assert task in groups
    assert groups.index("Flows and offers") < groups.index("Delivery") < groups.index("Billing")
    flows_group = html.split("Flows and offers", 1)[1].split("</table>", 1)[0]
    assert "Apps" in flows_group and "Flows" in flows_group and "Offers" in flows_group
    assert "Getting started" not in html  # the demo App has its flow


def test_an_app_without_a_flow_gets_a_getting_started_panel(admin_client: Client, db) -> None:  # noqa: ANN001
    app = App.objects.create(app_id="acme", name="Acme")
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "Getting started with Acme" in html
    assert f'{reverse("admin:flows_flow_add")}?app={app.pk}' in html
    assert "<code>acme</code>" in html


def test_an_apps_own_admin_page_keeps_djangos_grouping(admin_client: Client, db) -> None:  # noqa: ANN001
    response = admin_client.get(reverse("admin:app_list", args=["flows"]))
    assert response.status_code == 200
