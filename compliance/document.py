"""The flow document's `compliance` section (DESIGN §8), registered in settings.BRIGHTBACK_DOCUMENT_SECTIONS:

    "compliance": {"default": {"cancel_button": "every_step", "offers": "any", "receipt": true},
                   "regions": {"US-MN": {"offers": "none"}}}

The section is the App's whole set of rules: an import replaces them. A document without it leaves them as
they are; an export leaves it out when the App has none.
"""

from __future__ import annotations

from typing import Any

from flows.models import App

from .models import ComplianceRules
from .rules import section_problems
from .services import rules_set


class ComplianceSection:
    key = "compliance"

    def export(self, *, app: App) -> dict[str, Any] | None:
        return ComplianceRules.objects.filter(app=app).values_list("rules", flat=True).first()

    def problems(self, value: Any, *, path: str, app_id: str) -> list[str]:
        return section_problems(value, path=path)

    def apply(self, value: Any, *, app: App) -> list[str]:
        rules_set(app=app, section=value)
        return []
