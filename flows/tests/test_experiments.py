"""Audiences pick the flow; an experiment splits a flow's customers and keeps them where they landed."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from flows.experiments import bucket, pick
from flows.models import Audience, CancelSession, Flow, Variant, VariantAssignment

pytestmark = pytest.mark.django_db


def start(client, snippet_data, **overrides) -> CancelSession:  # noqa: ANN001, ANN003
    response = client.post("/precancel", data=json.dumps(snippet_data(**overrides)), content_type="application/json")
    assert response.status_code == 200, response.content
    return CancelSession.objects.order_by("-pk").first()


@pytest.fixture
def enterprise_flow(demo_app) -> Flow:  # noqa: ANN001
    return Flow.objects.create(app=demo_app, name="Enterprise", priority=500, title="Let’s talk first")


@pytest.fixture
def experiment(demo_app) -> dict[str, Variant]:  # noqa: ANN001
    flow = demo_app.flows.get(name="Default")
    return {
        "control": Variant.objects.create(flow=flow, code="control", weight=10, is_control=True),
        "discount": Variant.objects.create(flow=flow, code="discount-only", weight=45, offer_codes="discount-30",
                                           title="Stay for less"),
        "all": Variant.objects.create(flow=flow, code="everything", weight=45),
    }


def test_the_first_matching_audience_picks_the_flow(client, demo_app, snippet_data, enterprise_flow):
    Audience.objects.create(app=demo_app, name="Small", position=0, rules={
        "field": "account.monthly_value", "op": "lt", "value": 20})
    big = Audience.objects.create(app=demo_app, name="Big", position=1, flow=enterprise_flow, rules={
        "all": [{"field": "account.plan", "op": "in", "value": ["pro", "enterprise"]},
                {"field": "account.monthly_value", "op": "gte", "value": 100}]})
    yearly = {"internal_id": "acct_7", "plan": "pro", "plan_term": "year", "value": 1200}
    session = start(client, snippet_data, account=yearly)
    assert (session.flow, session.audience) == (enterprise_flow, big)
    assert "Let’s talk first" in client.get(f"/c/{session.token}").content.decode()

    # The first audience matches but names no flow: it labels the session, routing does the rest.
    cheap = start(client, snippet_data, account={"internal_id": "acct_8", "plan": "pro", "value": 9})
    assert cheap.audience.name == "Small" and cheap.flow.name == "Default"
    nobody = start(client, snippet_data, account={"internal_id": "acct_9", "plan": "basic", "value": 49})
    assert nobody.audience is None and nobody.flow.name == "Default"


def test_an_audience_with_an_invalid_rule_is_refused_with_the_path(demo_app):
    audience = Audience(app=demo_app, name="Broken", rules={"any": [{"field": "account.plan", "op": "=~",
                                                                       "value": "pro"}]})
    with pytest.raises(ValidationError) as caught:
        audience.full_clean()
    assert caught.value.message_dict["rules"] == [
        "rules.any[0].op: must be one of equals, not_equals, contains, in, not_in, gt, gte, lt, lte, between, "
        "before, after, date_between, exists"]


def test_the_split_follows_the_weights(experiment):
    variants = list(experiment.values())
    flow_id = variants[0].flow_id
    counts = Counter(pick(variants, bucket(flow_id=flow_id, key=f"id:acct_{n}")).code for n in range(20000))
    assert abs(counts["control"] / 20000 - 0.10) < 0.01
    assert abs(counts["discount-only"] / 20000 - 0.45) < 0.015


def test_a_customer_keeps_their_variant_across_visits_and_weight_changes(client, snippet_data, experiment):
    first = start(client, snippet_data)
    assert first.variant is not None
    assert VariantAssignment.objects.get().variant == first.variant
    # Give the customer's variant no new traffic at all: those already in it stay.
    Variant.objects.filter(pk=first.variant.pk).update(weight=0)
    Variant.objects.exclude(pk=first.variant.pk).update(weight=50)
    again = start(client, snippet_data)
    assert again.variant == first.variant
    assert VariantAssignment.objects.count() == 1


def test_a_retired_variant_moves_its_customers_once(client, snippet_data, experiment):
    first = start(client, snippet_data)
    retired = Variant.objects.get(pk=first.variant.pk)
    retired.is_active = False
    retired.save()  # as staff do, in the admin: every process's routing copy is retired with it
    moved = start(client, snippet_data)
    assert moved.variant != first.variant and moved.variant.is_active
    assert start(client, snippet_data).variant == moved.variant


def test_the_control_sees_no_offers_and_cannot_accept_one(client, snippet_data, experiment):
    for variant in ("discount", "all"):
        Variant.objects.filter(pk=experiment[variant].pk).update(weight=0)
    session = start(client, snippet_data)
    assert session.variant == experiment["control"] and session.offer_codes == []
    page = client.post(f"/c/{session.token}", {"reason": "too-expensive", "action": "continue"})
    assert "data-bb-offer=" not in page.content.decode()
    refused = client.post(f"/c/{session.token}", {"reason": "too-expensive", "accept": "discount-30"})
    assert refused.status_code == 400
    session.refresh_from_db()
    assert session.offers_shown_at is None


def test_a_variant_shows_its_own_offers_and_copy(client, snippet_data, experiment):
    for variant in ("control", "all"):
        Variant.objects.filter(pk=experiment[variant].pk).update(weight=0)
    session = start(client, snippet_data)
    assert session.offer_codes == ["discount-30"]
    html = client.post(f"/c/{session.token}", {"reason": "too-expensive", "action": "continue"}).content.decode()
    assert 'data-bb-offer="discount-30"' in html and 'data-bb-offer="pause-2"' not in html
    assert "Stay for less" in html
    session.refresh_from_db()
    assert session.offers_shown_at is not None


def test_the_page_reads_the_assignment_from_the_session_without_extra_queries(client, snippet_data, experiment):
    plain = start(client, snippet_data, account={"internal_id": "acct_plain", "value": 10})
    for variant in Variant.objects.all():  # staff retire the experiment, in the admin
        variant.is_active = False
        variant.save()
    unassigned = start(client, snippet_data, account={"internal_id": "acct_none", "value": 10})
    assert plain.variant is not None and unassigned.variant is None

    def queries(session: CancelSession) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/c/{session.token}").status_code == 200
        return len(captured)

    # The first view of each copy reads the flow's reasons and renders it into this process's memory (and
    # records that the page was opened, once), and the first view from that memory notes the controls it
    # showed, so that later reads write the view's step themselves (flows/page_cache.py);
    # the two differ when acct_plain's variant has its own title, which depends on the flow's id.
    queries(plain), queries(unassigned), queries(plain), queries(unassigned)
    # On PostgreSQL the read writes the view's step too; elsewhere the step is an INSERT of its own.
    assert queries(plain) == queries(unassigned) == (1 if connection.vendor == "postgresql" else 2)


def test_a_second_active_control_is_refused(experiment):
    flow = experiment["control"].flow
    with pytest.raises(ValidationError):
        Variant(flow=flow, code="control-2", is_control=True).full_clean()
    with pytest.raises(ValidationError) as caught:
        Variant(flow=flow, code="odd", offer_codes="discount-30, nope").full_clean()
    assert "No offer with code nope in this flow." in caught.value.message_dict["offer_codes"]


def test_the_split_is_deterministic_per_account_even_without_its_record(client, snippet_data, experiment):
    first = start(client, snippet_data)
    VariantAssignment.objects.all().delete()
    assert start(client, snippet_data).variant == first.variant
    # Different flows split independently: the place is hashed with the flow.
    assert bucket(flow_id=1, key="id:acct_42") != bucket(flow_id=2, key="id:acct_42")


def test_precancel_only_writes_the_session_once_the_apps_content_is_in_memory(client, demo_app, snippet_data):
    def post() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            response = client.post("/precancel", data=json.dumps(snippet_data()), content_type="application/json")
        assert response.status_code == 200
        return [query["sql"] for query in captured]

    # The first reads the App, its flows, audiences, variants and offers (with their audiences), its
    # compliance rules and its billing connection (what Cancel will do) once...
    first = post()
    assert len(first) <= 9, [sql[:80] for sql in first]
    # ...and the next ones find them in this process's memory: the session's insert is all they cost.
    assert [sql.split()[0] for sql in post()] == ["INSERT"]


def test_customers_known_only_by_subscription_id_spread_over_the_arms_by_weight(client, snippet_data, experiment):
    from scipy.stats import chisquare

    sessions = [start(client, snippet_data, email="", account={}, subscription_id=f"sub_{n}") for n in range(200)]
    counts = Counter(session.variant.code for session in sessions)
    assert len(counts) == 3  # not all in one arm
    weights = {"control": 10, "discount-only": 45, "everything": 45}
    expected = [200 * weights[code] / 100 for code in weights]
    assert chisquare([counts[code] for code in weights], expected).pvalue > 0.001
    assert {s.account_key for s in sessions} == {f"sub:sub_{n}" for n in range(200)}
    # The key is the same one for every later visit: the customer keeps their arm.
    again = start(client, snippet_data, email="", account={}, subscription_id="sub_7")
    assert again.variant == sessions[7].variant


def test_the_experiment_key_is_internal_id_else_email_else_subscription_id():
    from flows.experiments import account_key

    assert account_key(internal_id="a1", email="x@example.com", subscription_id="s") == "id:a1"
    assert account_key(internal_id="", email=" X@Example.com ", subscription_id="s") == "email:x@example.com"
    assert account_key(internal_id="", email="", subscription_id="sub_9") == "sub:sub_9"
