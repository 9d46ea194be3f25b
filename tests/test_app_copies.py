"""What each process keeps of an App in memory (flows.selectors.app_part: its routing content and each
channel's configuration) is retired by every way staff change it, and the next session or event sees the
change."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import AlertDelivery, AlertRule, AlertSettings
from billing import services as billing_services
from billing.models import BillingAction, BillingConnection
from flows import routing, selectors, services
from flows.flow_document import document_import
from flows.models import App, Audience, CancelSession, Flow
from flows.snippet_data import clean_snippet_data
from offers.models import Offer
from webhooks import endpoints as webhook_endpoints
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def start(demo_app, snippet_data):  # noqa: ANN001, ANN201
    def make(**overrides: object) -> CancelSession:
        app = selectors.app_by_public_id("demo")
        return services.session_start(app=app, data=clean_snippet_data(snippet_data(**overrides)))

    return make


@pytest.fixture
def cancel(start):  # noqa: ANN001, ANN201
    """A customer cancels on the hosted page; returns the event's id."""

    def make() -> str:
        session = selectors.session_by_token(start().token)
        decision = services.decision_record(session=session, kind="cancel", reason_code="too-expensive")
        return decision.session.events.get().id

    return make


def test_the_next_event_sees_a_new_disabled_enabled_or_deleted_webhook_endpoint(demo_app, cancel):
    assert not Delivery.objects.filter(event_id=cancel()).exists()  # no endpoint yet, and that is now in memory
    endpoint = Endpoint.objects.create(app=demo_app, url="https://hooks.example.com/in")
    assert Delivery.objects.filter(event_id=cancel(), endpoint=endpoint).count() == 1

    webhook_endpoints.endpoint_disable(endpoint=endpoint, reason="the receiver answered 410 Gone")
    assert not Delivery.objects.filter(event_id=cancel()).exists()
    webhook_endpoints.endpoint_enable(endpoint=endpoint)
    assert Delivery.objects.filter(event_id=cancel(), endpoint=endpoint).count() == 1

    endpoint.event_types = ["offer.accepted"]
    endpoint.save()
    assert not Delivery.objects.filter(event_id=cancel()).exists()
    Endpoint.objects.filter(pk=endpoint.pk).delete()
    assert not Delivery.objects.filter(event_id=cancel()).exists()


def test_the_next_event_sees_a_new_or_deleted_alert_rule_and_changed_alert_settings(demo_app, cancel, settings):
    settings.BRIGHTBACK_CUSTOMER_EMAILS = []  # the alerts channel's own receipt, not the receipts channel's
    assert not AlertDelivery.objects.filter(event_id=cancel()).exists()
    rule = AlertRule.objects.create(app=demo_app, events=["session.canceled"], recipients=["team@example.com"])
    assert list(AlertDelivery.objects.filter(event_id=cancel()).values_list("kind", flat=True)) == ["team_email"]

    AlertSettings.objects.create(app=demo_app, cancellation_receipt=True)
    kinds = set(AlertDelivery.objects.filter(event_id=cancel()).values_list("kind", flat=True))
    assert kinds == {"team_email", "receipt"}

    rule.delete()
    AlertSettings.objects.filter(app=demo_app).delete()
    assert not AlertDelivery.objects.filter(event_id=cancel()).exists()


def test_the_next_event_sees_a_new_changed_or_removed_billing_connection(demo_app, cancel):
    assert not BillingAction.objects.filter(event_id=cancel()).exists()
    billing_services.connection_save(app=demo_app, provider="stripe", api_key="sk_test_1", dry_run=True)
    action = BillingAction.objects.get(event_id=cancel())
    assert action.dry_run and action.request["at_period_end"] is True

    billing_services.connection_save(app=demo_app, provider="stripe", dry_run=False,
                                     cancel_timing=BillingConnection.CancelTiming.IMMEDIATELY)
    action = BillingAction.objects.get(event_id=cancel())
    assert not action.dry_run and action.request["at_period_end"] is False

    BillingConnection.objects.filter(app=demo_app).delete()
    assert not BillingAction.objects.filter(event_id=cancel()).exists()


def test_channel_configuration_is_read_once_per_app_version(demo_app, cancel):
    cancel()
    with CaptureQueriesContext(connection) as captured:
        cancel()
    tables = " ".join(query["sql"] for query in captured)
    for table in ("webhooks_endpoint", "billing_billingconnection", "alerts_alertrule", "alerts_alertsettings"):
        assert f'FROM "{table}"' not in tables


def test_the_next_session_sees_a_saved_flow_audience_and_offer(demo_app, start):
    default = Flow.objects.get(app=demo_app, name="Default")
    assert start().flow == default and start().offer_codes is None

    pro = Flow.objects.create(app=demo_app, name="Pro customers", priority=5)
    audience = Audience.objects.create(app=demo_app, name="pro", flow=pro,
                                       rules={"all": [{"field": "account.plan", "op": "equals", "value": "pro"}]})
    assert start().flow == pro and start().audience == audience

    pro.is_active = False
    pro.save()
    assert start().flow == default

    offer = Offer.objects.get(flow=default, code="pause-2")
    offer.min_monthly_value = 100  # the snippet's account is worth 49 a month
    offer.save()
    assert start().offer_codes == ["discount-30", "talk-to-us"]

    offer.min_monthly_value = None
    offer.save()
    enterprise = Audience.objects.create(app=demo_app, name="enterprise", position=9,
                                         rules={"all": [{"field": "account.plan", "op": "equals",
                                                         "value": "enterprise"}]})
    offer.audiences.add(enterprise)
    assert start().offer_codes == ["discount-30", "talk-to-us"]
    offer.audiences.remove(enterprise)
    assert start().offer_codes is None


def test_an_import_and_a_queryset_update_reported_as_content_change_reach_the_next_session(demo_app, start):
    from flows.flow_document import document_loads
    from flows.management.commands.demo_setup import DEMO_DOCUMENT

    assert start().offer_codes is None
    document = document_loads(DEMO_DOCUMENT.read_text("utf-8"))
    document["flows"][0]["offers"] = [o for o in document["flows"][0]["offers"] if o["code"] != "pause-2"]
    document_import(document=document)  # deactivates pause-2 with a queryset update
    session = start()
    assert session.offer_codes is None and not Offer.objects.get(code="pause-2").is_active
    published = routing.published(App.objects.get(app_id="demo"))
    assert {offer.code for offer in published.offers[session.flow_id]} == {"discount-30", "talk-to-us"}

    flow = Flow.objects.get(app=demo_app, name="Default")
    Flow.objects.filter(pk=flow.pk).update(languages="fr")
    Flow.objects.create(app=demo_app, name="English", languages="en", priority=50)
    services.flow_content_changed(flow_ids=[flow.pk])
    assert start(context={"locale": "en"}).flow.name == "English"


def test_a_change_committed_by_another_process_retires_this_process_copy(demo_app, start,
                                                                         django_capture_on_commit_callbacks):
    start()
    version, parts = selectors._app_parts["demo"]
    with django_capture_on_commit_callbacks(execute=True):
        Flow.objects.filter(app=demo_app).update(is_active=False)
        selectors.app_changed(app_id="demo")
    # This process still holds what it read under the old version (as another process would): not served.
    selectors._app_parts["demo"] = (version, parts)
    selectors._apps.clear()
    with pytest.raises(services.NoActiveFlow):
        start()


def test_an_app_without_a_cache_that_answers_is_read_from_the_database(demo_app, start, monkeypatch):
    monkeypatch.setattr(selectors, "_app_version_now", lambda app_id: None)
    start()
    assert "demo" not in selectors._app_parts
    Flow.objects.filter(app=demo_app).update(is_active=False)
    with pytest.raises(services.NoActiveFlow):
        start()


def test_an_app_version_is_asked_of_the_cache_once_per_block(demo_app, monkeypatch):
    asked = []
    real = selectors._app_version_now
    monkeypatch.setattr(selectors, "_app_version_now", lambda app_id: asked.append(app_id) or real(app_id))
    with selectors.app_versions_read_once():
        selectors.app_by_public_id("demo")
        selectors.app_part(app_id="demo", part="x", load=lambda: 1)
        with selectors.app_versions_read_once():
            selectors.app_part(app_id="demo", part="y", load=lambda: 2)
        selectors.app_changed(app_id="demo")  # a write in the block: the next read asks again
        selectors.app_part(app_id="demo", part="x", load=lambda: 3)
    assert asked == ["demo", "demo"]
    assert App.objects.filter(app_id="demo").exists()
