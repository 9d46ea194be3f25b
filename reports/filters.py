"""The report pages' filter: a date range and, optionally, one App, flow, audience and variant."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils.translation import gettext_lazy as _

from flows.models import App, Audience, Flow, Variant

from . import days
from .selectors import ReportFilter

DEFAULT_DAYS = 30
MAX_DAYS = 3 * 366


class FlowChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Flow) -> str:
        return f"{obj.app.app_id} / {obj.name}"


class AudienceChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Audience) -> str:
        return f"{obj.app.app_id} / {obj.name}"


class VariantChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Variant) -> str:
        return f"{obj.flow.name} / {obj.code}{' (control)' if obj.is_control else ''}"


class ReportFilterForm(forms.Form):
    start = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    app = forms.ModelChoiceField(App.objects.order_by("name"), required=False, empty_label=_("All apps"))
    flow = FlowChoice(Flow.objects.select_related("app").order_by("app__app_id", "priority", "id"), required=False,
                      empty_label=_("All flows"))
    audience = AudienceChoice(Audience.objects.select_related("app").order_by("app__app_id", "position", "id"),
                              required=False, empty_label=_("All audiences"))
    variant = VariantChoice(Variant.objects.select_related("flow").order_by("flow__name", "code"), required=False,
                            empty_label=_("All variants"))

    def __init__(self, data=None, *, apps: frozenset[int] | None = None, **kwargs) -> None:  # noqa: ANN001, ANN003
        # Show the range the numbers cover: the default one is written into the date inputs too.
        if data is not None and not (data.get("start") or data.get("end")):
            data = data.copy()
            end = days.today()
            data["start"], data["end"] = (end - timedelta(days=DEFAULT_DAYS - 1)).isoformat(), end.isoformat()
        super().__init__(data, **kwargs)
        # Staff limited to some Apps choose among those only; anything else is "not one of the choices".
        self.apps = apps
        if apps is not None:
            for name, path in (("app", "pk"), ("flow", "app"), ("audience", "app"), ("variant", "flow__app")):
                field = self.fields[name]
                field.queryset = field.queryset.filter(**{f"{path}__in": apps})  # type: ignore[attr-defined]

    def clean(self) -> dict:
        cleaned = super().clean()
        today = days.today()
        end = cleaned.get("end") or today
        start = cleaned.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise forms.ValidationError(_("“From” must not be after “To”."))
        if (end - start).days >= MAX_DAYS:
            raise forms.ValidationError(_("Choose at most %(days)s days.") % {"days": MAX_DAYS})
        cleaned["start"], cleaned["end"] = start, end
        return cleaned

    def report(self) -> ReportFilter:
        data = self.cleaned_data
        return ReportFilter(first_day=data["start"], last_day=data["end"],
                            app_id=data["app"].pk if data.get("app") else None,
                            flow_id=data["flow"].pk if data.get("flow") else None,
                            audience_id=data["audience"].pk if data.get("audience") else None,
                            variant_id=data["variant"].pk if data.get("variant") else None,
                            app_ids=self.apps)
