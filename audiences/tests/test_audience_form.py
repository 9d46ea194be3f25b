"""The audience admin form: rules built from rows and groups, the JSON still accepted."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from audiences.forms import ROWS
from flows.models import App, Audience

pytestmark = pytest.mark.django_db


def form_data(app: App, **values: object) -> dict:
    data: dict = {"app": app.pk, "name": "Big teams", "position": 0, "is_active": "on", "rules": "",
                  "combine": "all", "group_1": "all", "group_2": "all", "group_3": "all"}
    for row in range(ROWS):
        data.update({f"row_{row}_group": 1, f"row_{row}_field": "", f"row_{row}_op": "", f"row_{row}_value": ""})
    data.update(values)
    return data


def add(admin_client: Client, data: dict):  # noqa: ANN201
    return admin_client.post(reverse("admin:flows_audience_add"), data)


def test_rows_in_two_groups_become_the_rule(admin_client: Client, demo_app: App) -> None:
    response = add(admin_client, form_data(
        demo_app, combine="any", group_2="any",
        row_0_field="account.plan", row_0_op="in", row_0_value="pro, team",
        row_1_field="custom.seats", row_1_op="gte", row_1_value="10",
        row_2_group=2, row_2_field="account.monthly_value", row_2_op="between", row_2_value="100, 500.5",
        row_3_group=2, row_3_field="context.locale", row_3_op="exists", row_3_value="false"))
    assert response.status_code == 302
    assert Audience.objects.get().rules == {"any": [
        {"all": [{"field": "account.plan", "op": "in", "value": ["pro", "team"]},
                 {"field": "custom.seats", "op": "gte", "value": 10}]},
        {"any": [{"field": "account.monthly_value", "op": "between", "value": [100, 500.5]},
                 {"field": "context.locale", "op": "exists", "value": False}]},
    ]}


def test_json_is_still_accepted_when_no_row_is_filled(admin_client: Client, demo_app: App) -> None:
    rule = '{"all": [{"field": "email", "op": "contains", "value": "@acme.com"}]}'
    assert add(admin_client, form_data(demo_app, rules=rule)).status_code == 302
    assert Audience.objects.get().rules == {"all": [{"field": "email", "op": "contains", "value": "@acme.com"}]}


def test_a_bad_row_is_named_and_nothing_is_saved(admin_client: Client, demo_app: App) -> None:
    response = add(admin_client, form_data(demo_app, row_0_field="account.plan", row_0_op="gt", row_0_value="pro"))
    assert response.status_code == 200
    assert "row 1.value: must be a number" in response.content.decode()
    response = add(admin_client, form_data(demo_app, row_0_field="plan", row_0_op="equals", row_0_value="pro"))
    assert "is not a snippet field" in response.content.decode()
    response = add(admin_client, form_data(demo_app, row_0_field="account.plan"))
    assert "A row needs a field and a comparison." in response.content.decode()
    assert not Audience.objects.exists()


def test_an_existing_rule_opens_in_the_rows(admin_client: Client, demo_app: App) -> None:
    audience = Audience.objects.create(app=demo_app, name="Pro", rules={
        "all": [{"field": "account.plan", "op": "in", "value": ["pro", "team"]}]})
    html = admin_client.get(reverse("admin:flows_audience_change", args=[audience.pk])).content.decode()
    assert 'name="row_0_field" value="account.plan"' in html
    assert 'name="row_0_value" value="pro, team"' in html


def test_saving_the_rows_as_shown_keeps_the_rule(admin_client: Client, demo_app: App) -> None:
    rule = {"any": [{"field": "account.plan", "op": "in", "value": ["pro", "team"]},
                    {"field": "custom.seats", "op": "gt", "value": 20}]}
    audience = Audience.objects.create(app=demo_app, name="Pro", rules=rule)
    response = admin_client.post(reverse("admin:flows_audience_change", args=[audience.pk]), form_data(
        demo_app, name="Pro", group_1="any", row_0_field="account.plan", row_0_op="in", row_0_value="pro, team",
        row_1_field="custom.seats", row_1_op="gt", row_1_value="20"))
    assert response.status_code == 302
    audience.refresh_from_db()
    assert audience.rules == rule


def test_changing_the_json_of_a_rule_the_rows_show_takes_the_json(admin_client: Client, demo_app: App) -> None:
    audience = Audience.objects.create(app=demo_app, name="Pro", rules={
        "all": [{"field": "account.plan", "op": "equals", "value": "pro"}]})
    rows = {"row_0_field": "account.plan", "row_0_op": "equals", "row_0_value": "pro"}
    url = reverse("admin:flows_audience_change", args=[audience.pk])
    changed = '{"all": [{"field": "account.plan", "op": "equals", "value": "team"}]}'
    assert admin_client.post(url, form_data(demo_app, name="Pro", rules=changed, **rows)).status_code == 302
    audience.refresh_from_db()
    assert audience.rules["all"][0]["value"] == "team"

    both = form_data(demo_app, name="Pro", rules='{"all": []}', row_0_field="account.plan", row_0_op="equals",
                     row_0_value="enterprise")
    response = admin_client.post(url, both)
    assert "The rows and the JSON say different things" in response.content.decode()
    audience.refresh_from_db()
    assert audience.rules["all"][0]["value"] == "team"
