"""The public JSON endpoints against their OpenAPI description (/api/schema/), fuzzed by schemathesis:
whatever the body, never a 5xx, every answer matches the schema (status, content type, body and
headers), and data the schema forbids is refused with a 4xx. Examples are bounded so CI stays quick."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.django_db

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, negative_data_rejection]


# The schema /api/schema/ serves (test_the_schema_is_served_at_api_schema shows it is the same), built when
# the module is collected; the generated requests go to the WSGI application in-process.
schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = get_wsgi_application()


@pytest.fixture(autouse=True)
def _requests_keep_the_test_transaction():  # noqa: ANN202
    # As Django's test client does: the test's transaction is the connection, so a request must not close it.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _the_demo_app_exists(request, settings):  # noqa: ANN001, ANN202
    # Fuzzed bodies naming app_id "demo" reach the session-opening path, not only the 404.
    request.getfixturevalue("demo_app")
    settings.ALLOWED_HOSTS = ["*"]


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_matches_the_schema_and_none_is_a_server_error(case):  # noqa: ANN001
    case.call_and_validate(checks=CHECKS)


def test_the_schema_is_served_at_api_schema_and_describes_precancel_the_pages_and_healthz(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json() == schema.raw_schema
    paths = response.json()["paths"]
    assert set(paths) == {"/precancel", "/healthz", "/api/v1/pages/{token}", "/api/v1/pages/{token}/decision"}
    assert set(paths["/api/v1/pages/{token}/decision"]["post"]["responses"]) >= {"200", "400", "404", "410", "429"}
    precancel = paths["/precancel"]["post"]
    assert {"200", "400", "403", "404", "429"} <= precancel["responses"].keys()
    assert "Retry-After" in precancel["responses"]["429"]["headers"]
