from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from flows import services as flow_services
from flows.admin_access import AppScopedAdmin, StackedInline, app_scope, in_apps
from flows.models import Audience, Reason

from .models import Offer

MAIN_FIELDS = ("code", "kind", "title", "description", "accept_label", "reasons", "position", "is_active",
               "snippet_url_slot", "return_url")
TERM_FIELDS = ("coupon", "discount_percent", "discount_months", "pause_months", "plan", "plan_change_timing",
               "trial_days", "skip_renewals", "support_email", "link_url")
RULE_FIELDS = ("audiences", "cap_days", "hide_during_trial", "min_monthly_value")
FIELDSETS = [
    (None, {"fields": MAIN_FIELDS}),
    (_("Terms (fill in those of the offer's kind)"), {"fields": TERM_FIELDS}),
    (_("Who sees it (checked when the customer arrives)"), {"fields": RULE_FIELDS}),
]
# Read by offer-terms.js, which shows only the selected kind's term fields.
TERMS_JSON = json.dumps({kind.value: list(names) for kind, names in Offer.TERMS.items()})


class ReasonChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Reason) -> str:
        return f"{obj.label} ({obj.code})"


def _formfield(db_field: models.Field, **kwargs) -> forms.Field | None:  # noqa: ANN003
    if isinstance(db_field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return db_field.formfield(**kwargs)


class OfferForm(forms.ModelForm):
    """Kind terms are checked by Offer.clean(); this adds that an offer's reasons are its flow's, and
    clears the terms of other kinds, as flow import does.

    `reasons` is left to the model (not declared here), so each form class the admin builds gets its
    own field, and narrowing its choices for one flow cannot leak into another request.
    """

    class Meta:
        model = Offer
        fields = ("flow", *MAIN_FIELDS, *TERM_FIELDS, *RULE_FIELDS)
        widgets = {"reasons": forms.CheckboxSelectMultiple, "audiences": forms.CheckboxSelectMultiple,
                   "kind": forms.Select(attrs={"data-offer-terms": TERMS_JSON})}
        field_classes = {"reasons": ReasonChoiceField}
        formfield_callback = _formfield

    def clean(self) -> dict:
        cleaned = super().clean()
        flow = cleaned.get("flow")
        foreign = [r for r in cleaned.get("reasons") or () if flow is None or r.flow_id != flow.pk]
        if foreign:
            self.add_error("reasons", _("Choose reasons of this offer's own flow."))
        strangers = [a for a in cleaned.get("audiences") or () if flow is None or a.app_id != flow.app_id]
        if strangers:
            self.add_error("audiences", _("Choose audiences of this offer's own app."))
        own = Offer.TERMS.get(cleaned.get("kind"))
        if own is not None:
            # Terms left from an earlier kind would be kept unseen (the page hides them) and come back
            # if the kind is switched back; an offer holds only its own kind's terms.
            for name in TERM_FIELDS:
                if name not in own and name in cleaned:
                    cleaned[name] = Offer._meta.get_field(name).get_default()
        return cleaned


URL_FIELDS = {models.URLField: {"assume_scheme": "https"}}


class OfferInline(StackedInline):
    """A Flow's offers, edited on the Flow's page; reasons are limited to that flow's reasons."""

    model = Offer
    form = OfferForm
    formfield_overrides = URL_FIELDS
    fieldsets = FIELDSETS
    extra = 0
    ordering = ("position", "id")
    show_change_link = True

    class Media:
        js = ["admin/offers/offer-terms.js"]

    def get_formset(self, request: HttpRequest, obj=None, **kwargs):  # noqa: ANN001, ANN003, ANN201
        formset = super().get_formset(request, obj, **kwargs)
        # The form class is built for this request (see OfferForm), so narrowing it stays local.
        field = formset.form.base_fields["reasons"]
        field.queryset = Reason.objects.filter(flow=obj) if obj is not None else Reason.objects.none()
        if obj is None:
            field.help_text = _("Save the flow first, then choose among its reasons.")
        audiences = formset.form.base_fields["audiences"]
        audiences.queryset = Audience.objects.filter(app_id=obj.app_id) if obj is not None else Audience.objects.none()
        return formset


@admin.register(Offer)
class OfferAdmin(AppScopedAdmin):
    app_path = "flow__app"
    form = OfferForm
    formfield_overrides = URL_FIELDS
    fieldsets = [(None, {"fields": ("flow",)}), *FIELDSETS]
    list_display = ("title", "code", "kind", "flow", "app_id", "position", "is_active")
    list_select_related = ("flow", "flow__app")
    list_filter = ("kind", "is_active", "flow__app")
    search_fields = ("code", "title", "flow__name", "flow__app__app_id")

    class Media:
        js = ["admin/offers/offer-terms.js"]

    @admin.display(description=_("app"), ordering="flow__app__app_id")
    def app_id(self, obj: Offer) -> str:
        return obj.flow.app.app_id

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:  # noqa: ANN001
        super().save_related(request, form, formsets, change)
        # An offer is part of its flow's published content: a change is the flow's new version.
        flow_services.flow_content_changed(flow_ids=[form.instance.flow_id], author=request.user, source="admin")

    def delete_model(self, request: HttpRequest, obj: Offer) -> None:
        super().delete_model(request, obj)
        flow_services.flow_content_changed(flow_ids=[obj.flow_id], author=request.user, source="admin")

    def delete_queryset(self, request: HttpRequest, queryset) -> None:  # noqa: ANN001
        flow_ids = sorted(set(queryset.values_list("flow_id", flat=True)))
        super().delete_queryset(request, queryset)
        flow_services.flow_content_changed(flow_ids=flow_ids, author=request.user, source="admin")

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):  # noqa: ANN001, ANN003, ANN201
        form = super().get_form(request, obj, change=change, **kwargs)
        # Before a flow is chosen every flow's reasons are offered, named with their flow; the form's
        # clean() refuses reasons of another flow.
        reasons = form.base_fields["reasons"]
        if obj is not None:
            reasons.queryset = Reason.objects.filter(flow_id=obj.flow_id)
            form.base_fields["audiences"].queryset = Audience.objects.filter(app_id=obj.flow.app_id)
        else:
            reasons.queryset = in_apps(Reason.objects.select_related("flow", "flow__app"), "flow__app",
                                       app_scope(request, editing=True))
            reasons.label_from_instance = lambda r: f"{r.flow.app.app_id} / {r.flow.name}: {r.label} ({r.code})"
        return form
