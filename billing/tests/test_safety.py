"""Safe with live keys: where a billing key may go, which keys and settings a connection may be saved
with, what staff read when a provider fails, and a subscription that is not the signed customer's."""

from __future__ import annotations

import html
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from billing import services
from billing.addresses import AddressRefused, api_base_check
from billing.models import BillingAction, BillingConnection
from brightback_site.testing import LocalHTTPServer
from flows import services as flow_services
from flows.flow_document import DocumentInvalid, document_export, document_import
from flows.models import App
from flows.snippet_data import clean_snippet_data

pytestmark = pytest.mark.billing

SECRET_PAGE = b"<html><body>INTERNAL-ONLY metadata token=abc123</body></html>"


class Recorder:
    """A server on 127.0.0.1 that records every request (method, path, headers) and answers each with
    `status`, `content_type` and `body`: another server's page, or an odd answer."""

    def __init__(self, *, status: int = 200, content_type: str = "text/html", body: bytes = SECRET_PAGE) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with recorder._lock:
                    recorder.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _any  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = LocalHTTPServer(Handler, name="recorder")
        self.url = self._server.url()

    def close(self) -> None:
        self._server.stop()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    try:
        yield server
    finally:
        server.close()


def connect_command(*args: str, key: str, monkeypatch) -> str:  # noqa: ANN001
    monkeypatch.setenv("BILLING_KEY", key)
    out = io.StringIO()
    call_command("billing_connect", *args, "--api-key-env", "BILLING_KEY", stdout=out)
    return out.getvalue()


def a_session(demo_app, snippet_data, *, subscription_id: str, billing_id: str = ""):  # noqa: ANN001, ANN201
    account = {"internal_id": "acct_42", "plan": "basic", "value": 49}
    if billing_id:
        account["billing_id"] = billing_id
    data = snippet_data(subscription_id=subscription_id, account=account)
    return flow_services.session_start(app=demo_app, data=clean_snippet_data(data))


# --- item 1: the second line of defence ---------------------------------------------------------

def test_a_subscription_of_another_customer_than_the_signed_billing_id_is_not_touched(
        demo_app, fake_billing, snippet_data) -> None:  # noqa: ANN001
    creds = fake_billing.credentials()
    services.connection_save(app=demo_app, provider=fake_billing.slug, api_key=creds.api_key, site=creds.site,
                             api_base=creds.api_base)
    victim = fake_billing.seed(customer_id="cus_victim")
    fake_billing.seed(customer_id="cus_attacker")
    session = a_session(demo_app, snippet_data, subscription_id=victim, billing_id="cus_attacker")
    flow_services.decision_record(session=session, kind="cancel")
    action = BillingAction.objects.get(session=session)

    services.action_execute(action_id=action.pk)

    action.refresh_from_db()
    assert (action.status, action.attempt_count) == ("failed", 1)
    assert f"subscription {victim} belongs to customer cus_victim" in action.last_error
    assert "not to cus_attacker" in action.last_error
    remote = fake_billing.remote(victim)
    assert not remote.cancel_at_period_end and not remote.canceled
    assert fake_billing.writes(victim) == 0
    assert services.action_execute(action_id=action.pk).status == "skipped"  # failed for good: not retried


def test_the_signed_customers_own_subscription_is_carried_out(demo_app, fake_billing, snippet_data) -> None:  # noqa: ANN001
    creds = fake_billing.credentials()
    services.connection_save(app=demo_app, provider=fake_billing.slug, api_key=creds.api_key, site=creds.site,
                             api_base=creds.api_base)
    sub = fake_billing.seed(customer_id="cus_jane")
    session = a_session(demo_app, snippet_data, subscription_id=sub, billing_id="cus_jane")
    flow_services.decision_record(session=session, kind="cancel")
    action = BillingAction.objects.get(session=session)
    services.action_execute(action_id=action.pk)
    action.refresh_from_db()
    assert action.status == "succeeded", action.last_error
    assert fake_billing.remote(sub).cancel_at_period_end


# --- item 2: where a key may go ----------------------------------------------------------------

@pytest.mark.parametrize("address", ["http://169.254.169.254/", "http://127.0.0.1:9205/", "http://10.0.0.8/",
                                     "http://[::1]:9205/", "https://evil.example.com/"])
def test_billing_connect_refuses_an_api_base_off_the_allow_list(demo_app, settings, monkeypatch, address) -> None:  # noqa: ANN001
    settings.BILLING_ALLOWED_API_BASES = []
    with pytest.raises(CommandError, match="api_base: .*BILLING_ALLOWED_API_BASES"):
        connect_command("demo", "stripe", "--api-base", address, key="sk_test_123", monkeypatch=monkeypatch)
    assert not BillingConnection.objects.exists()


@pytest.mark.parametrize("address", ["http://169.254.169.254/", "http://127.0.0.1:9205/"])
def test_the_admin_refuses_an_api_base_off_the_allow_list(admin_client, demo_app, settings, address) -> None:  # noqa: ANN001
    settings.BILLING_ALLOWED_API_BASES = []
    response = admin_client.post(reverse("admin:billing_billingconnection_add"), {
        "app": demo_app.pk, "provider": "stripe", "site": "", "api_base": address,
        "new_test_api_key": "sk_test_secret123", "cancel_timing": "period_end", "cancel_scope": "named"})
    assert response.status_code == 200
    assert "BILLING_ALLOWED_API_BASES" in response.content.decode()
    assert not BillingConnection.objects.exists()


def test_a_listed_prefix_allows_only_addresses_under_it(settings) -> None:  # noqa: ANN001
    settings.BILLING_ALLOWED_API_BASES = ["http://127.0.0.1:9205/stripe"]
    api_base_check("stripe", "http://127.0.0.1:9205/stripe")
    api_base_check("stripe", "http://127.0.0.1:9205/stripe/v2")
    for refused in ("http://127.0.0.1:9205/stripe-admin", "http://127.0.0.1:9205/", "http://127.0.0.1:92050/stripe",
                    "https://127.0.0.1:9205/stripe", "http://127.0.0.1.evil.com:9205/stripe",
                    "http://user:pw@127.0.0.1:9205/stripe", "http://127.0.0.1:9205/stripe?x=1"):
        with pytest.raises(AddressRefused):
            api_base_check("stripe", refused)


def test_the_providers_own_hosts_need_no_listing(settings) -> None:  # noqa: ANN001
    settings.BILLING_ALLOWED_API_BASES = []
    api_base_check("stripe", "https://api.stripe.com")
    api_base_check("recurly", "https://v3.eu.recurly.com/")
    api_base_check("chargebee", "https://acme-test.chargebee.com", site="acme-test")
    with pytest.raises(AddressRefused):
        api_base_check("stripe", "http://api.stripe.com")  # never in clear
    with pytest.raises(AddressRefused):
        api_base_check("chargebee", "", site="169.254.169.254/latest#")


def test_test_connection_never_sends_the_key_to_a_stored_address_off_the_allow_list(
        admin_client, demo_app, recorder, settings) -> None:  # noqa: ANN001
    # An address stored before the allow-list existed (or written to the database directly).
    settings.BILLING_ALLOWED_API_BASES = []
    connection = services.connection_save(app=demo_app, provider="stripe", api_key="sk_test_secret123")
    BillingConnection.objects.filter(pk=connection.pk).update(api_base=recorder.url)

    page = admin_client.post(reverse("admin:billing_billingconnection_check", args=[connection.pk]),
                             follow=True).content.decode()

    assert "The connection failed: Stripe was not called" in page
    assert recorder.requests == []


@pytest.mark.parametrize(("provider", "site", "key"), [("stripe", "", "sk_test_secret123"),
                                                       ("recurly", "", "recurly_secret123"),
                                                       ("chargebee", "acme-test", "test_secret123")])
@pytest.mark.parametrize(("status", "content_type", "body"), [
    (200, "text/html", SECRET_PAGE), (500, "text/html", SECRET_PAGE),
    (200, "application/json", json.dumps({"note": "INTERNAL-ONLY"}).encode()),  # no id, no object: odd
])
def test_a_failed_test_connection_never_shows_the_other_servers_answer(admin_client, demo_app, settings, provider,  # noqa: ANN001
                                                                       site, key, status, content_type, body) -> None:
    server = Recorder(status=status, content_type=content_type, body=body)
    try:
        settings.BILLING_ALLOWED_API_BASES = [server.url]
        connection = services.connection_save(app=demo_app, provider=provider, api_key=key, site=site,
                                              api_base=server.url)
        response = admin_client.post(reverse("admin:billing_billingconnection_check", args=[connection.pk]),
                                     follow=True)
    finally:
        server.close()
    page = response.content.decode()
    assert response.status_code == 200
    assert "The connection failed:" in page
    assert "INTERNAL-ONLY" not in page
    connection.refresh_from_db()
    assert connection.check_result.startswith("failed:") and "INTERNAL-ONLY" not in connection.check_result


def test_a_new_api_address_clears_the_stored_keys(demo_app, settings) -> None:  # noqa: ANN001
    settings.BILLING_ALLOWED_API_BASES = ["http://127.0.0.1:9301", "http://127.0.0.1:9302"]
    services.connection_save(app=demo_app, provider="stripe", api_key="sk_test_one", api_base="http://127.0.0.1:9301")
    services.connection_save(app=demo_app, provider="stripe", api_key="sk_live_two", mode="live",
                             api_base="http://127.0.0.1:9301")
    with pytest.raises(ValidationError, match="no test key is set"):
        services.connection_save(app=demo_app, provider="stripe", api_base="http://127.0.0.1:9302")
    connection = services.connection_save(app=demo_app, provider="stripe", api_base="http://127.0.0.1:9302",
                                          dry_run=True)
    assert (connection.test_api_key, connection.live_api_key) == ("", "")


def test_the_admin_clears_the_keys_when_the_address_changes(admin_client, demo_app, settings) -> None:  # noqa: ANN001
    settings.BILLING_ALLOWED_API_BASES = ["http://127.0.0.1:9301", "http://127.0.0.1:9302"]
    connection = services.connection_save(app=demo_app, provider="stripe", api_key="sk_test_one",
                                          api_base="http://127.0.0.1:9301")
    form = {"app": demo_app.pk, "provider": "stripe", "site": "", "api_base": "http://127.0.0.1:9302",
            "cancel_timing": "period_end", "cancel_scope": "named"}
    url = reverse("admin:billing_billingconnection_change", args=[connection.pk])
    refused = admin_client.post(url, form)
    assert refused.status_code == 200 and "no test key is set" in refused.content.decode()
    assert BillingConnection.objects.get().test_api_key == "sk_test_one"  # nothing changed

    assert admin_client.post(url, {**form, "new_test_api_key": "sk_test_two"}).status_code == 302
    connection.refresh_from_db()
    assert (connection.api_base, connection.test_api_key) == ("http://127.0.0.1:9302", "sk_test_two")


# --- item 8: keys, dry run, and words staff can act on --------------------------------------------

def test_dry_run_off_without_a_key_for_the_apps_mode_is_refused_at_save(admin_client, demo_app) -> None:  # noqa: ANN001
    with pytest.raises(ValidationError, match="no test key is set"):
        services.connection_save(app=demo_app, provider="stripe")
    response = admin_client.post(reverse("admin:billing_billingconnection_add"), {
        "app": demo_app.pk, "provider": "stripe", "site": "", "api_base": "", "new_live_api_key": "sk_live_x",
        "cancel_timing": "period_end", "cancel_scope": "named"})
    assert response.status_code == 200 and "no test key is set" in response.content.decode()
    with pytest.raises(DocumentInvalid) as caught:
        document_import(document={**document_export(app=demo_app), "billing": {"provider": "stripe"}})
    assert any(p.startswith("billing.dry_run: false needs the App's API key") for p in caught.value.problems)
    assert not BillingConnection.objects.exists()
    services.connection_save(app=demo_app, provider="stripe", dry_run=True)  # a dry run needs no key


@pytest.mark.parametrize(("provider", "site", "mode", "key"), [
    ("stripe", "", "test", "sk_live_abc"), ("stripe", "", "live", "sk_test_abc"), ("stripe", "", "live", "rk_test_abc"),
    ("chargebee", "acme", "live", "test_abc"), ("chargebee", "acme-test", "test", "live_abc"),
])
def test_a_key_of_the_other_mode_is_refused(admin_client, demo_app, provider, site, mode, key) -> None:  # noqa: ANN001
    if mode == "live":
        App.objects.filter(pk=demo_app.pk).update(mode="live")
        demo_app.refresh_from_db()
    with pytest.raises(ValidationError, match=f"The {mode} key is a"):
        services.connection_save(app=demo_app, provider=provider, site=site, api_key=key)
    response = admin_client.post(reverse("admin:billing_billingconnection_add"), {
        "app": demo_app.pk, "provider": provider, "site": site, "api_base": "", f"new_{mode}_api_key": key,
        "cancel_timing": "period_end", "cancel_scope": "named"})
    assert response.status_code == 200 and f"the {mode} key goes here" in response.content.decode()
    assert not BillingConnection.objects.exists()


def test_billing_connect_refuses_a_live_key_for_a_test_app(demo_app, monkeypatch) -> None:  # noqa: ANN001
    with pytest.raises(CommandError, match="The test key is a live key of Stripe"):
        connect_command("demo", "stripe", key="sk_live_abc", monkeypatch=monkeypatch)
    assert not BillingConnection.objects.exists()


def test_a_failed_action_reads_in_plain_words_with_the_providers_text_behind_details(
        admin_client, demo_app, fake_billing, snippet_data) -> None:  # noqa: ANN001
    creds = fake_billing.credentials()
    services.connection_save(app=demo_app, provider=fake_billing.slug, api_key=creds.api_key, site=creds.site,
                             api_base=creds.api_base)
    session = a_session(demo_app, snippet_data, subscription_id="sub_gone_away")
    flow_services.decision_record(session=session, kind="cancel")
    action = BillingAction.objects.get(session=session)
    services.action_execute(action_id=action.pk)
    action.refresh_from_db()
    assert action.status == "failed"
    assert "sub_gone_away" in action.last_error and action.error_detail
    assert action.error_detail not in action.last_error  # the provider's words are kept apart

    page = admin_client.get(reverse("admin:flows_cancelsession_change", args=[session.pk])).content.decode()
    assert "<details><summary>details</summary>" in page
    assert html.escape(action.error_detail) in page.split("<details><summary>details</summary>", 1)[1]
    action_page = admin_client.get(reverse("admin:billing_billingaction_change", args=[action.pk])).content.decode()
    assert "<details><summary>details</summary>" in action_page


def test_an_odd_answer_fails_the_action_instead_of_crashing(demo_app, snippet_data, settings) -> None:  # noqa: ANN001
    server = Recorder(status=200, content_type="application/json", body=b"{}")
    try:
        settings.BILLING_ALLOWED_API_BASES = [server.url]
        services.connection_save(app=demo_app, provider="stripe", api_key="sk_test_x", api_base=server.url)
        session = a_session(demo_app, snippet_data, subscription_id="sub_1")
        flow_services.decision_record(session=session, kind="cancel")
        action = BillingAction.objects.get(session=session)
        assert services.action_execute(action_id=action.pk).status == "failed"
    finally:
        server.close()
    action.refresh_from_db()
    assert "could not read" in action.last_error


def test_each_chargebee_site_is_a_plain_name_and_an_address_is_the_modes_own(demo_app, settings) -> None:  # noqa: ANN001
    settings.BILLING_ALLOWED_API_BASES = []
    with pytest.raises(ValidationError) as caught:
        services.connection_save(app=demo_app, provider="chargebee", api_key="test_k", site="acme",
                                 test_site="169.254.169.254/latest#", dry_run=True)
    assert "test_site" in caught.value.message_dict
    connection = services.connection_save(app=demo_app, provider="chargebee", api_key="test_k", site="acme",
                                          test_site="acme-test", api_base="https://acme-test.chargebee.com")
    assert connection.credentials(timeout=1).site == "acme-test"
    with pytest.raises(ValidationError) as caught:  # the live site's host for a test App: not where its key goes
        services.connection_save(app=demo_app, provider="chargebee", api_base="https://acme.chargebee.com")
    assert "api_base" in caught.value.message_dict
