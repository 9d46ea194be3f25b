"""Where a cancel's reason is configured and kept: Chargebee's reason codes in the flow document and the
admin, and the customer's words on the action row, erased with the customer."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from billing import services
from billing.models import BillingAction, BillingConnection
from flows import services as flow_services
from flows.flow_document import DocumentInvalid, document_export, document_import
from flows.snippet_data import clean_snippet_data
from privacy.parts import ERASED
from privacy.services import customer_erase

pytestmark = pytest.mark.django_db


def chargebee(demo_app, **choices) -> BillingConnection:  # noqa: ANN001, ANN003
    return services.connection_save(app=demo_app, provider="chargebee", site="acme", test_site="acme-test",
                                    dry_run=True, **choices)


def test_a_documents_reason_codes_reach_the_connection_and_come_back_out(demo_app) -> None:  # noqa: ANN001
    chargebee(demo_app)
    document = document_export(app=demo_app)
    document["billing"]["cancel_reason_codes"] = {"too_expensive": "Too Expensive", "unused": "Not Using"}

    document_import(document=document)

    assert BillingConnection.objects.get(app=demo_app).cancel_reason_codes == {
        "too_expensive": "Too Expensive", "unused": "Not Using"}
    assert document_export(app=demo_app)["billing"]["cancel_reason_codes"] == {
        "too_expensive": "Too Expensive", "unused": "Not Using"}


@pytest.mark.parametrize(("provider", "codes", "message"), [
    ("chargebee", {"pricey": "Too Expensive"}, "billing.cancel_reason_codes: 'pricey' is not a reason category"),
    ("chargebee", {"unused": ""}, "billing.cancel_reason_codes: the code for unused must be a non-empty string"),
    ("chargebee", {"unused": "x" * 101}, "at most 100 characters"),
    ("chargebee", ["Too Expensive"], "billing.cancel_reason_codes: must be an object"),
    ("stripe", {"unused": "Not Using"}, "billing.cancel_reason_codes: only Chargebee takes the site's reason codes"),
])
def test_bad_reason_codes_are_refused_and_change_nothing(demo_app, provider, codes, message) -> None:  # noqa: ANN001
    chargebee(demo_app, cancel_reason_codes={"other": "Other"})
    document = document_export(app=demo_app)
    document["billing"].update(provider=provider, cancel_reason_codes=codes, dry_run=True)

    with pytest.raises(DocumentInvalid) as refused:
        document_import(document=document)

    assert message in str(refused.value)
    assert BillingConnection.objects.get(app=demo_app).cancel_reason_codes == {"other": "Other"}


def test_the_model_refuses_a_code_map_the_admin_could_send(demo_app) -> None:  # noqa: ANN001
    with pytest.raises(ValidationError) as refused:
        chargebee(demo_app, cancel_reason_codes={"too_expensive": 7})
    assert "cancel_reason_codes" in refused.value.message_dict


def test_the_admin_sets_the_reason_codes(admin_client, demo_app) -> None:  # noqa: ANN001
    from flows.tests.test_admin import form_data

    connection = chargebee(demo_app)
    url = reverse("admin:billing_billingconnection_change", args=[connection.pk])
    data = form_data(admin_client.get(url))
    data["cancel_reason_codes"] = '{"switched_service": "Switched"}'

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    connection.refresh_from_db()
    assert connection.cancel_reason_codes == {"switched_service": "Switched"}
    data["cancel_reason_codes"] = ""  # left blank: no codes, not an error
    assert admin_client.post(url, data).status_code == 302
    connection.refresh_from_db()
    assert connection.cancel_reason_codes == {}


def test_the_customers_words_sent_with_a_cancel_are_erased_with_the_customer(demo_app, snippet_data) -> None:  # noqa: ANN001
    services.connection_save(app=demo_app, provider="stripe", dry_run=True)
    session = flow_services.session_start(app=demo_app, data=clean_snippet_data(snippet_data()))
    flow_services.decision_record(session=session, kind="cancel", reason_code="too-expensive",
                                  feedback="My manager Ann Other said no")
    action = BillingAction.objects.get(session=session)
    assert action.request["reason"]["comment"] == "My manager Ann Other said no"
    services.action_execute(action_id=action.pk)  # a dry run: finished, so it can be erased

    customer_erase(app=demo_app, email="jane@example.com")

    action.refresh_from_db()
    assert action.request["reason"] == {"category": "too_expensive", "comment": ERASED}
    assert "Ann Other" not in str(action.request) + action.summary + str(action.log)


def test_the_customers_words_are_not_copied_for_a_billing_system_that_does_not_keep_them(demo_app,  # noqa: ANN001
                                                                                         snippet_data) -> None:
    chargebee(demo_app, cancel_reason_codes={"too_expensive": "Too Expensive"})
    session = flow_services.session_start(app=demo_app, data=clean_snippet_data(snippet_data()))
    flow_services.decision_record(session=session, kind="cancel", reason_code="too-expensive", feedback="Too dear")
    assert BillingAction.objects.get(session=session).request["reason"] == {
        "category": "too_expensive", "comment": "", "code": "Too Expensive"}
