"""Compliance rules per region: what the flow document's `compliance` section says, checked, and resolved
for one customer.

    {"default": {"cancel_button": "every_step", "offers": "any", "receipt": true},
     "regions": {"US-CA": {"offers": "one"}, "US-MN": {"offers": "none"}, "DE": {...}}}

A customer's rules are the built-in ones, overridden by `default`, then by their country's entry (ISO 3166-1
alpha-2, "DE"), then by their region's (ISO 3166-2, "US-CA"). They are resolved once, when the session
starts, and kept on it (CancelSession.compliance), so later changes never rewrite what a customer was shown.
Pure functions: no database, no settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .regions import country_of, country_problem, region_problem

CANCEL_BUTTONS = ("every_step", "last_step")
OFFER_BUDGETS = ("any", "one", "none")
# What applies where the document says nothing: cancel as easy as staying (a Cancel button on every step),
# offers as the flow has them, a receipt to the customer.
BUILT_IN: dict[str, Any] = {"cancel_button": "every_step", "offers": "any", "receipt": True}
SECTION_KEYS = ("default", "regions")


# Besides the rules, an entry may say where they come from (a law, a counsel's memo), for whoever reads the
# document; sessions do not record it.
SOURCE = "source"
MAX_SOURCE = 500


def _rule_problem(name: str, value: Any) -> str | None:
    if name == SOURCE:
        return None if isinstance(value, str) and len(value) <= MAX_SOURCE else \
            f"must be a string of at most {MAX_SOURCE} characters"
    if name == "cancel_button":
        return None if value in CANCEL_BUTTONS else f"must be one of {', '.join(CANCEL_BUTTONS)}"
    if name == "offers":
        return None if value in OFFER_BUDGETS else f"must be one of {', '.join(OFFER_BUDGETS)}"
    return None if isinstance(value, bool) else "must be true or false"


def _rules_problems(value: Any, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: must be an object"]
    problems = []
    for name, item in value.items():
        if name not in BUILT_IN and name != SOURCE:
            problems.append(f"{path}.{name}: unknown rule (the rules: {', '.join(BUILT_IN)}; and source)")
        elif problem := _rule_problem(name, item):
            problems.append(f"{path}.{name}: {problem}")
    return problems


def section_problems(value: Any, *, path: str = "compliance") -> list[str]:
    """Every problem with a `compliance` section, each starting with its path; empty when it is sound."""
    if not isinstance(value, dict):
        return [f"{path}: must be an object"]
    problems = [f"{path}.{key}: unknown field (the fields: default, regions)" for key in value
                if key not in SECTION_KEYS]
    if "default" in value:
        problems += _rules_problems(value["default"], f"{path}.default")
    regions = value.get("regions", {})
    if not isinstance(regions, dict):
        return [*problems, f"{path}.regions: must be an object"]
    for code, rules in regions.items():
        where = f"{path}.regions.{code}"
        problem = country_problem(code) if "-" not in code else region_problem(code)
        if problem:
            problems.append(f"{where}: not a country or region code: {problem.replace('must be', 'use')}")
        problems += _rules_problems(rules, where)
    return problems


def location(*, country: str = "", region: str = "") -> str:
    """The most precise place known: the region, else the country, else ""."""
    return region or country


def resolve(section: Mapping[str, Any] | None, *, country: str = "", region: str = "") -> dict[str, Any]:
    """The rules for a customer in `country` and `region` (both upper case, either may be ""), as a session
    keeps them: {"region", "cancel_button", "offers", "receipt"}. `section` is a sound section (see
    section_problems) or None for none. A region implies its country."""
    section = section or {}
    country = country or (country_of(region) if region else "")
    resolved = dict(BUILT_IN)
    regions = section.get("regions", {})
    for rules in (section.get("default", {}), regions.get(country, {}) if country else {},
                  regions.get(region, {}) if region else {}):
        resolved.update((name, value) for name, value in rules.items() if name in BUILT_IN)
    return {"region": location(country=country, region=region), **resolved}


def offers_allowed(compliance: Mapping[str, Any]) -> int | None:
    """How many offers a customer under these rules may see: None for no limit."""
    return {"one": 1, "none": 0}.get(compliance.get("offers", "any"))


def cancel_on_every_step(compliance: Mapping[str, Any]) -> bool:
    """Is the Cancel button on every step (else only on the last)? A session without rules (started before
    they existed) gets what it always had: Cancel on every step."""
    return compliance.get("cancel_button", BUILT_IN["cancel_button"]) == "every_step"


def limit_offers(offers: list, compliance: Mapping[str, Any]) -> list:
    """The offers, cut to what the rules allow (the first ones, in the flow's order)."""
    allowed = offers_allowed(compliance)
    return offers if allowed is None else offers[:allowed]
