"""Fixtures for the alerts channel: a real SMTP server and a Slack-like receiver on 127.0.0.1, rules,
and decisions recorded through the flow's own services."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from alerts import services
from alerts.models import AlertDelivery, AlertRule
from alerts.testing import SlackReceiver
from flows import services as flow_services
from flows.models import App, Decision
from flows.snippet_data import clean_snippet_data


@pytest.fixture(autouse=True)
def alert_settings(settings) -> None:  # noqa: ANN001
    # Receivers run on 127.0.0.1; production refuses loopback unless this setting lists it.
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.ALERT_RETRY_SCALE = 1.0
    settings.SITE_URL = "https://cancel.example.com"
    settings.DEFAULT_FROM_EMAIL = "Cancel flow <alerts@cancel.example.com>"


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    with SlackReceiver() as receiver:
        yield receiver


@pytest.fixture
def live_app(demo_app) -> App:  # noqa: ANN001
    demo_app.mode = App.Mode.LIVE
    demo_app.save(update_fields=["mode"])
    return demo_app


@pytest.fixture
def make_rule(demo_app):  # noqa: ANN001, ANN201
    def make(events: list[str] | None = None, recipients: list[str] | None = None, **fields) -> AlertRule:  # noqa: ANN003
        if recipients is None:
            recipients = [] if fields.get("slack_webhook_url") else ["help@desk.example.com"]
        return services.rule_create(app=demo_app, events=events or ["session.canceled"], recipients=recipients,
                                    **fields)

    return make


@pytest.fixture
def decide(demo_app, snippet_data):  # noqa: ANN001, ANN201
    """Record a customer's decision through the flow's own services, as the hosted page does."""

    def record(kind: str = "cancel", *, reason_code: str = "too-expensive", offer_code: str = "",
               feedback: str = "Too pricey for us", **data) -> Decision:  # noqa: ANN003
        app = App.objects.get(pk=demo_app.pk)
        session = flow_services.session_start(app=app, data=clean_snippet_data(snippet_data(**data)))
        return flow_services.decision_record(session=session, kind=kind, reason_code=reason_code,
                                             feedback=feedback, offer_code=offer_code)

    return record


@pytest.fixture
def alert_for(decide):  # noqa: ANN001, ANN201
    """Record a decision and return its one AlertDelivery of `kind`."""

    def make(kind: str = AlertDelivery.Kind.TEAM_EMAIL, decision: str = "cancel", **kwargs) -> AlertDelivery:  # noqa: ANN003
        recorded = decide(decision, **kwargs)
        return AlertDelivery.objects.get(event__session=recorded.session, kind=kind)

    return make
