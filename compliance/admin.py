from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from flows.admin_access import AppScopedAdmin

from .models import ComplianceRules
from .presets import PRESETS


class ComplianceRulesForm(forms.ModelForm):
    rules = forms.JSONField(
        required=False, widget=forms.Textarea(attrs={"rows": 18, "cols": 90, "style": "font-family: monospace"}),
        help_text=_('{"default": {"cancel_button": "every_step" or "last_step", "offers": "any", "one" or '
                    '"none", "receipt": true or false}, "regions": {"US-CA": {...}, "DE": {...}}}. A region '
                    "overrides its country, which overrides the default. Changes apply to sessions started "
                    "after them."))

    class Meta:
        model = ComplianceRules
        fields = ["app", "rules"]

    def clean_rules(self) -> object:
        # An emptied box means no rules of the App's own (the built-in ones apply).
        return self.cleaned_data["rules"] or {}


@admin.register(ComplianceRules)
class ComplianceRulesAdmin(AppScopedAdmin):
    form = ComplianceRulesForm
    list_display = ["app", "default_rules", "regions", "updated_at"]
    list_select_related = ["app"]
    readonly_fields = ["presets"]
    fields = ["app", "rules", "presets"]

    @admin.display(description=_("default"))
    def default_rules(self, obj: ComplianceRules) -> str:
        default = (obj.rules or {}).get("default", {})
        return ", ".join(f"{key}: {json.dumps(value)}" for key, value in default.items()) or "—"

    @admin.display(description=_("regions"))
    def regions(self, obj: ComplianceRules) -> str:
        return ", ".join(sorted((obj.rules or {}).get("regions", {}))) or "—"

    @admin.display(description=_("presets to copy"))
    def presets(self, obj: ComplianceRules | None) -> str:
        from django.utils.html import format_html_join

        return format_html_join(
            "", "<p><strong>{}</strong> ({})</p><pre>{}</pre>",
            ((preset.name, preset.source, json.dumps(preset.regions, indent=1)) for preset in PRESETS))
