"""Fixtures for the webhooks channel: a real receiver on 127.0.0.1, endpoints, recorded decisions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flows import services as flow_services
from flows.models import App, Decision
from flows.snippet_data import clean_snippet_data
from webhooks import endpoints
from webhooks.models import Delivery, Endpoint
from webhooks.testing import Receiver


@pytest.fixture(autouse=True)
def loopback_allowed(settings) -> None:  # noqa: ANN001
    # Receivers run on 127.0.0.1; production refuses loopback unless this setting lists it.
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.WEBHOOK_RETRY_SCALE = 1.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def make_endpoint(demo_app):  # noqa: ANN001, ANN201
    def make(url: str, *, app: App | None = None, receiver: Receiver | None = None, **fields) -> Endpoint:  # noqa: ANN003
        endpoint = endpoints.endpoint_create(app=app or demo_app, url=url, **fields)
        if receiver is not None:
            receiver.secrets.append(endpoint.secret)
        return endpoint

    return make


@pytest.fixture
def decide(demo_app, snippet_data):  # noqa: ANN001, ANN201
    """Record a customer's decision through the flow's own services, as the hosted page does."""

    def record(kind: str = "cancel", *, reason_code: str = "too-expensive", offer_code: str = "",
               feedback: str = "Too pricey for us", **data) -> Decision:  # noqa: ANN003
        session = flow_services.session_start(app=demo_app, data=clean_snippet_data(snippet_data(**data)))
        return flow_services.decision_record(session=session, kind=kind, reason_code=reason_code,
                                             feedback=feedback, offer_code=offer_code)

    return record


@pytest.fixture
def delivery_for(decide):  # noqa: ANN001, ANN201
    """Record a decision and return the Delivery it produced for `endpoint`."""

    def make(endpoint: Endpoint, kind: str = "cancel", **kwargs) -> Delivery:  # noqa: ANN003
        decision = decide(kind, **kwargs)
        return Delivery.objects.get(endpoint=endpoint, event__session=decision.session)

    return make
