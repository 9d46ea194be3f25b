"""Connecting an App to billing: the admin (keys write-only, Test connection, Retry), `billing_connect`,
and the flow document's `billing` section."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from billing.models import BillingAction, BillingConnection
from flows.flow_document import DocumentInvalid, document_export, document_import
from flows.models import App

pytestmark = pytest.mark.billing


@pytest.fixture
def staff(admin_client):  # noqa: ANN001, ANN201
    return admin_client


def connect_command(*args: str, env: dict, monkeypatch) -> str:  # noqa: ANN001
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    call_command("billing_connect", *args, stdout=out)
    return out.getvalue()


# --- billing_connect ----------------------------------------------------------------------------

def test_billing_connect_reads_the_key_from_the_environment_and_checks_it(demo_app, fake_billing,  # noqa: ANN001
                                                                          monkeypatch) -> None:
    creds = fake_billing.credentials()
    args = ["demo", fake_billing.slug, "--api-key-env", "BILLING_KEY", "--api-base", creds.api_base, "--check"]
    if creds.site:
        args += ["--site", creds.site]
    output = connect_command(*args, env={"BILLING_KEY": creds.api_key}, monkeypatch=monkeypatch)

    connection = BillingConnection.objects.get(app=demo_app)
    assert connection.test_api_key == creds.api_key and connection.live_api_key == ""
    assert (connection.cancel_timing, connection.dry_run) == ("period_end", False)  # DESIGN §8's defaults
    assert "Connection checked:" in output
    assert creds.api_key not in output


def test_billing_connect_refuses_a_missing_variable_and_an_unknown_app(demo_app, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(CommandError, match="NOT_SET_ANYWHERE is not set"):
        call_command("billing_connect", "demo", "stripe", "--api-key-env", "NOT_SET_ANYWHERE")
    with pytest.raises(CommandError, match="No such app: nope"):
        connect_command("nope", "stripe", "--api-key-env", "K", env={"K": "sk_test_1"}, monkeypatch=monkeypatch)
    assert not BillingConnection.objects.exists()


def test_billing_connect_with_a_wrong_key_says_what_the_provider_said(demo_app, fake_billing, monkeypatch) -> None:  # noqa: ANN001
    bad = fake_billing.bad_credentials()
    args = ["demo", fake_billing.slug, "--api-key-env", "K", "--api-base", bad.api_base, "--check"]
    if bad.site:
        args += ["--site", bad.site]
    with pytest.raises(CommandError, match="the check failed"):
        connect_command(*args, env={"K": bad.api_key}, monkeypatch=monkeypatch)
    assert BillingConnection.objects.get(app=demo_app).check_result.startswith("failed:")


# --- the admin ----------------------------------------------------------------------------------

def test_keys_typed_in_the_admin_are_stored_and_never_shown_again(staff, demo_app) -> None:  # noqa: ANN001
    response = staff.post(reverse("admin:billing_billingconnection_add"), {
        "app": demo_app.pk, "provider": "stripe", "site": "", "api_base": "", "new_test_api_key": "sk_test_secret123",
        "new_live_api_key": "", "cancel_timing": "period_end", "cancel_scope": "named"})
    assert response.status_code == 302, response.content.decode()[:2000]
    connection = BillingConnection.objects.get(app=demo_app)
    assert connection.test_api_key == "sk_test_secret123"

    page = staff.get(reverse("admin:billing_billingconnection_change", args=[connection.pk])).content.decode()
    assert "sk_test_secret123" not in page
    assert "…t123" in page and "Test connection" in page


def test_chargebee_needs_the_site_of_the_apps_mode_in_the_admin(staff, demo_app) -> None:  # noqa: ANN001
    response = staff.post(reverse("admin:billing_billingconnection_add"), {
        "app": demo_app.pk, "provider": "chargebee", "site": "acme", "test_site": "", "new_test_api_key": "test_k",
        "cancel_timing": "period_end", "cancel_scope": "named"})
    assert response.status_code == 200 and "Chargebee needs the test site" in response.content.decode()
    assert not BillingConnection.objects.exists()
    response = staff.post(reverse("admin:billing_billingconnection_add"), {
        "app": demo_app.pk, "provider": "chargebee", "site": "acme", "test_site": "acme-test",
        "new_test_api_key": "test_k", "new_live_api_key": "live_k", "cancel_timing": "period_end",
        "cancel_scope": "named"})
    assert response.status_code == 302
    connection = BillingConnection.objects.get()
    assert (connection.test_site, connection.site, connection.credentials(timeout=1).site) == (
        "acme-test", "acme", "acme-test")


def test_test_connection_shows_what_the_provider_found_or_said(staff, demo_app, fake_billing) -> None:  # noqa: ANN001
    from billing import services

    creds = fake_billing.credentials()
    connection = services.connection_save(app=demo_app, provider=fake_billing.slug, api_key=creds.api_key,
                                          site=creds.site, api_base=creds.api_base)
    url = reverse("admin:billing_billingconnection_check", args=[connection.pk])
    page = staff.post(url, follow=True).content.decode()
    assert "Connected:" in page

    services.connection_save(app=demo_app, provider=fake_billing.slug, api_key=fake_billing.bad_credentials().api_key)
    page = staff.post(url, follow=True).content.decode()
    assert "The connection failed:" in page


def test_retry_from_the_admin_runs_a_failed_action_again(staff, demo_app, fake_billing, snippet_data) -> None:  # noqa: ANN001
    from billing import services
    from flows import services as flow_services
    from flows.snippet_data import clean_snippet_data

    creds = fake_billing.credentials()
    services.connection_save(app=demo_app, provider=fake_billing.slug, api_key=creds.api_key, site=creds.site,
                             api_base=creds.api_base)
    sub = fake_billing.seed(customer_id="cus_jane")
    session = flow_services.session_start(app=demo_app, data=clean_snippet_data(snippet_data(subscription_id=sub)))
    flow_services.decision_record(session=session, kind="cancel")
    action = BillingAction.objects.get()
    fake_billing.fail_next(404)
    services.action_execute(action_id=action.pk)
    action.refresh_from_db()
    assert action.status == "failed"

    page = staff.get(reverse("admin:billing_billingaction_change", args=[action.pk])).content.decode()
    assert "Retry" in page and sub in page
    staff.post(reverse("admin:billing_billingaction_retry", args=[action.pk]))
    action.refresh_from_db()
    assert (action.status, action.attempt_count) == ("pending", 0)
    services.action_execute(action_id=action.pk)
    action.refresh_from_db()
    assert action.status == "succeeded" and fake_billing.remote(sub).cancel_at_period_end


def test_the_sessions_page_shows_the_action_and_retries_it_from_there(staff, demo_app, fake_billing,  # noqa: ANN001
                                                                      snippet_data) -> None:
    import re

    from billing import services
    from flows import services as flow_services
    from flows.snippet_data import clean_snippet_data

    creds = fake_billing.credentials()
    services.connection_save(app=demo_app, provider=fake_billing.slug, api_key=creds.api_key, site=creds.site,
                             api_base=creds.api_base)
    sub = fake_billing.seed(customer_id="cus_jane")
    session = flow_services.session_start(app=demo_app, data=clean_snippet_data(snippet_data(subscription_id=sub)))
    flow_services.decision_record(session=session, kind="cancel")
    action = BillingAction.objects.get()
    fake_billing.fail_next(422)
    services.action_execute(action_id=action.pk)

    page_url = reverse("admin:flows_cancelsession_change", args=[session.pk])
    page = staff.get(page_url).content.decode()
    timeline = re.search(r'<table class="bb-timeline">.*?</table>', page, re.S).group(0)
    assert "Billing: cancel in" in timeline and "Billing attempt 1" in timeline
    retry_url = reverse("admin:billing_billingaction_retry", args=[action.pk])
    assert f'action="{retry_url}"' in timeline and 'name="csrfmiddlewaretoken"' in timeline

    response = staff.post(retry_url, {"next": page_url})
    assert response.status_code == 302 and response["Location"] == page_url
    services.action_execute(action_id=action.pk)
    action.refresh_from_db()
    assert action.status == "succeeded"
    assert f'action="{retry_url}"' not in staff.get(page_url).content.decode()  # nothing left to retry


# --- the flow document --------------------------------------------------------------------------

def test_the_billing_section_round_trips_without_a_key(demo_app) -> None:  # noqa: ANN001
    document = document_export(app=demo_app)
    assert "billing" not in document  # not connected: nothing to say

    section = {"provider": "stripe", "site": "", "dry_run": True,
               "cancel": {"timing": "immediately", "prorate": True, "refund": False, "invoice_now": False,
                          "scope": "all"}}
    result = document_import(document={**document, "billing": section})

    connection = BillingConnection.objects.get(app=demo_app)
    assert (connection.cancel_timing, connection.cancel_scope, connection.dry_run) == ("immediately", "all", True)
    assert any("billing_connect demo stripe" in notice for notice in result.notices)
    exported = document_export(app=App.objects.get(app_id="demo"))["billing"]
    assert exported == section
    assert "key" not in json.dumps(exported)


@pytest.mark.parametrize(("section", "problem"), [
    ({"provider": "stripe", "api_key": "sk_live_x"}, "billing.api_key: a document never carries billing keys"),
    ({"provider": "stripe", "live_secret": "x"}, "billing.live_secret: a document never carries billing keys"),
    ({"provider": "paypal"}, "billing.provider: must be one of stripe, recurly, chargebee"),
    ({"provider": "chargebee", "site": "acme"}, "billing.test_site: Chargebee needs the test site's name"),
    ({"provider": "stripe", "stripe_account": "cus_1"}, "billing.stripe_account: a Stripe connection's"),
    ({"provider": "recurly", "stripe_account": "acct_1"}, "billing.stripe_account: a Stripe connection's"),
    ({"provider": "stripe", "cancel": {"timing": "tomorrow"}}, "billing.cancel.timing: must be one of"),
    ({"provider": "stripe", "cancel": {"prorate": "yes"}}, "billing.cancel.prorate: must be true or false"),
    ({"provider": "stripe", "colour": "red"}, "billing.colour: unknown field"),
    ("stripe", "billing: must be an object"),
])
def test_a_bad_billing_section_is_refused_and_changes_nothing(demo_app, section, problem) -> None:  # noqa: ANN001
    document = document_export(app=demo_app)
    with pytest.raises(DocumentInvalid) as caught:
        document_import(document={**document, "billing": section})
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems
    assert not BillingConnection.objects.exists()


def test_a_null_billing_section_disconnects_the_app(demo_app) -> None:  # noqa: ANN001
    from billing import services

    services.connection_save(app=demo_app, provider="stripe", api_key="sk_test_1")
    document_import(document={**document_export(app=demo_app), "billing": None})
    assert not BillingConnection.objects.exists()


# --- Chargebee's test and live sites, Stripe Connect ----------------------------------------------

def test_billing_connect_keeps_chargebees_test_and_live_sites_apart(demo_app, monkeypatch, settings) -> None:  # noqa: ANN001
    settings.BILLING_ALLOWED_API_BASES = ["http://127.0.0.1:9"]
    base = ["demo", "chargebee", "--api-key-env", "K", "--api-base", "http://127.0.0.1:9"]
    connect_command(*base, "--site", "acme-test", env={"K": "test_abc"}, monkeypatch=monkeypatch)
    connection = BillingConnection.objects.get()
    assert (connection.test_site, connection.site) == ("acme-test", "")  # DESIGN §8's --site: the key's mode
    connect_command(*base, "--mode", "live", "--site", "acme", env={"K": "live_abc"}, monkeypatch=monkeypatch)
    connection = BillingConnection.objects.get()
    assert (connection.test_site, connection.site) == ("acme-test", "acme")
    assert connection.credentials(timeout=1).site == "acme-test"  # a test App talks to the test site
    demo_app.mode = App.Mode.LIVE
    demo_app.save()
    connection = BillingConnection.objects.select_related("app").get()
    assert (connection.credentials(timeout=1).site, connection.api_key) == ("acme", "live_abc")

    connect_command(*base, "--mode", "live", "--test-site", "acme-sandbox", env={"K": "live_abc"},
                    monkeypatch=monkeypatch)
    assert BillingConnection.objects.get().test_site == "acme-sandbox"
    with pytest.raises(CommandError, match="test_site"):
        connect_command(*base, "--test-site", "Acme Test", env={"K": "live_abc"}, monkeypatch=monkeypatch)
    with pytest.raises(CommandError, match="two live sites"):
        connect_command(*base, "--site", "a", "--live-site", "b", env={"K": "live_abc"}, monkeypatch=monkeypatch)


def test_billing_connect_needs_the_site_of_the_apps_mode(demo_app, monkeypatch, settings) -> None:  # noqa: ANN001
    settings.BILLING_ALLOWED_API_BASES = ["http://127.0.0.1:9"]
    with pytest.raises(CommandError, match="needs the App's test site"):
        connect_command("demo", "chargebee", "--api-key-env", "K", "--live-site", "acme",
                        "--api-base", "http://127.0.0.1:9", env={"K": "test_abc"}, monkeypatch=monkeypatch)
    assert not BillingConnection.objects.exists()


def test_an_existing_chargebee_site_becomes_both_sites(db) -> None:  # noqa: ANN001
    from importlib import import_module

    from django.apps import apps as global_apps
    migration = import_module("billing.migrations.0008_connection_test_site_stripe_account")
    app = App.objects.create(name="Old", app_id="old")
    connection = BillingConnection.objects.create(app=app, provider="chargebee", site="acme", dry_run=True)
    migration.one_site_for_both(global_apps, None)
    connection.refresh_from_db()
    assert (connection.site, connection.test_site) == ("acme", "acme")


def test_billing_connect_sets_a_stripe_connect_account_and_refuses_a_wrong_one(demo_app, monkeypatch) -> None:  # noqa: ANN001
    connect_command("demo", "stripe", "--api-key-env", "K", "--stripe-account", "acct_1Shop", env={"K": "sk_test_1"},
                    monkeypatch=monkeypatch)
    connection = BillingConnection.objects.get()
    assert connection.credentials(timeout=1).stripe_account == "acct_1Shop"
    with pytest.raises(CommandError, match="stripe_account"):
        connect_command("demo", "stripe", "--api-key-env", "K", "--stripe-account", "shop_1",
                        env={"K": "sk_test_1"}, monkeypatch=monkeypatch)
    with pytest.raises(CommandError, match="Stripe connections only"):
        connect_command("demo", "recurly", "--api-key-env", "K", "--stripe-account", "acct_1Shop",
                        env={"K": "k"}, monkeypatch=monkeypatch)
    assert BillingConnection.objects.get().stripe_account == "acct_1Shop"
    assert document_export(app=demo_app)["billing"]["stripe_account"] == "acct_1Shop"


def test_an_import_over_a_connection_whose_address_is_no_longer_allowed_names_it(demo_app, settings) -> None:  # noqa: ANN001
    # A connection saved to a local server while BILLING_ALLOWED_API_BASES listed it, then the App's own
    # exported document imported again in a shell without that setting: a problem naming the address and
    # the setting, for --check and for the import, and nothing changed (not a traceback).
    from billing import services

    settings.BILLING_ALLOWED_API_BASES = ["http://127.0.0.1:9"]
    services.connection_save(app=demo_app, provider="stripe", api_key="sk_test_1", api_base="http://127.0.0.1:9")
    document = document_export(app=demo_app)
    document["flows"][0]["intro"] = "Changed"
    text = json.dumps(document)
    settings.BILLING_ALLOWED_API_BASES = []

    for args in (["--check"], []):
        with pytest.raises(CommandError) as caught:
            call_command("flow_import", "-", *args, stdin=io.StringIO(text), stdout=io.StringIO())
        message = str(caught.value)
        assert "billing.api_base: http://127.0.0.1:9" in message and "BILLING_ALLOWED_API_BASES" in message, message
    assert demo_app.flows.get(name=document["flows"][0]["name"]).intro != "Changed"
    assert BillingConnection.objects.get().api_base == "http://127.0.0.1:9"
