"""A customer gets the flow written in their language, else the language-neutral one."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

from flows.models import CancelSession, Flow, Reason
from flows.routing import language_candidates

pytestmark = pytest.mark.django_db


@pytest.fixture
def french_flow(demo_app) -> Flow:  # noqa: ANN001
    flow = Flow.objects.create(app=demo_app, name="Français", languages="fr", priority=50,
                               title="Avant de partir…")
    Reason.objects.create(flow=flow, code="trop-cher", label="C’est trop cher")
    return flow


def open_session(client, snippet_data, locale: str | None) -> CancelSession:  # noqa: ANN001
    data = snippet_data()
    if locale is not None:
        data["context"] = {"locale": locale}
    response = client.post("/precancel", data=json.dumps(data), content_type="application/json")
    assert response.status_code == 200
    return CancelSession.objects.order_by("-pk").first()


@pytest.mark.parametrize("locale", ["fr", "fr-FR", "fr_CA", "FR-be"])
def test_a_french_customer_gets_the_french_flow_with_its_own_copy(client, snippet_data, french_flow, locale):
    session = open_session(client, snippet_data, locale)
    assert session.flow == french_flow
    html = client.get(f"/c/{session.token}").content.decode()
    assert "Avant de partir…" in html and "C’est trop cher" in html
    assert 'lang="fr"' in html


@pytest.mark.parametrize("locale", ["de-DE", "en", "", None])
def test_other_customers_get_the_language_neutral_flow(client, snippet_data, french_flow, locale):
    session = open_session(client, snippet_data, locale)
    assert session.flow.name == "Default"


def test_an_exact_regional_flow_beats_the_general_one(client, snippet_data, french_flow):
    quebec = Flow.objects.create(app=french_flow.app, name="Québec", languages="fr-ca", priority=60)
    assert open_session(client, snippet_data, "fr-CA").flow == quebec
    assert open_session(client, snippet_data, "fr-FR").flow == french_flow


def test_with_only_language_flows_an_unmatched_customer_gets_the_first(client, snippet_data, french_flow):
    Flow.objects.filter(name="Default").update(languages="en")
    assert open_session(client, snippet_data, "ja").flow == french_flow  # priority 50 comes first


def test_language_tags_are_validated(demo_app):
    flow = Flow(app=demo_app, name="Bad", languages="french, de")
    with pytest.raises(ValidationError, match="Not a language tag: french"):
        flow.full_clean()


def test_language_candidates_go_from_the_regional_tag_to_its_language():
    assert language_candidates("pt_BR") == ["pt-br", "pt"]
    assert language_candidates("de") == ["de"]
    assert language_candidates("  ") == []
