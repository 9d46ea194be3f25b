"""Writes of the compliance rules."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from flows.models import App

from .models import ComplianceRules
from .rules import section_problems


class RulesInvalid(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@transaction.atomic
def rules_set(*, app: App, section: Any) -> bool:
    """Make `section` the App's rules (a sound `compliance` section; RulesInvalid otherwise, nothing
    changed); return whether that changed anything. Sessions already started keep the rules they got."""
    problems = section_problems(section)
    if problems:
        raise RulesInvalid(problems)
    stored, created = ComplianceRules.objects.select_for_update().get_or_create(app=app, defaults={"rules": section})
    if created:
        return True
    if stored.rules == section:
        return False
    stored.rules = section
    stored.save(update_fields=["rules", "updated_at"])
    return True
