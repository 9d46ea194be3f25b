"""Flow versions: one per real change of a flow's published content (admin, import, restore), never for a
save that changed nothing; a stable hash; the difference shown; a restore only for those who may change
the flow."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from evidence.models import FlowVersion
from evidence.services import content_hash, flow_contents
from flows.flow_document import document_dumps, document_export, document_import, document_loads
from flows.models import App, AppAccess, CancelSession, Flow
from flows.services import app_access_grant
from flows.tests.test_admin import form_data
from tests.tenants import staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_channels(settings) -> None:  # noqa: ANN001
    settings.BRIGHTBACK_EVENT_HANDLERS = []


def versions(flow: Flow) -> list[FlowVersion]:
    return list(FlowVersion.objects.filter(flow=flow).order_by("number"))


def flow_url(flow: Flow) -> str:
    return reverse("admin:flows_flow_change", args=[flow.pk])


def imported(app: App, change=None) -> None:  # noqa: ANN001
    document = json.loads(document_dumps(document_export(app=app)))
    if change is not None:
        change(document)
    document_import(document=document_loads(json.dumps(document)))


def test_an_imported_flow_has_its_first_version_with_hash_and_author(demo_app: App):
    flow = demo_app.flows.get()
    [first] = versions(flow)
    assert (first.number, first.source, first.author_name) == (1, "import", "flow_import")
    assert re.fullmatch(r"[0-9a-f]{64}", first.content_hash)
    assert first.content["flow"]["name"] == flow.name
    assert [r["code"] for r in first.content["flow"]["reasons"]][:2] == ["too-expensive", "not-using"]
    flow.refresh_from_db()
    assert flow.version == 1


def test_the_hash_is_the_canonical_content_and_stays_the_same_for_the_same_content(demo_app: App):
    flow = demo_app.flows.get()
    [first] = versions(flow)
    assert content_hash(first.content) == first.content_hash
    assert flow_contents(app_pk=demo_app.pk)[flow.name] == first.content
    reordered = json.loads(json.dumps(first.content, sort_keys=True))
    reordered["flow"] = dict(reversed(list(reordered["flow"].items())))
    assert content_hash(reordered) == first.content_hash
    assert content_hash({**first.content, "flow": {**first.content["flow"], "title": "Other"}}) != first.content_hash


def test_importing_the_same_document_again_makes_no_version(demo_app: App):
    flow = demo_app.flows.get()
    imported(demo_app)
    call_command("demo_setup", stdout=io.StringIO())
    assert len(versions(flow)) == 1


def test_an_import_that_changes_the_flow_makes_one_new_version(demo_app: App):
    flow = demo_app.flows.get()

    def retitle(document: dict) -> None:
        document["flows"][0]["title"] = "Wait, one thing"

    imported(demo_app, retitle)
    imported(demo_app, retitle)  # the same again: nothing more
    first, second = versions(flow)
    assert second.number == 2 and second.source == "import"
    assert second.content["flow"]["title"] == "Wait, one thing"
    assert second.content_hash != first.content_hash


def test_an_admin_edit_makes_a_version_by_its_author_and_an_unchanged_save_makes_none(admin_client: Client,
                                                                                     demo_app: App):
    flow = demo_app.flows.get()
    data = form_data(admin_client.get(flow_url(flow)))
    assert admin_client.post(flow_url(flow), data).status_code == 302
    assert len(versions(flow)) == 1  # saved, but nothing changed

    data["intro"] = "We are sorry to see you go."
    assert admin_client.post(flow_url(flow), data).status_code == 302
    latest = versions(flow)[-1]
    assert (latest.number, latest.source, latest.author_name) == (2, "admin", "admin")
    assert latest.content["flow"]["intro"] == "We are sorry to see you go."

    # A reason relabelled in the inline is part of the content too.
    data = form_data(admin_client.get(flow_url(flow)))
    data["reasons-0-label"] = "Costs too much"
    assert admin_client.post(flow_url(flow), data).status_code == 302
    assert versions(flow)[-1].number == 3
    assert versions(flow)[-1].content["flow"]["reasons"][0]["label"] == "Costs too much"


def test_an_offer_edited_on_its_own_page_makes_a_version(admin_client: Client, demo_app: App):
    flow = demo_app.flows.get()
    offer = flow.offers.order_by("position").first()
    url = reverse("admin:offers_offer_change", args=[offer.pk])
    data = form_data(admin_client.get(url))
    data["title"] = "Half price for three months"
    assert admin_client.post(url, data).status_code == 302
    latest = versions(flow)[-1]
    assert latest.number == 2
    assert any(o["title"] == "Half price for three months" for o in latest.content["flow"]["offers"])


def test_the_difference_between_two_versions_is_shown(admin_client: Client, demo_app: App):
    flow = demo_app.flows.get()
    imported(demo_app, lambda document: document["flows"][0].update(title="Wait, one thing"))
    first, second = versions(flow)

    page = admin_client.get(reverse("admin:evidence_flowversion_diff", args=[second.pk])).content.decode()
    added = ('<span class="bb-diff-added" style="background:#e6ffec">'
             "+    &quot;title&quot;: &quot;Wait, one thing&quot;,")
    assert added in page
    assert "bb-diff-removed" in page

    against = admin_client.get(reverse("admin:evidence_flowversion_diff", args=[first.pk]), {"against": "2"})
    assert "Wait, one thing" in against.content.decode()
    change_page = admin_client.get(reverse("admin:evidence_flowversion_change", args=[second.pk])).content.decode()
    assert "Wait, one thing" in change_page
    history = admin_client.get(reverse("admin:evidence_flowversion_changelist"), {"flow__id__exact": flow.pk})
    assert f"{flow.name} v2" in history.content.decode()
    assert "Published versions" in admin_client.get(flow_url(flow)).content.decode()
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:evidence_flowversion_changelist") in index


def test_restore_brings_the_old_content_back_as_a_new_version(admin_client: Client, demo_app: App):
    flow = demo_app.flows.get()
    imported(demo_app, lambda document: document["flows"][0].update(title="Wait, one thing"))
    first = versions(flow)[0]

    response = admin_client.post(reverse("admin:evidence_flowversion_restore", args=[first.pk]))

    assert response.status_code == 302
    restored = versions(flow)[-1]
    assert (restored.number, restored.source, restored.restored_from) == (3, "restore", 1)
    assert restored.author_name == "admin"
    assert restored.content_hash == first.content_hash
    flow.refresh_from_db()
    assert flow.title == first.content["flow"]["title"] and flow.version == 3
    # Restoring what is already published changes nothing and makes no version.
    admin_client.post(reverse("admin:evidence_flowversion_restore", args=[first.pk]))
    assert len(versions(flow)) == 3


def test_a_view_only_user_cannot_restore(demo_app: App):
    flow = demo_app.flows.get()
    imported(demo_app, lambda document: document["flows"][0].update(title="Wait, one thing"))
    first = versions(flow)[0]
    reader = staff_user("reader", view_all=True)
    app_access_grant(app=demo_app, user=reader, role=AppAccess.Role.EDITOR)  # only permissions hold them back
    client = Client()
    client.force_login(reader)

    assert client.get(reverse("admin:evidence_flowversion_diff", args=[first.pk])).status_code == 200
    assert client.get(reverse("admin:evidence_flowversion_restore", args=[first.pk])).status_code == 403
    assert client.post(reverse("admin:evidence_flowversion_restore", args=[first.pk])).status_code == 403
    assert len(versions(flow)) == 2
    flow.refresh_from_db()
    assert flow.title == "Wait, one thing"


def test_an_editor_with_change_permission_restores(demo_app: App):
    flow = demo_app.flows.get()
    imported(demo_app, lambda document: document["flows"][0].update(title="Wait, one thing"))
    editor = staff_user("editor", "flows.change_flow", "flows.view_flow", "evidence.view_flowversion",
                        "offers.change_offer", "offers.view_offer", "flows.change_reason", "flows.view_reason",
                        "flows.change_variant", "flows.view_variant")
    app_access_grant(app=demo_app, user=editor, role=AppAccess.Role.EDITOR)
    client = Client()
    client.force_login(editor)
    first = versions(flow)[0]
    assert client.post(reverse("admin:evidence_flowversion_restore", args=[first.pk])).status_code == 302
    assert versions(flow)[-1].author_name == "editor"


def test_a_session_records_the_version_its_page_showed(client: Client, demo_app: App, snippet_data):  # noqa: ANN001
    response = client.post("/precancel", data=json.dumps(snippet_data()), content_type="application/json")
    session = CancelSession.objects.get()
    assert session.flow_version is None  # not opened yet
    imported(demo_app, lambda document: document["flows"][0].update(title="Wait, one thing"))

    client.get(response.json()["url"])

    session.refresh_from_db()
    assert session.flow_version == 2  # what the page showed when it was opened
    imported(demo_app, lambda document: document["flows"][0].update(title="Later copy"))
    client.get(response.json()["url"])
    session.refresh_from_db()
    assert session.flow_version == 2  # later views of the same page do not move it


def test_a_session_decided_through_the_api_without_the_page_records_its_version(client: Client, demo_app: App,
                                                                                snippet_data):  # noqa: ANN001
    client.post("/precancel", data=json.dumps(snippet_data()), content_type="application/json")
    session = CancelSession.objects.get()
    response = client.post(f"/api/v1/pages/{session.token}/decision", data=json.dumps({"action": "cancel"}),
                           content_type="application/json")
    assert response.status_code == 200
    session.refresh_from_db()
    assert session.flow_version == 1


def test_a_duplicated_flow_starts_its_own_history(admin_client: Client, demo_app: App):
    flow = demo_app.flows.get()
    admin_client.post(reverse("admin:flows_flow_changelist"),
                      {"action": "duplicate", "_selected_action": [flow.pk]})
    copy = Flow.objects.exclude(pk=flow.pk).get()
    [first] = versions(copy)
    assert (first.number, first.source, first.author_name) == (1, "duplicate", "admin")
    assert first.content["flow"]["name"] == copy.name
    assert len(versions(flow)) == 1


def test_flows_older_than_versions_get_their_first_at_migrate_once(demo_app: App):
    from django.apps import apps

    from evidence.apps import first_versions

    older = Flow.objects.create(app=demo_app, name="Made before versions", title="Hello")
    first_versions(sender=apps.get_app_config("evidence"))
    first_versions(sender=apps.get_app_config("evidence"))
    [first] = versions(older)
    assert (first.number, first.source) == (1, "initial")
    assert first.content["flow"]["title"] == "Hello"
    assert len(versions(demo_app.flows.get(name="Default"))) == 1


def test_offers_deleted_from_their_list_make_a_version(admin_client: Client, demo_app: App):
    flow = demo_app.flows.get()
    offer = flow.offers.order_by("position").first()
    response = admin_client.post(reverse("admin:offers_offer_changelist"),
                                 {"action": "delete_selected", "_selected_action": [offer.pk], "post": "yes"})
    assert response.status_code == 302
    latest = versions(flow)[-1]
    assert latest.number == 2
    assert offer.code not in [o["code"] for o in latest.content["flow"]["offers"]]
