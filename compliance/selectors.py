"""Reads of the compliance rules."""

from __future__ import annotations

from typing import Any

from flows.models import App
from flows.selectors import app_part

from . import rules
from .models import ComplianceRules


def section_of(app: App) -> dict[str, Any] | None:
    """The App's `compliance` section as stored (None: the App has none), from this process's memory while
    the App's version stands (every save and delete of the rules retires it: see apps.py)."""
    return app_part(app_id=app.app_id, part="compliance.rules",
                    load=lambda: ComplianceRules.objects.filter(app_id=app.pk).values_list("rules", flat=True).first())


def rules_for(*, app: App, country: str = "", region: str = "") -> dict[str, Any]:
    """The rules that apply to a customer of the App in `country` and `region` (see rules.resolve)."""
    return rules.resolve(section_of(app), country=country, region=region)
