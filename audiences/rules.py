"""Audience rules: validated JSON evaluated by one small function, never `eval`.

A rule is a condition or a group of rules:

    {"field": "account.plan", "op": "in", "value": ["pro", "team"]}
    {"all": [rule, ...]}     every rule matches (AND); an empty list matches everyone
    {"any": [rule, ...]}     at least one rule matches (OR); an empty list matches no one

Fields name the snippet's data: `email`, `account.<key>`, `custom.<key>[.<key>...]`, `context.<key>`,
and two derived ones: `account.tenure_days` (whole days since account.created_at) and
`account.monthly_value` (account.value normalised by account.plan_term). A field the data does not
carry matches only `{"op": "exists", "value": false}`.

`rule_problems` names every fault by its path (`rules.all[1].op: must be one of ...`); `matches` assumes
a rule that passed it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from . import facts

MAX_DEPTH = 6
MAX_CONDITIONS = 200

TOP_LEVEL_FIELDS = ("email", "subscription_id", "first_name", "last_name", "full_name")
ROOTS = ("account.", "custom.", "context.")
DERIVED = ("account.tenure_days", "account.monthly_value")

SCALAR_OPS = ("equals", "not_equals", "contains")
LIST_OPS = ("in", "not_in")
NUMBER_OPS = ("gt", "gte", "lt", "lte")
DATE_OPS = ("before", "after")
OPS = (*SCALAR_OPS, *LIST_OPS, *NUMBER_OPS, "between", *DATE_OPS, "date_between", "exists")

_MISSING = object()


# --- validation -----------------------------------------------------------------------------------

def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bool | int | float)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _field_problem(field: Any) -> str | None:
    if not isinstance(field, str) or not field:
        return "must be a string naming a snippet field"
    if field in TOP_LEVEL_FIELDS or field in DERIVED:
        return None
    root = next((r for r in ROOTS if field.startswith(r)), None)
    if root is None or any(not part for part in field[len(root):].split(".")):
        return (f"{field!r} is not a snippet field (use {', '.join(TOP_LEVEL_FIELDS)}, account.<key>, "
                "custom.<key>, context.<key>, account.tenure_days or account.monthly_value)")
    return None


def _value_problem(op: str, value: Any) -> str | None:
    if op in SCALAR_OPS:
        if op == "contains":
            return None if isinstance(value, str) and value else "must be a non-empty string"
        return None if _is_scalar(value) else "must be a string, number, true/false or null"
    if op in LIST_OPS:
        if not isinstance(value, list) or not value or not all(_is_scalar(v) for v in value):
            return "must be a non-empty list of strings or numbers"
        return None
    if op in NUMBER_OPS:
        return None if _is_number(value) else "must be a number"
    if op == "between":
        ok = isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value)
        if not ok:
            return "must be [lowest, highest], two numbers"
        return None if value[0] <= value[1] else "the lowest must not be above the highest"
    if op in DATE_OPS:
        return None if facts.parse_moment(value) else "must be an ISO 8601 date such as 2026-01-31"
    if op == "date_between":
        ok = isinstance(value, list) and len(value) == 2 and all(facts.parse_moment(v) for v in value)
        if not ok:
            return "must be [first, last], two ISO 8601 dates"
        first, last = facts.parse_moment(value[0]), facts.parse_moment(value[1])
        return None if first is not None and last is not None and first <= last else \
            "the first date must not be after the last"
    return None if isinstance(value, bool) else "must be true or false"  # exists


def rule_problems(rule: Any, path: str = "rules") -> list[str]:
    """Every problem with the rule, each starting with its path; empty when it can be evaluated."""
    problems: list[str] = []
    _check(rule, path, problems, depth=0, counter=[0])
    return problems


def _check(rule: Any, path: str, problems: list[str], *, depth: int, counter: list[int]) -> None:
    if not isinstance(rule, dict):
        problems.append(f"{path}: must be an object (a condition, or {{\"all\": [...]}} / {{\"any\": [...]}})")
        return
    groups = [key for key in ("all", "any") if key in rule]
    if groups:
        if len(rule) != 1:
            problems.append(f"{path}: a group has exactly one key, \"all\" or \"any\"")
            return
        key = groups[0]
        if depth >= MAX_DEPTH:
            problems.append(f"{path}.{key}: groups nest at most {MAX_DEPTH} deep")
            return
        items = rule[key]
        if not isinstance(items, list):
            problems.append(f"{path}.{key}: must be a list of rules")
            return
        for index, item in enumerate(items):
            _check(item, f"{path}.{key}[{index}]", problems, depth=depth + 1, counter=counter)
        return
    counter[0] += 1
    if counter[0] == MAX_CONDITIONS + 1:
        problems.append(f"{path}: at most {MAX_CONDITIONS} conditions in one rule")
    for key in rule:
        if key not in ("field", "op", "value"):
            problems.append(f"{path}.{key}: unknown field (a condition has field, op and value)")
    for key in ("field", "op", "value"):
        if key not in rule:
            problems.append(f"{path}.{key}: required")
    if "field" in rule and (problem := _field_problem(rule["field"])):
        problems.append(f"{path}.field: {problem}")
    op = rule.get("op")
    if "op" in rule and op not in OPS:
        problems.append(f"{path}.op: must be one of {', '.join(OPS)}")
    elif "value" in rule and isinstance(op, str) and (problem := _value_problem(op, rule["value"])):
        problems.append(f"{path}.value: {problem}")


# --- evaluation -----------------------------------------------------------------------------------

def _account(data: dict) -> dict:
    account = data.get("account")
    return account if isinstance(account, dict) else {}


def field_value(data: dict, field: str, *, now: datetime) -> Any:
    """The value a field names in snippet data, or _MISSING."""
    account = _account(data)
    if field == "account.tenure_days":
        days = facts.tenure_days(account, now=now)
        return _MISSING if days is None else days
    if field == "account.monthly_value":
        value = facts.monthly_value(account)
        return _MISSING if value is None else value
    current: Any = data
    for part in field.split("."):
        if not isinstance(current, dict) or part not in current:
            return _MISSING
        current = current[part]
    return _MISSING if current is None else current


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except ArithmeticError:
            return None
        return number if number.is_finite() else None
    return None


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected
    left, right = _number(actual), _number(expected)
    if left is not None and right is not None and not (isinstance(actual, str) and isinstance(expected, str)):
        return left == right
    return str(actual).strip().lower() == str(expected).strip().lower()


def _compare(actual: Any, op: str, expected: Any) -> bool:
    number = _number(actual)
    if number is None:
        return False
    if op == "between":
        return Decimal(str(expected[0])) <= number <= Decimal(str(expected[1]))
    limit = Decimal(str(expected))
    return {"gt": number > limit, "gte": number >= limit, "lt": number < limit, "lte": number <= limit}[op]


def _dates(actual: Any, op: str, expected: Any) -> bool:
    moment = facts.parse_moment(actual)
    if moment is None:
        return False
    if op == "date_between":
        first, last = facts.parse_moment(expected[0]), facts.parse_moment(expected[1])
        return first is not None and last is not None and first <= moment <= last
    limit = facts.parse_moment(expected)
    return limit is not None and (moment < limit if op == "before" else moment > limit)


OPERATIONS: dict[str, Callable[[Any, str, Any], bool]] = {
    "equals": lambda a, op, e: _same(a, e),
    "not_equals": lambda a, op, e: not _same(a, e),
    "contains": lambda a, op, e: isinstance(a, str) and e.lower() in a.lower(),
    "in": lambda a, op, e: any(_same(a, item) for item in e),
    "not_in": lambda a, op, e: not any(_same(a, item) for item in e),
    **{name: _compare for name in (*NUMBER_OPS, "between")},
    **{name: _dates for name in (*DATE_OPS, "date_between")},
}


def matches(rule: dict, data: dict, *, now: datetime) -> bool:
    """Does the snippet data fall in the rule? The rule must have passed rule_problems."""
    if "all" in rule:
        return all(matches(item, data, now=now) for item in rule["all"])
    if "any" in rule:
        return any(matches(item, data, now=now) for item in rule["any"])
    actual = field_value(data, rule["field"], now=now)
    if rule["op"] == "exists":
        return (actual is not _MISSING) is rule["value"]
    if actual is _MISSING:
        return False
    return OPERATIONS[rule["op"]](actual, rule["op"], rule["value"])
