"""Every admin page's buttons name the permission they need: a view-only user reads everything and can
press nothing. The walk goes through every registered ModelAdmin, its actions and its own URLs, so an
action or page added later is covered without touching this file."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLPattern, reverse

from flows import services
from flows.models import AppAccess
from tests.tenants import Tenant, staff_user, table_snapshot, tenant

pytestmark = pytest.mark.django_db

# The URL names every ModelAdmin gets from Django; anything else in get_urls() is ours.
DJANGO_VIEWS = {"changelist", "add", "history", "delete", "change"}
# Our pages that read only: a POST there computes and shows, writing nothing (the preview's decision).
READ_ONLY_POSTS = {"flows_flow_preview", "evidence_flowversion_diff"}


@pytest.fixture
def world(settings) -> Tenant:  # noqa: ANN001
    Group.objects.create(name="Support")
    return tenant("acme", name="Acme")


@pytest.fixture
def viewer_client(world: Tenant) -> Client:
    # An editor of the App, so that only the missing permissions can be what stops them.
    reader = staff_user("reader", view_all=True)
    services.app_access_grant(app=world.app, user=reader, role=AppAccess.Role.EDITOR)
    client = Client()
    client.force_login(reader)
    return client


def registered() -> list[admin.ModelAdmin]:
    return sorted(admin.site._registry.values(), key=lambda model_admin: model_admin.opts.label)


def any_pk(model_admin: admin.ModelAdmin) -> object:
    obj = model_admin.model._default_manager.order_by("pk").first()
    assert obj is not None, f"the test world has no {model_admin.opts.label}: add one in tests/tenants.py"
    return obj.pk


def own_urls(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    prefix = f"{model_admin.opts.app_label}_{model_admin.opts.model_name}_"
    return [pattern for pattern in model_admin.get_urls()
            if isinstance(pattern, URLPattern) and pattern.name
            and pattern.name.removeprefix(prefix) not in DJANGO_VIEWS]


def test_the_walk_covers_every_custom_page_we_know_of():
    # A guard on the introspection itself: these pages exist, so the walk must find them.
    names = {pattern.name for model_admin in registered() for pattern in own_urls(model_admin)}
    assert {"flows_app_rotate_secret", "flows_flow_preview", "webhooks_endpoint_rotate_secret",
            "webhooks_endpoint_send_test", "webhooks_delivery_redeliver", "alerts_alertrule_test",
            "alerts_alertdelivery_resend", "billing_billingconnection_check",
            "billing_billingaction_retry"} <= names


def test_a_view_only_user_is_offered_no_action_on_any_list(viewer_client: Client):
    for model_admin in registered():
        url = reverse(f"admin:{model_admin.opts.app_label}_{model_admin.opts.model_name}_changelist")
        response = viewer_client.get(url)
        assert response.status_code == 200, url
        assert response.context["action_form"] is None, f"{url} offers actions to a view-only user"
        assert b'name="action"' not in response.content, f"{url} offers actions to a view-only user"


def test_a_forged_action_post_from_a_view_only_user_is_refused_and_changes_nothing(viewer_client: Client):
    tried = []
    for model_admin in registered():
        url = reverse(f"admin:{model_admin.opts.app_label}_{model_admin.opts.model_name}_changelist")
        pk = any_pk(model_admin)
        names = [name for _func, name, _desc in model_admin._get_base_actions()]
        for name in names:
            before = table_snapshot()
            response = viewer_client.post(url, {"action": name, ACTION_CHECKBOX_NAME: [pk], "index": "0"})
            assert response.status_code == 403, f"{name} on {url} answered {response.status_code}"
            assert table_snapshot() == before, f"{name} on {url} changed something"
            tried.append(name)
    assert {"redeliver", "send_test_event", "enable", "resend", "retry", "delete_selected"} <= set(tried)


def test_every_custom_admin_post_from_a_view_only_user_is_refused_and_changes_nothing(viewer_client: Client):
    tried = []
    for model_admin in registered():
        for pattern in own_urls(model_admin):
            url = reverse(f"admin:{pattern.name}", args=[any_pk(model_admin)])
            before = table_snapshot()
            response = viewer_client.post(url, {"event": "session.canceled", "kind": "cancel"})
            if pattern.name in READ_ONLY_POSTS:
                assert response.status_code < 500, url
            else:
                assert response.status_code == 403, f"POST {url} answered {response.status_code}"
            assert table_snapshot() == before, f"POST {url} changed something"
            tried.append(pattern.name)
    assert len(tried) >= 9


def test_a_view_only_user_cannot_refresh_the_report_numbers(viewer_client: Client):
    before = table_snapshot()
    assert viewer_client.post(reverse("reports:refresh")).status_code == 403
    assert table_snapshot() == before


def test_a_user_with_change_permission_is_still_offered_the_actions(world: Tenant):
    operator = staff_user("operator", "webhooks.change_delivery", "webhooks.change_endpoint",
                          "alerts.change_alertdelivery", view_all=True)
    services.app_access_grant(app=world.app, user=operator, role=AppAccess.Role.EDITOR)
    client = Client()
    client.force_login(operator)
    page = client.get(reverse("admin:webhooks_delivery_changelist"))
    assert b'value="redeliver"' in page.content
    page = client.get(reverse("admin:webhooks_endpoint_changelist"))
    assert b'value="send_test_event"' in page.content and b'value="enable"' in page.content
    response = client.post(reverse("admin:alerts_alertdelivery_changelist"),
                           {"action": "resend", ACTION_CHECKBOX_NAME: [world.alert_delivery.pk], "index": "0"})
    assert response.status_code == 302
    # "Go" with no action chosen is a slip, answered as Django does ("No action selected"), not a 403.
    response = client.post(reverse("admin:webhooks_endpoint_changelist"),
                           {"action": "", ACTION_CHECKBOX_NAME: [world.endpoint.pk], "index": "0"})
    assert response.status_code == 302
