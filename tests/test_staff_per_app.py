"""An agency hosts several businesses: staff of one App find, report on and export nothing of another,
and change only the Apps they edit."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from flows import services
from flows.admin_access import AppScopedAdmin, app_pk_of
from flows.models import App, AppAccess, Flow
from reports import days
from reports.services import rollups_refresh
from tests.tenants import Tenant, staff_user, table_snapshot, tenant
from webhooks.models import Endpoint

pytestmark = pytest.mark.django_db

CHANGE_ALL = ("flows.change_app", "flows.change_flow", "flows.add_flow", "flows.change_audience",
              "flows.change_reason", "flows.add_reason", "flows.change_variant", "offers.change_offer",
              "webhooks.change_endpoint", "webhooks.add_endpoint", "webhooks.change_delivery",
              "alerts.change_alertrule", "alerts.change_alertdelivery", "billing.change_billingconnection",
              "billing.change_billingaction")


@pytest.fixture
def acme() -> Tenant:
    return tenant("acme", name="Acme")


@pytest.fixture
def globex() -> Tenant:
    return tenant("globex", name="Globex")


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def scoped_admins() -> list[AppScopedAdmin]:
    return [model_admin for model_admin in admin.site._registry.values() if isinstance(model_admin, AppScopedAdmin)]


def changelist(model_admin: admin.ModelAdmin) -> str:
    return reverse(f"admin:{model_admin.opts.app_label}_{model_admin.opts.model_name}_changelist")


def acme_viewer(acme: Tenant, *codenames: str) -> User:
    user = staff_user("acme-staff", *codenames, view_all=True)
    services.app_access_grant(app=acme.app, user=user, role=AppAccess.Role.VIEWER)
    return user


def test_staff_of_one_app_find_nothing_of_another_on_any_list(acme: Tenant, globex: Tenant):
    client = login(acme_viewer(acme))
    for model_admin in scoped_admins():
        response = client.get(changelist(model_admin))
        assert response.status_code == 200
        shown = list(response.context["cl"].queryset)
        assert shown, f"{changelist(model_admin)} shows nothing of the user's own App"
        assert {app_pk_of(obj, model_admin.app_path) for obj in shown} == {acme.app.pk}, changelist(model_admin)
        page = response.content.decode()
        # Not in the rows, nor in the filters' choices (which would list every App's name and flows).
        assert "globex" not in page.lower(), f"{changelist(model_admin)} names the other App"


def test_search_finds_nothing_of_another_app(acme: Tenant, globex: Tenant):
    client = login(acme_viewer(acme))
    sessions = reverse("admin:flows_cancelsession_changelist")
    assert client.get(sessions, {"q": globex.email}).context["cl"].result_count == 0
    assert client.get(sessions, {"q": acme.email}).context["cl"].result_count == 1
    assert client.get(reverse("admin:webhooks_endpoint_changelist"), {"q": "globex"}).context["cl"].result_count == 0
    # The popup a raw-id field opens is a changelist too.
    popup = client.get(reverse("admin:flows_app_changelist"), {"_popup": "1", "_to_field": "id"})
    assert [app.app_id for app in popup.context["cl"].queryset] == ["acme"]


def test_another_apps_pages_are_not_found(acme: Tenant, globex: Tenant):
    client = login(acme_viewer(acme, *CHANGE_ALL))
    for obj in (globex.app, globex.flow, globex.session, globex.session.decision, globex.endpoint, globex.delivery,
                globex.alert_rule, globex.alert_delivery, globex.connection, globex.action, globex.audience):
        opts = obj._meta
        for view in ("change", "history", "delete"):
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[obj.pk])
            # Without the delete permission Django says 403 before looking for the row, as for any id.
            assert client.get(url).status_code in ((404, 403) if view == "delete" else (404,)), url
    pages = [("flows_app_rotate_secret", globex.app), ("flows_flow_preview", globex.flow),
             ("webhooks_endpoint_send_test", globex.endpoint), ("webhooks_delivery_redeliver", globex.delivery),
             ("alerts_alertrule_test", globex.alert_rule), ("alerts_alertdelivery_resend", globex.alert_delivery),
             ("billing_billingconnection_check", globex.connection), ("billing_billingaction_retry", globex.action)]
    for name, obj in pages:
        before = table_snapshot()
        assert client.post(reverse(f"admin:{name}", args=[obj.pk])).status_code == 404, name
        assert table_snapshot() == before


def test_reports_and_their_export_cover_only_the_staff_members_apps(acme: Tenant, globex: Tenant):
    today = days.today()
    rollups_refresh(first_day=today - timedelta(days=1), last_day=today + timedelta(days=1))
    client = login(acme_viewer(acme))
    for name in ("overview", "reasons", "offers", "experiments", "watch_list"):
        page = client.get(reverse(f"reports:{name}"))
        assert page.status_code == 200, name
        assert "globex" not in page.content.decode().lower(), f"the {name} report names the other App"
    reasons = client.get(reverse("reports:reasons")).content.decode()
    assert "Feedback from acme" in reasons
    overview = client.get(reverse("reports:overview"))
    assert overview.context["figures"].sessions == 1
    # Asking for the other App by its id is refused, not answered.
    assert client.get(reverse("reports:overview"), {"app": globex.app.pk}).status_code == 400
    assert client.get(reverse("reports:sessions_csv"), {"app": globex.app.pk}).status_code == 400
    export = b"".join(client.get(reverse("reports:sessions_csv")).streaming_content).decode()
    assert acme.email in export and globex.email not in export and "globex" not in export


def test_a_superuser_sees_every_app(acme: Tenant, globex: Tenant):
    client = login(User.objects.create_superuser("owner", password="pw"))
    sessions = client.get(reverse("admin:flows_cancelsession_changelist")).context["cl"]
    assert sessions.result_count == 2
    export = b"".join(client.get(reverse("reports:sessions_csv")).streaming_content).decode()
    assert acme.email in export and globex.email in export


def test_staff_with_no_app_granted_see_no_rows(acme: Tenant):
    client = login(staff_user("newcomer", view_all=True))
    for model_admin in scoped_admins():
        assert client.get(changelist(model_admin)).context["cl"].result_count == 0, changelist(model_admin)
    export = b"".join(client.get(reverse("reports:sessions_csv")).streaming_content).decode()
    assert acme.email not in export


def test_a_viewer_cannot_change_their_app_even_with_change_permissions(acme: Tenant):
    client = login(acme_viewer(acme, *CHANGE_ALL))
    before = table_snapshot()
    page = client.get(reverse("admin:flows_flow_change", args=[acme.flow.pk]))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    response = client.post(reverse("admin:flows_flow_change", args=[acme.flow.pk]), {"name": "Renamed"})
    assert response.status_code == 403
    assert client.get(reverse("admin:webhooks_endpoint_changelist")).context["action_form"] is None
    response = client.post(reverse("admin:webhooks_endpoint_changelist"),
                           {"action": "enable", ACTION_CHECKBOX_NAME: [acme.endpoint.pk], "index": "0"})
    assert response.status_code == 403
    assert client.post(reverse("admin:webhooks_endpoint_rotate_secret", args=[acme.endpoint.pk])).status_code == 403
    assert client.get(reverse("admin:flows_flow_add")).status_code == 403
    assert table_snapshot() == before


def test_an_editor_changes_only_the_apps_they_edit(acme: Tenant, globex: Tenant):
    user = staff_user("editor", *CHANGE_ALL, view_all=True)
    services.app_access_grant(app=acme.app, user=user, role=AppAccess.Role.EDITOR)
    services.app_access_grant(app=globex.app, user=user, role=AppAccess.Role.VIEWER)
    client = login(user)
    assert client.get(reverse("admin:flows_flow_change", args=[acme.flow.pk])).context["has_change_permission"]
    assert not client.get(reverse("admin:flows_flow_change", args=[globex.flow.pk])).context["has_change_permission"]
    # A new endpoint can be made for the App they edit, not for the one they only read.
    add = reverse("admin:webhooks_endpoint_add")
    choices = {app.pk for app in client.get(add).context["adminform"].form.fields["app"].queryset}
    assert choices == {acme.app.pk}
    response = client.post(add, {"app": globex.app.pk, "url": "https://hooks.example.com/sneaky", "is_active": "on"})
    assert response.status_code == 200 and response.context["adminform"].form.errors["app"]
    assert not Endpoint.objects.filter(url="https://hooks.example.com/sneaky").exists()
    response = client.post(add, {"app": acme.app.pk, "url": "https://hooks.example.com/new", "is_active": "on"})
    assert Endpoint.objects.filter(app=acme.app, url="https://hooks.example.com/new").exists()
    # An action over rows of both Apps is refused whole; over their own App's rows, it runs.
    endpoints = reverse("admin:webhooks_endpoint_changelist")
    both = [acme.endpoint.pk, globex.endpoint.pk]
    Endpoint.objects.filter(pk__in=both).update(is_active=False, disabled_at=timezone.now())
    response = client.post(endpoints, {"action": "enable", ACTION_CHECKBOX_NAME: both, "index": "0"})
    assert response.status_code == 403
    assert not Endpoint.objects.filter(pk__in=both, is_active=True).exists()
    response = client.post(endpoints, {"action": "enable", ACTION_CHECKBOX_NAME: [acme.endpoint.pk], "index": "0"})
    assert response.status_code == 302
    assert Endpoint.objects.get(pk=acme.endpoint.pk).is_active
    assert not Endpoint.objects.get(pk=globex.endpoint.pk).is_active
    assert client.post(reverse("admin:webhooks_endpoint_rotate_secret", args=[globex.endpoint.pk])).status_code == 403


def test_app_access_grants_changes_and_revokes_from_the_command_line(acme: Tenant, globex: Tenant):
    user = staff_user("support", view_all=True)
    out = io.StringIO()
    call_command("app_access", "acme", "support", "--role", "viewer", stdout=out)
    assert "support is now viewer of acme" in out.getvalue()
    assert AppAccess.objects.get(user=user).role == "viewer"
    call_command("app_access", "acme", "support", "--role", "editor", stdout=io.StringIO())
    assert list(AppAccess.objects.filter(user=user).values_list("app__app_id", "role")) == [("acme", "editor")]
    sessions = login(user).get(reverse("admin:flows_cancelsession_changelist")).context["cl"]
    assert [s.app.app_id for s in sessions.queryset] == ["acme"]
    out = io.StringIO()
    call_command("app_access", "acme", "support", "--revoke", stdout=out)
    assert "no longer has access to acme" in out.getvalue()
    assert not AppAccess.objects.filter(user=user).exists()
    with pytest.raises(CommandError, match="No such app"):
        call_command("app_access", "nope", "support", "--role", "viewer")
    with pytest.raises(CommandError, match="No such user"):
        call_command("app_access", "acme", "nobody", "--role", "viewer")
    with pytest.raises(CommandError):
        call_command("app_access", "acme", "support", "--role", "owner")


def test_the_apps_page_lists_and_grants_staff_access(acme: Tenant):
    owner = login(User.objects.create_superuser("owner", password="pw"))
    member = staff_user("member", view_all=True)
    services.app_access_grant(app=acme.app, user=member, role=AppAccess.Role.VIEWER)
    page = owner.get(reverse("admin:flows_app_change", args=[acme.app.pk]))
    formset = next(f for f in page.context["inline_admin_formsets"] if f.opts.model is AppAccess)
    assert [form.instance.user.username for form in formset.formset.forms if form.instance.pk] == ["member"]
    # Only staff who are not superusers can be chosen: a superuser needs no grant.
    choices = {user.username for user in formset.formset.forms[0].fields["user"].queryset}
    assert choices == {"member"}


def test_a_staff_member_who_creates_an_app_edits_it(acme: Tenant):
    user = staff_user("founder", "flows.add_app", view_all=True)
    client = login(user)
    client.post(reverse("admin:flows_app_add"), {"name": "Initech", "app_id": "initech", "mode": "test"})
    app = App.objects.get(app_id="initech")
    assert AppAccess.objects.get(user=user, app=app).role == AppAccess.Role.EDITOR
    assert Flow.objects.filter(app=app).count() == 0


def test_the_session_timeline_offers_retry_only_to_editors_of_its_app(acme: Tenant):
    from billing.models import BillingAction

    BillingAction.objects.filter(pk=acme.action.pk).update(status=BillingAction.Status.FAILED)
    retry = reverse("admin:billing_billingaction_retry", args=[acme.action.pk])
    page = reverse("admin:flows_cancelsession_change", args=[acme.session.pk])
    viewer = login(acme_viewer(acme, "billing.change_billingaction"))
    assert retry not in viewer.get(page).content.decode()
    editor = staff_user("editor", "billing.change_billingaction", view_all=True)
    services.app_access_grant(app=acme.app, user=editor, role=AppAccess.Role.EDITOR)
    assert retry in login(editor).get(page).content.decode()


def test_access_is_granted_and_revoked_on_the_apps_page(acme: Tenant):
    owner = login(User.objects.create_superuser("owner", password="pw"))
    member = staff_user("member", view_all=True)
    url = reverse("admin:flows_app_change", args=[acme.app.pk])
    app = {"name": acme.app.name, "mode": acme.app.mode, "allowed_return_hosts": acme.app.allowed_return_hosts,
           "allowed_origins": "", "support_email": acme.app.support_email, "offer_blocklist": ""}
    management = {"staff_access-INITIAL_FORMS": "0", "staff_access-TOTAL_FORMS": "1",
                  "staff_access-MIN_NUM_FORMS": "0", "staff_access-MAX_NUM_FORMS": "1000"}
    response = owner.post(url, {**app, **management, "staff_access-0-user": member.pk,
                                "staff_access-0-role": "editor", "staff_access-0-app": acme.app.pk})
    assert response.status_code == 302, response.context["adminform"].form.errors
    access = AppAccess.objects.get(app=acme.app, user=member)
    assert access.role == "editor"
    response = owner.post(url, {**app, **management, "staff_access-INITIAL_FORMS": "1",
                                "staff_access-0-id": access.pk, "staff_access-0-app": acme.app.pk,
                                "staff_access-0-user": member.pk, "staff_access-0-role": "editor",
                                "staff_access-0-DELETE": "on"})
    assert response.status_code == 302
    assert not AppAccess.objects.filter(user=member).exists()
