from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.forms import CheckboxInput
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conftest import need
from flows import services, signing
from flows.models import App, CancelSession, Decision, Event, Flow, Reason
from offers.models import Offer


@pytest.fixture(autouse=True)
def _no_channels(settings) -> None:  # noqa: ANN001
    # Decisions made here only set up admin pages; delivering their events is the channels' business.
    settings.BRIGHTBACK_EVENT_HANDLERS = []


def app_url(app: App, view: str = "change") -> str:
    return reverse(f"admin:flows_app_{view}", args=[app.pk])


def flow_url(flow: Flow, view: str = "change") -> str:
    return reverse(f"admin:flows_flow_{view}", args=[flow.pk])


def pre(response, element_id: str) -> str:  # noqa: ANN001
    """The text a person sees (and copies) inside one <pre> of the page."""
    match = re.search(rf'<pre id="{element_id}"[^>]*>(.*?)</pre>', response.content.decode(), re.S)
    assert match, f"no <pre id={element_id}> on the page"
    return html.unescape(match.group(1))


def precancel(client: Client, data: dict):  # noqa: ANN201
    return client.post("/precancel", json.dumps(data), content_type="application/json")


def result_counts() -> dict[str, int]:
    return {m.__name__: m.objects.count() for m in (CancelSession, Decision, Event)}


# --- the App's secret -----------------------------------------------------------------------------

@pytest.mark.django_db
def test_new_app_secret_is_shown_once_then_never_again(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:flows_app_add"), {
        "name": "Acme", "app_id": "acme", "mode": "live", "currency": "EUR", "allowed_return_hosts": "app.acme.test",
        "allowed_origins": "https://app.acme.test", "support_email": "help@acme.test",
    })

    app = App.objects.get(app_id="acme")
    assert response.status_code == 200
    assert app.secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]

    for url in (app_url(app), reverse("admin:flows_app_changelist"), app_url(app, "history")):
        page = admin_client.get(url).content.decode()
        assert app.secret not in page
    assert f"{app.secret[:6]}…" in admin_client.get(app_url(app)).content.decode()
    assert all(app.secret not in entry.change_message for entry in LogEntry.objects.all())


@pytest.mark.django_db
def test_saving_an_app_without_return_hosts_warns_that_every_return_url_is_refused(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:flows_app_add"), {
        "name": "Bare", "app_id": "bare", "mode": "test", "currency": "USD", "allowed_return_hosts": "",
        "allowed_origins": "",
        "support_email": ""})

    shown = [str(m) for m in response.context["messages"]]
    assert any("every return URL will be refused" in m for m in shown)
    assert any("no allowed snippet origins" in m for m in shown)


@pytest.mark.django_db
def test_rotating_the_secret_shows_the_new_one_once_and_old_signatures_stop_verifying(
        admin_client: Client, demo_app: App, snippet_data) -> None:  # noqa: ANN001
    demo_app.mode = App.Mode.LIVE
    demo_app.save()
    expires = int(time.time()) + 600
    old_auth = {"expires": expires, "hash": signing.embed_hash(secret=demo_app.secret, app_id="demo",
                                                               internal_id="acct_42", expires=expires,
                                                               subscription_id="sub_1", email="jane@example.com")}
    assert precancel(Client(), snippet_data(auth=old_auth)).status_code == 200

    confirm = admin_client.get(app_url(demo_app, "rotate_secret"))
    assert confirm.status_code == 200 and demo_app.secret not in confirm.content.decode()
    rotated = admin_client.post(app_url(demo_app, "rotate_secret"))

    new_secret = App.objects.get(pk=demo_app.pk).secret
    assert new_secret != demo_app.secret
    assert new_secret in rotated.content.decode()
    assert new_secret not in admin_client.get(app_url(demo_app)).content.decode()
    refused = precancel(Client(), snippet_data(auth=old_auth))
    assert refused.status_code == 403 and refused.json()["message"].startswith("auth.hash does not match")
    new_auth = {"expires": expires, "hash": signing.embed_hash(secret=new_secret, app_id="demo",
                                                               internal_id="acct_42", expires=expires,
                                                               subscription_id="sub_1", email="jane@example.com")}
    assert precancel(Client(), snippet_data(auth=new_auth)).status_code == 200


@pytest.mark.django_db
def test_rotating_needs_a_post(admin_client: Client, demo_app: App) -> None:
    secret = demo_app.secret

    confirm = admin_client.get(app_url(demo_app, "rotate_secret"))

    assert confirm.status_code == 200  # the confirmation page, not an error that changes nothing either
    assert App.objects.get(pk=demo_app.pk).secret == secret


# --- the embed snippet ----------------------------------------------------------------------------

@pytest.mark.django_db
def test_app_page_shows_a_ready_to_paste_snippet_with_app_id_and_server_address(admin_client: Client,
                                                                                demo_app: App, settings) -> None:  # noqa: ANN001
    settings.SITE_URL = ""
    snippet = pre(admin_client.get(app_url(demo_app)), "bb-embed-html")
    assert '<script src="http://testserver/js/brightback.js"></script>' in snippet
    assert 'app_id: "demo"' in snippet
    assert '<a id="bb-cancel" href="' in snippet
    assert "auth:" not in snippet  # a test-mode app takes unsigned data

    settings.SITE_URL = "https://cancel.example.com"
    snippet = pre(admin_client.get(app_url(demo_app)), "bb-embed-html")
    assert '<script src="https://cancel.example.com/js/brightback.js"></script>' in snippet


@pytest.mark.django_db
def test_live_app_signing_code_in_python_makes_data_the_server_accepts(admin_client: Client, demo_app: App,
                                                                       snippet_data, monkeypatch) -> None:  # noqa: ANN001
    demo_app.mode = App.Mode.LIVE
    demo_app.save()
    response = admin_client.get(app_url(demo_app))
    assert demo_app.secret not in response.content.decode()
    assert "auth:" in pre(response, "bb-embed-html")

    monkeypatch.setenv("BRIGHTBACK_APP_SECRET", demo_app.secret)
    namespace: dict = {}
    exec(pre(response, "bb-embed-python"), namespace)  # noqa: S102 - the code a business would copy
    sign = namespace["brightback_auth"]

    billing = {"subscription_id": "sub_1", "email": "jane@example.com"}
    assert precancel(Client(), snippet_data(**billing, auth=sign("acct_42", **billing))).status_code == 200
    with_billing_id = snippet_data(**billing, account={"internal_id": "acct_42", "billing_id": "cus_1"})
    assert precancel(Client(), {**with_billing_id, "auth": sign("acct_42", billing_id="cus_1", **billing)}
                     ).status_code == 200
    # Without the billing fields the signature covers the account alone.
    account_only = {"app_id": "demo", "account": {"internal_id": "acct_42"}}
    assert precancel(Client(), {**account_only, "auth": sign("acct_42")}).status_code == 200
    # The account's own signature does not carry another subscription.
    refused = precancel(Client(), snippet_data(**billing, auth=sign("acct_42")))
    assert refused.status_code == 403


@pytest.mark.django_db
def test_live_app_signing_code_in_node_makes_data_the_server_accepts(admin_client: Client, demo_app: App,
                                                                     snippet_data, tmp_path: Path) -> None:  # noqa: ANN001
    node = shutil.which("node")
    need(node is not None, "Node.js is not installed")
    demo_app.mode = App.Mode.LIVE
    demo_app.save()
    module = tmp_path / "brightback_auth.js"
    module.write_text(pre(admin_client.get(app_url(demo_app)), "bb-embed-node"), "utf-8")

    def sign(*args: object) -> dict:
        call = f"require({json.dumps(str(module))}).brightbackAuth({', '.join(json.dumps(a) for a in args)})"
        ran = subprocess.run([str(node), "-e", f"console.log(JSON.stringify({call}))"], capture_output=True,
                             text=True, timeout=30, check=True, env={"BRIGHTBACK_APP_SECRET": demo_app.secret})
        return json.loads(ran.stdout)

    billing = {"subscriptionId": "sub_1", "billingId": "cus_1", "email": "jane@example.com"}
    data = snippet_data(subscription_id="sub_1", email="jane@example.com",
                        account={"internal_id": "acct_42", "billing_id": "cus_1"})
    assert precancel(Client(), {**data, "auth": sign("acct_42", billing)}).status_code == 200
    account_only = {"app_id": "demo", "account": {"internal_id": "acct_42"}}
    assert precancel(Client(), {**account_only, "auth": sign("acct_42")}).status_code == 200
    assert precancel(Client(), {**data, "auth": sign("acct_42")}).status_code == 403


@pytest.mark.django_db
def test_live_app_signing_code_in_ruby_makes_data_the_server_accepts(admin_client: Client, demo_app: App,
                                                                     snippet_data) -> None:  # noqa: ANN001
    ruby = shutil.which("ruby")
    need(ruby is not None, "Ruby is not installed (.ci/run installs it)")
    demo_app.mode = App.Mode.LIVE
    demo_app.save()
    source = pre(admin_client.get(app_url(demo_app)), "bb-embed-ruby")

    def sign(call: str) -> dict:
        ran = subprocess.run([str(ruby), "-rjson", "-e", f"{source}\nputs JSON.generate({call})"],
                             capture_output=True, text=True, timeout=30, check=True,
                             env={"BRIGHTBACK_APP_SECRET": demo_app.secret, "PATH": "/usr/bin:/bin"})
        return json.loads(ran.stdout)

    data = snippet_data(subscription_id="sub_1", email="jane@example.com",
                        account={"internal_id": "acct_42", "billing_id": "cus_1"})
    signed = sign('brightback_auth("acct_42", subscription_id: "sub_1", billing_id: "cus_1", '
                  'email: "jane@example.com")')
    assert precancel(Client(), {**data, "auth": signed}).status_code == 200
    account_only = sign('brightback_auth("acct_42")')
    assert precancel(Client(), {"app_id": "demo", "account": {"internal_id": "acct_42"},
                                "auth": account_only}).status_code == 200
    assert precancel(Client(), {**data, "auth": account_only}).status_code == 403


# --- the Flow page --------------------------------------------------------------------------------

def form_data(response) -> dict:  # noqa: ANN001
    """What the browser would post back for the admin form as rendered, inlines included."""
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    data: dict = {}
    for form in forms:
        for name, field in form.fields.items():
            value, key = form[name].value(), form.add_prefix(name)
            if isinstance(field.widget, CheckboxInput):
                if value:
                    data[key] = "on"
            elif isinstance(value, list | tuple):
                data[key] = [str(v) for v in value]
            elif value is not None:
                data[key] = str(value)
    return data


@pytest.mark.django_db
def test_flow_page_saves_a_new_reason_and_offer_from_its_inlines(admin_client: Client, demo_app: App) -> None:
    flow = demo_app.flows.get()
    data = form_data(admin_client.get(flow_url(flow)))
    reason_index = int(data["reasons-INITIAL_FORMS"])
    offer_index = int(data["offers-TOTAL_FORMS"])
    data.update({
        f"reasons-{reason_index}-position": "9", f"reasons-{reason_index}-code": "bugs",
        f"reasons-{reason_index}-label": "Too many bugs", f"reasons-{reason_index}-is_active": "on",
        "offers-TOTAL_FORMS": str(offer_index + 1),
        f"offers-{offer_index}-code": "extend", f"offers-{offer_index}-kind": "trial_extension",
        f"offers-{offer_index}-title": "Two more weeks", f"offers-{offer_index}-position": "5",
        f"offers-{offer_index}-is_active": "on", f"offers-{offer_index}-trial_days": "14",
        f"offers-{offer_index}-reasons": [str(Reason.objects.get(flow=flow, code="not-using").pk)],
    })

    response = admin_client.post(flow_url(flow), data)

    assert response.status_code == 302, response.context and response.context["errors"]
    assert Reason.objects.get(flow=flow, code="bugs").label == "Too many bugs"
    offer = Offer.objects.get(flow=flow, code="extend")
    assert offer.terms() == {"trial_days": 14}
    assert [r.code for r in offer.reasons.all()] == ["not-using"]
    assert flow.reasons.count() == 6 and flow.offers.count() == 4  # the existing rows survived


@pytest.mark.django_db
def test_offer_inline_refuses_an_offer_missing_its_kinds_terms(admin_client: Client, demo_app: App) -> None:
    flow = demo_app.flows.get()
    data = form_data(admin_client.get(flow_url(flow)))
    index = int(data["offers-TOTAL_FORMS"])
    data.update({"offers-TOTAL_FORMS": str(index + 1), f"offers-{index}-code": "half",
                 f"offers-{index}-kind": "discount", f"offers-{index}-title": "Half off",
                 f"offers-{index}-position": "3", f"offers-{index}-is_active": "on"})

    response = admin_client.post(flow_url(flow), data)

    assert response.status_code == 200
    assert "Required for a Discount offer." in response.content.decode()
    assert not Offer.objects.filter(code="half").exists()


@pytest.mark.django_db
def test_offer_reasons_are_limited_to_the_offers_own_flow(admin_client: Client, demo_app: App) -> None:
    other = Flow.objects.create(app=demo_app, name="Other")
    alien = Reason.objects.create(flow=other, code="alien", label="Alien reason")
    offer = Offer.objects.get(flow__app=demo_app, code="pause-2")

    inline = admin_client.get(flow_url(demo_app.flows.get(name="Default")))
    offer_form = inline.context["inline_admin_formsets"][1].formset.forms[0]
    assert alien not in offer_form.fields["reasons"].queryset
    assert "Alien reason" not in inline.content.decode()

    standalone = reverse("admin:offers_offer_change", args=[offer.pk])
    data = form_data(admin_client.get(standalone))
    data["reasons"] = [str(alien.pk)]
    response = admin_client.post(standalone, data)

    assert response.status_code == 200
    assert "reasons" in response.context["adminform"].form.errors
    assert not offer.reasons.filter(pk=alien.pk).exists()


# --- the preview ----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_preview_shows_reasons_then_the_offers_for_the_chosen_reason_and_records_nothing(
        admin_client: Client, demo_app: App) -> None:
    flow = demo_app.flows.get()
    url = flow_url(flow, "preview")
    assert f'href="{url}"' in admin_client.get(flow_url(flow)).content.decode()
    before = result_counts()

    reasons = admin_client.get(url).content.decode()
    assert 'name="reason" value="too-expensive"' in reasons
    assert f'action="{url}"' in reasons
    assert "Preview:" in reasons

    offers = admin_client.post(url, {"reason": "too-expensive", "action": "continue"}).content.decode()
    assert 'data-bb-offer="discount-30"' in offers and 'data-bb-offer="pause-2"' in offers
    assert 'data-bb-offer="talk-to-us"' not in offers
    assert f'action="{url}"' in offers

    back = admin_client.post(url, {"reason": "too-expensive", "feedback": "hm", "action": "back"}).content.decode()
    assert 'value="too-expensive" checked' in back and ">hm</textarea>" in back
    assert result_counts() == before


@pytest.mark.django_db
def test_a_decision_in_preview_shows_where_it_would_lead_and_records_nothing(admin_client: Client,
                                                                            demo_app: App) -> None:
    url = flow_url(demo_app.flows.get(), "preview")
    before = result_counts()

    accepted = admin_client.post(url, {"reason": "too-expensive", "feedback": "pricey", "accept": "discount-30"})
    emailed = admin_client.post(url, {"reason": "other", "accept": "talk-to-us"})
    canceled = admin_client.post(url, {"reason": "not-using", "action": "cancel"})
    refused = admin_client.post(url, {"reason": "not-using", "accept": "discount-30"})

    page = accepted.content.decode()
    assert "offer.accepted" in page and "30% off for the next 3 months" in page and "pricey" in page
    assert "offer_1_url" in page
    assert "offer.email_requested" in emailed.content.decode()
    assert "session.canceled" in canceled.content.decode()
    assert "cancel_confirmation_url" in canceled.content.decode()
    assert refused.status_code == 400
    assert result_counts() == before


@pytest.mark.django_db
def test_preview_is_for_staff_only(client: Client, django_user_model, demo_app: App) -> None:  # noqa: ANN001
    url = flow_url(demo_app.flows.get(), "preview")
    assert client.get(url).status_code == 302

    django_user_model.objects.create_user("customer", password="pw-customer-1")
    client.login(username="customer", password="pw-customer-1")
    response = client.get(url)

    assert response.status_code == 302 and "/login/" in response["Location"]


# --- results --------------------------------------------------------------------------------------

@pytest.fixture
def decided_session(demo_app: App, snippet_data) -> CancelSession:  # noqa: ANN001
    session = services.session_start(app=demo_app, data=snippet_data(email="jane@example.com"))
    services.decision_record(session=session, kind="accept", reason_code="too-expensive",
                             feedback="Too pricey for us", offer_code="discount-30")
    return session


@pytest.mark.django_db
def test_session_page_shows_its_decision_and_events_but_not_its_page_token(admin_client: Client,
                                                                          decided_session: CancelSession) -> None:
    page = admin_client.get(reverse("admin:flows_cancelsession_change", args=[decided_session.pk]))
    text = page.content.decode()

    decision = decided_session.decision
    assert "It’s too expensive" in text and "Too pricey for us" in text
    assert "30% off for the next 3 months" in text
    assert html.escape(decision.redirect_url) in text
    assert "offer.accepted" in text and decided_session.events.get().id in text
    assert decided_session.token not in text


@pytest.mark.django_db
def test_sessions_can_be_found_by_email_account_and_id_and_filtered_by_decision(
        admin_client: Client, decided_session: CancelSession, demo_app: App, snippet_data) -> None:  # noqa: ANN001
    other = services.session_start(app=demo_app, data=snippet_data(email="bob@example.com",
                                                                   account={"internal_id": "acct_7"}))
    changelist = reverse("admin:flows_cancelsession_changelist")

    def listed(query: dict) -> set[str]:
        return {s.public_id for s in admin_client.get(changelist, query).context["cl"].result_list}

    assert listed({"q": "jane@"}) == {decided_session.public_id}
    assert listed({"q": "acct_7"}) == {other.public_id}
    assert listed({"q": other.public_id}) == {other.public_id}
    assert listed({"decision__kind__exact": "accept"}) == {decided_session.public_id}
    assert listed({"status__exact": "open"}) == {other.public_id}


@pytest.mark.django_db
def test_results_cannot_be_added_changed_or_deleted(admin_client: Client, decided_session: CancelSession) -> None:
    decision, event = decided_session.decision, decided_session.events.get()
    for model, obj in (("cancelsession", decided_session), ("decision", decision), ("event", event)):
        change = reverse(f"admin:flows_{model}_change", args=[obj.pk])
        assert admin_client.get(reverse(f"admin:flows_{model}_add")).status_code == 403
        assert admin_client.post(reverse(f"admin:flows_{model}_delete", args=[obj.pk]), {"post": "yes"}
                                 ).status_code == 403
        assert admin_client.post(change, {"feedback": "edited", "email": "x@example.com"}).status_code == 403
        assert 'name="_save"' not in admin_client.get(change).content.decode()
    decision.refresh_from_db()
    assert decision.feedback == "Too pricey for us"


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["cancelsession", "decision", "event", "flow", "app", "offers.offer"])
def test_list_pages_do_not_query_once_per_row(admin_client: Client, demo_app: App, snippet_data,  # noqa: ANN001
                                              model: str) -> None:
    app_label, _, name = model.rpartition(".")
    url = reverse(f"admin:{app_label or 'flows'}_{name}_changelist")

    def add_rows() -> None:
        for _ in range(3):
            session = services.session_start(app=demo_app, data=snippet_data())
            services.decision_record(session=session, kind="cancel", reason_code="other")
            flow = Flow.objects.create(app=demo_app, name=f"Flow {Flow.objects.count()}")
            Offer.objects.create(flow=flow, code="talk", kind="contact_support", title="Talk")
            App.objects.create(name=f"App {App.objects.count()}")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(url).status_code == 200
        return len(captured)

    add_rows()
    few = queries()
    add_rows()
    assert queries() == few


@pytest.mark.django_db
def test_html_in_names_is_shown_as_text(admin_client: Client, demo_app: App, snippet_data) -> None:  # noqa: ANN001
    evil = "<script>alert(1)</script>"
    App.objects.filter(pk=demo_app.pk).update(name=evil)
    flow = demo_app.flows.get()
    Flow.objects.filter(pk=flow.pk).update(name=evil, title=evil)
    Reason.objects.filter(flow=flow, code="too-expensive").update(label=evil)
    Offer.objects.filter(flow=flow, code="discount-30").update(title=evil)
    session = services.session_start(app=demo_app, data=snippet_data())
    services.decision_record(session=session, kind="accept", reason_code="too-expensive", feedback=evil,
                             offer_code="discount-30")
    offer = Offer.objects.get(flow=flow, code="discount-30")

    pages = [
        reverse("admin:flows_app_changelist"), app_url(demo_app), app_url(demo_app, "rotate_secret"),
        reverse("admin:flows_flow_changelist"), flow_url(flow), flow_url(flow, "preview"),
        reverse("admin:offers_offer_changelist"), reverse("admin:offers_offer_change", args=[offer.pk]),
        reverse("admin:flows_cancelsession_changelist"),
        reverse("admin:flows_cancelsession_change", args=[session.pk]),
        reverse("admin:flows_decision_change", args=[session.decision.pk]),
    ]
    for url in pages:
        text = admin_client.get(url).content.decode()
        assert evil not in text, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, url
    outcome = admin_client.post(flow_url(flow, "preview"), {"reason": "too-expensive", "accept": "discount-30"})
    assert evil not in outcome.content.decode()


@pytest.mark.django_db
def test_a_reason_renamed_in_the_flow_page_shows_on_open_hosted_pages_at_once(
        admin_client: Client, client: Client, demo_app: App, snippet_data) -> None:  # noqa: ANN001
    url = precancel(client, snippet_data()).json()["url"].removeprefix("http://testserver")
    assert "Renamed by staff" not in client.get(url).content.decode()  # the page's reasons are now cached
    flow = demo_app.flows.get()
    data = form_data(admin_client.get(flow_url(flow)))
    data["reasons-0-label"] = "Renamed by staff"

    assert admin_client.post(flow_url(flow), data).status_code == 302
    assert "Renamed by staff" in client.get(url).content.decode()
