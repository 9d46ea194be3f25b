"""Fixtures for the receipts channel: a real SMTP server (aiosmtpd) on 127.0.0.1, and decisions recorded
through the flow's own services, as the hosted page records them."""

from __future__ import annotations

import pytest

from flows import services as flow_services
from flows.models import App, CancelSession, Decision
from flows.snippet_data import clean_snippet_data
from receipts.models import Receipt


@pytest.fixture(autouse=True)
def receipt_settings(settings) -> None:  # noqa: ANN001
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.RECEIPT_RETRY_SCALE = 1.0
    settings.SITE_URL = "https://cancel.example.com"
    settings.DEFAULT_FROM_EMAIL = "Acme <billing@acme.example.com>"


@pytest.fixture
def start(demo_app, snippet_data):  # noqa: ANN001, ANN201
    """Open a session as /precancel does, with the compliance rules the region gave it."""

    def make(compliance: dict | None = None, without: tuple[str, ...] = (), **data) -> CancelSession:  # noqa: ANN003
        app = App.objects.get(pk=demo_app.pk)
        given = {key: value for key, value in snippet_data(**data).items() if key not in without}
        session = flow_services.session_start(app=app, data=clean_snippet_data(given))
        if compliance is not None:
            CancelSession.objects.filter(pk=session.pk).update(compliance=compliance)
            session.compliance = compliance
        return session

    return make


@pytest.fixture
def decide(start):  # noqa: ANN001, ANN201
    def record(kind: str = "cancel", *, offer_code: str = "", compliance: dict | None = None,  # noqa: ANN003
               reason_code: str = "too-expensive", without: tuple[str, ...] = (), **data) -> Decision:
        session = start(compliance, without, **data)
        return flow_services.decision_record(session=session, kind=kind, reason_code=reason_code,
                                             feedback="", offer_code=offer_code)

    return record


@pytest.fixture
def receipt_for(decide):  # noqa: ANN001, ANN201
    def make(kind: str = "cancel", **kwargs) -> Receipt:  # noqa: ANN003
        decision = decide(kind, **kwargs)
        return Receipt.objects.get(session=decision.session)

    return make
