from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from flows.models import App

from .rules import section_problems


class ComplianceRules(models.Model):
    """An App's rules per region: the flow document's `compliance` section (see rules.py)."""

    app = models.OneToOneField(App, on_delete=models.CASCADE, related_name="compliance_rules")
    rules = models.JSONField(
        default=dict, blank=True,
        help_text=_('JSON: {"default": {"cancel_button": "every_step", "offers": "any", "receipt": true}, '
                    '"regions": {"US-MN": {"offers": "none"}}}. A region (US-CA) overrides its country (US), '
                    "which overrides the default. See docs/flow-format.md for the presets."))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("compliance rules")
        verbose_name_plural = _("compliance rules")

    def __str__(self) -> str:
        return f"compliance rules of {self.app}"

    def clean(self) -> None:
        problems = section_problems(self.rules if self.rules is not None else {})
        if problems:
            raise ValidationError({"rules": problems})
