"""The `skip_renewal` offer a customer and staff see: its copy on the hosted page (4 languages) and in the
embeds' API, its term in the admin; and a reason's category in the admin."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from flows.models import App, CancelSession, Reason
from flows.tests.test_admin import form_data
from offers.models import Offer

pytestmark = pytest.mark.django_db

SENTENCE = {
    ("en", 1): "Keep your subscription and pay nothing for 1 renewal.",
    ("en", 3): "Keep your subscription and pay nothing for the next 3 renewals.",
    ("fr", 3): "Gardez votre abonnement sans rien payer pendant les 3 prochains renouvellements.",
    ("de", 1): "Behalten Sie Ihr Abonnement und zahlen Sie für 1 Verlängerung nichts.",
    ("es", 3): "Conserva tu suscripción sin pagar nada durante las próximas 3 renovaciones.",
}
LABEL = {"en": "Skip my next payment", "fr": "Sauter mon prochain paiement", "de": "Meine nächste Zahlung aussetzen",
         "es": "Saltar mi próximo pago"}


def skip_offer(app: App, renewals: int | None) -> Offer:
    return Offer.objects.create(flow=app.flows.get(), code="skip", title="On us", kind=Offer.Kind.SKIP_RENEWAL,
                                skip_renewals=renewals, position=9)


def open_session(client: Client, snippet_data, locale: str) -> CancelSession:  # noqa: ANN001
    data = snippet_data(context={"locale": locale})
    response = client.post("/precancel", data=json.dumps(data), content_type="application/json")
    assert response.status_code == 200, response.content
    return CancelSession.objects.get(token=response.json()["url"].rsplit("/", 1)[1])


@pytest.mark.parametrize(("language", "renewals"), sorted(SENTENCE))
def test_the_page_offers_the_skip_in_the_customers_language(client, demo_app, snippet_data, language,  # noqa: ANN001
                                                            renewals) -> None:
    skip_offer(demo_app, renewals if renewals != 1 else None)  # blank: one renewal
    session = open_session(client, snippet_data, language)

    response = client.post(f"/c/{session.token}", {"action": "continue", "reason": "too-expensive"})

    html = response.content.decode()
    assert SENTENCE[language, renewals] in html
    assert LABEL[language] in html
    assert 'data-bb-offer="skip"' in html


def test_the_embeds_api_describes_the_skip(client, demo_app, snippet_data) -> None:  # noqa: ANN001
    skip_offer(demo_app, 2)
    session = open_session(client, snippet_data, "fr-FR")

    answer = client.get(f"/api/v1/pages/{session.token}").json()

    offer = next(offer for offer in answer["offers"] if offer["code"] == "skip")
    assert offer["kind"] == "skip_renewal" and offer["terms"] == {"skip_renewals": 2}
    assert offer["accept_label"] == LABEL["fr"]
    assert offer["terms_summary"] == "Gardez votre abonnement sans rien payer pendant les 2 prochains renouvellements."


def test_the_admin_saves_a_skip_with_its_renewals_and_refuses_more_than_twelve(admin_client, demo_app) -> None:  # noqa: ANN001
    offer = Offer.objects.get(flow__app=demo_app, code="pause-2")
    url = reverse("admin:offers_offer_change", args=[offer.pk])
    data = form_data(admin_client.get(url))
    data.update(kind="skip_renewal", skip_renewals="13")

    refused = admin_client.post(url, data)
    assert refused.status_code == 200
    assert "skip_renewals" in refused.context["adminform"].form.errors

    data.update(skip_renewals="3")
    assert admin_client.post(url, data).status_code == 302
    offer.refresh_from_db()
    assert (offer.kind, offer.terms(), offer.pause_months) == ("skip_renewal", {"skip_renewals": 3}, None)


def test_the_flow_page_sets_a_reasons_category(admin_client, demo_app) -> None:  # noqa: ANN001
    flow = demo_app.flows.get()
    url = reverse("admin:flows_flow_change", args=[flow.pk])
    data = form_data(admin_client.get(url))
    index = next(i for i in range(int(data["reasons-TOTAL_FORMS"])) if data.get(f"reasons-{i}-code") == "other")
    assert data[f"reasons-{index}-category"] == "other"
    data[f"reasons-{index}-category"] = "low_quality"

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context and response.context["errors"]
    assert Reason.objects.get(flow=flow, code="other").category == "low_quality"
    data[f"reasons-{index}-category"] = "pricey"
    assert admin_client.post(url, data).status_code == 200  # not one of Stripe's values: refused
