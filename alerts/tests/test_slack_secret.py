"""The Slack webhook URL is a secret like every other (whoever holds it posts to the team's channel): shown
again only as a hint, to view-only staff too, and never written by `flow_export`, whose output the README
suggests keeping in git; an import that leaves it out keeps the stored URL."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.urls import reverse

from alerts.models import AlertRule
from flows import services as flow_services

pytestmark = pytest.mark.django_db

SLACK = "https://hooks.slack.com/services/T0001/B0001/abcdefghijklmnopWXYZ"


@pytest.fixture
def rule(demo_app) -> AlertRule:  # noqa: ANN001
    return AlertRule.objects.create(app=demo_app, events=["session.canceled"], slack_webhook_url=SLACK)


@pytest.fixture
def local_rule(demo_app, slack) -> AlertRule:  # noqa: ANN001
    """A rule whose URL passes the save-time checks here (a local Slack stand-in, its network allowed)."""
    return AlertRule.objects.create(app=demo_app, events=["session.canceled"],
                                    slack_webhook_url=slack.url + "/abcdefghijklmnopWXYZ")


@pytest.fixture
def viewer_client(client, demo_app):  # noqa: ANN001, ANN201
    user = User.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_alertrule"))
    flow_services.app_access_grant(app=demo_app, user=user, role="viewer")
    client.force_login(user)
    return client


def test_view_only_staff_see_only_a_hint_of_the_slack_url(viewer_client, rule):
    page = viewer_client.get(reverse("admin:alerts_alertrule_change", args=[rule.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "abcdefghijklmnop" not in html
    assert "set: https://hooks.slack.com/…WXYZ" in html


def test_editors_see_a_hint_and_a_blank_field_that_keeps_the_stored_url(admin_client, local_rule):
    rule, stored = local_rule, local_rule.slack_webhook_url
    url = reverse("admin:alerts_alertrule_change", args=[rule.pk])
    html = admin_client.get(url).content.decode()
    assert "abcdefghijklmnop" not in html and "…WXYZ" in html

    response = admin_client.post(url, {"app": rule.app_id, "events": ["session.canceled", "offer.accepted"],
                                       "recipients": "", "slack_webhook_url": ""})
    assert response.status_code == 302, response.content
    rule.refresh_from_db()
    assert rule.slack_webhook_url == stored and rule.events == ["session.canceled", "offer.accepted"]

    response = admin_client.post(url, {"app": rule.app_id, "events": ["session.canceled"],
                                       "recipients": "help@desk.example.com", "remove_slack_webhook_url": "on"})
    assert response.status_code == 302, response.content
    rule.refresh_from_db()
    assert rule.slack_webhook_url == ""


def test_flow_export_never_writes_the_slack_url_and_an_import_without_it_keeps_it(demo_app, rule, tmp_path):
    out = io.StringIO()
    call_command("flow_export", "demo", stdout=out)
    assert "hooks.slack.com" not in out.getvalue()
    document = json.loads(out.getvalue())
    assert document["alerts"] == [{"events": ["session.canceled"], "recipients": [], "live_only": False}]

    document["alerts"][0]["live_only"] = True
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(document))
    call_command("flow_import", str(path), stdout=io.StringIO())
    rule.refresh_from_db()
    assert (rule.live_only, rule.slack_webhook_url) == (True, SLACK)
