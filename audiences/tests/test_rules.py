from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from audiences import facts
from audiences.rules import matches, rule_problems

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DATA = {
    "email": "Jane@Example.com",
    "account": {"plan": "Pro", "plan_term": "year", "value": 600.0, "created_at": "2025-06-01T12:00:00Z"},
    "custom": {"seats": 3, "team": {"region": "EU"}, "beta": True, "renews_on": "2026-07-01"},
    "context": {"locale": "fr-CA"},
}


def cond(field: str, op: str, value: object) -> dict:
    return {"field": field, "op": op, "value": value}


@pytest.mark.parametrize(("rule", "expected"), [
    (cond("account.plan", "equals", "pro"), True),              # strings compare without case
    (cond("account.plan", "not_equals", "pro"), False),
    (cond("account.plan", "in", ["team", "pro"]), True),
    (cond("account.plan", "not_in", ["team", "pro"]), False),
    (cond("email", "contains", "@example.com"), True),
    (cond("custom.seats", "gte", 3), True),
    (cond("custom.seats", "gt", 3), False),
    (cond("custom.seats", "between", [1, 3]), True),
    (cond("custom.seats", "equals", 3.0), True),
    (cond("custom.team.region", "equals", "eu"), True),
    (cond("custom.beta", "equals", True), True),
    (cond("custom.beta", "equals", "true"), False),             # a boolean is not the string "true"
    (cond("custom.renews_on", "before", "2026-07-02"), True),
    (cond("custom.renews_on", "date_between", ["2026-06-01", "2026-06-30"]), False),
    (cond("account.created_at", "after", "2025-01-01"), True),
    (cond("account.tenure_days", "equals", 365), True),
    (cond("account.monthly_value", "equals", 50), True),        # 600 a year is 50 a month
    (cond("context.locale", "in", ["fr-CA", "fr"]), True),
    (cond("custom.missing", "not_equals", "x"), False),         # a missing field matches nothing...
    (cond("custom.missing", "exists", False), True),            # ...but "does not exist"
    (cond("custom.seats", "exists", True), True),
    (cond("account.plan", "gt", 3), False),                     # a word is not a number
])
def test_each_comparison_matches_as_documented(rule: dict, expected: bool) -> None:
    assert rule_problems(rule) == []
    assert matches(rule, DATA, now=NOW) is expected


def test_groups_combine_conditions_with_and_and_or() -> None:
    pro_in_europe = {"all": [cond("account.plan", "equals", "pro"),
                             {"any": [cond("custom.team.region", "equals", "US"),
                                      cond("custom.team.region", "equals", "EU")]}]}
    assert matches(pro_in_europe, DATA, now=NOW)
    assert not matches({"all": [pro_in_europe, cond("custom.seats", "gt", 10)]}, DATA, now=NOW)
    assert matches({"all": []}, DATA, now=NOW)
    assert not matches({"any": []}, DATA, now=NOW)


def test_invalid_rules_are_refused_with_the_path_at_fault() -> None:
    rule = {"all": [
        cond("account.plan", "equals", "pro"),
        {"field": "account.plan", "op": "like", "value": "p%"},
        {"any": [cond("seats", "gt", 3), cond("custom.seats", "between", [5, 1])]},
        {"field": "custom.seats", "op": "gt", "value": "three", "extra": 1},
        cond("custom.renews_on", "before", "next week"),
        {"all": [], "any": []},
        "account.plan == 'pro'",
    ]}
    assert rule_problems(rule, "audiences[2].rules") == [
        "audiences[2].rules.all[1].op: must be one of equals, not_equals, contains, in, not_in, gt, gte, lt, lte, "
        "between, before, after, date_between, exists",
        "audiences[2].rules.all[2].any[0].field: 'seats' is not a snippet field (use email, subscription_id, "
        "first_name, last_name, full_name, account.<key>, custom.<key>, context.<key>, account.tenure_days or "
        "account.monthly_value)",
        "audiences[2].rules.all[2].any[1].value: the lowest must not be above the highest",
        "audiences[2].rules.all[3].extra: unknown field (a condition has field, op and value)",
        "audiences[2].rules.all[3].value: must be a number",
        "audiences[2].rules.all[4].value: must be an ISO 8601 date such as 2026-01-31",
        "audiences[2].rules.all[5]: a group has exactly one key, \"all\" or \"any\"",
        "audiences[2].rules.all[6]: must be an object (a condition, or {\"all\": [...]} / {\"any\": [...]})",
    ]


def test_a_condition_missing_its_parts_names_each() -> None:
    assert rule_problems({"op": "in"}) == ["rules.field: required", "rules.value: required"]


def test_rules_nested_too_deep_are_refused() -> None:
    rule: dict = cond("account.plan", "equals", "pro")
    for _ in range(8):
        rule = {"all": [rule]}
    assert rule_problems(rule) == ["rules.all[0].all[0].all[0].all[0].all[0].all[0].all: groups nest at most 6 deep"]


@pytest.mark.parametrize(("account", "expected"), [
    ({"value": 49, "plan_term": "month"}, Decimal("49.00")),
    ({"value": 49}, Decimal("49.00")),
    ({"value": 588, "plan_term": "annual"}, Decimal("49.00")),
    ({"value": 30, "plan_term": "quarterly"}, Decimal("10.00")),
    ({"value": 12, "plan_term": "week"}, Decimal("52.00")),
    ({"value": 49, "plan_term": "biennial"}, None),
    ({"plan_term": "month"}, None),
    ({"value": True}, None),
])
def test_monthly_value_normalises_the_plan_term(account: dict, expected: Decimal | None) -> None:
    assert facts.monthly_value(account) == expected


def test_a_customer_is_in_trial_until_the_trial_ends() -> None:
    assert facts.in_trial({"trial_ends_at": "2026-06-02"}, now=NOW)
    assert not facts.in_trial({"trial_ends_at": "2026-05-31"}, now=NOW)
    assert facts.in_trial({"status": "trialing"}, now=NOW)
    assert not facts.in_trial({"status": "active"}, now=NOW)
