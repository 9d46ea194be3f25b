"""The flow document's routing parts: the App's audiences (`routing.audiences`), each flow's experiment
(`flows[].variants`) and the offers' audience references. flow_document.py calls these; the format is in
docs/flow-format.md.

Audiences are matched by name within the App, variants by code within their flow. Like flows, reasons
and offers, those the document no longer lists are deactivated, never deleted: past sessions keep them.
A document without a `routing` section leaves the App's audiences as they are.
"""

from __future__ import annotations

import json
from typing import Any, cast

from django.db.models import Field, Prefetch

from audiences.rules import rule_problems
from offers.models import Offer

from .flow_document import (
    ImportResult,
    Spec,
    _boolean,
    _check_object,
    _deactivate,
    _duplicates,
    _integer,
    _list,
    _model_problems,
    _string,
    _strings,
)
from .models import App, Audience, Flow, Variant


def _items(value: Any, key: str) -> list:
    """value[key] when value is an object and that is a list (its shape is reported elsewhere), else []."""
    items = value.get(key) if isinstance(value, dict) else None
    return items if isinstance(items, list) else []


def _rules(value: Any) -> str | None:
    return None if isinstance(value, dict) else "must be an object (see the rules format)"


def _string_or_null(value: Any) -> str | None:
    return None if value is None else _string(value)


VARIANT_SPEC = Spec({
    "code": (_string, True),
    "name": (_string, False),
    "weight": (_integer, False),
    "is_control": (_boolean, False),
    "offers": (_strings, False),
    "title": (_string, False),
    "intro": (_string, False),
    "is_active": (_boolean, False),
})
AUDIENCE_SPEC = Spec({
    "name": (_string, True),
    "position": (_integer, False),
    "rules": (_rules, False),
    "flow": (_string_or_null, False),
    "is_active": (_boolean, False),
})
ROUTING_SPEC = Spec({}, nested=("audiences",))


# --- validation -----------------------------------------------------------------------------------

def variants_problems(flow: dict, path: str, problems: list[str]) -> None:
    """flows[i].variants: shapes, the model's rules, offer codes of the same flow, one active control."""
    variants = _list(flow, "variants", f"{path}.", problems)
    offers = _items(flow, "offers")
    offer_codes = {o["code"] for o in offers if isinstance(o, dict) and isinstance(o.get("code"), str)}
    controls = []
    for index, variant in enumerate(variants):
        where = f"{path}.variants[{index}]"
        if not _check_object(variant, VARIANT_SPEC, where, problems):
            continue
        for position, code in enumerate(variant.get("offers", [])):
            if code not in offer_codes:
                problems.append(f"{where}.offers[{position}]: no offer with code {json.dumps(code)} in this flow")
        if variant.get("is_control") and variant.get("offers"):
            problems.append(f"{where}.offers: a control shows no offers; leave it out")
        if variant.get("is_control") and variant.get("is_active", True):
            controls.append(index)
        _model_problems(_variant_instance(Variant(), variant), where, problems, exclude=["flow", "offer_codes"])
    if len(controls) > 1:
        problems.append(f"{path}.variants[{controls[1]}].is_control: a flow has one active control "
                        f"(also at {path}.variants[{controls[0]}])")
    _duplicates(variants, "code", f"{path}.variants", problems)


def routing_problems(document: dict, app_id: str, problems: list[str]) -> None:
    """The routing section, and every offer's audiences naming one the App will have."""
    flows = _items(document, "flows")
    flow_names = {f["name"] for f in flows if isinstance(f, dict) and isinstance(f.get("name"), str)}
    if "routing" in document:
        routing = document["routing"]
        audiences = _list(routing, "audiences", "routing.", problems) \
            if _check_object(routing, ROUTING_SPEC, "routing", problems) else []
        for index, audience in enumerate(audiences):
            where = f"routing.audiences[{index}]"
            if not _check_object(audience, AUDIENCE_SPEC, where, problems):
                continue
            problems.extend(rule_problems(audience.get("rules", {"all": []}), f"{where}.rules"))
            flow = audience.get("flow")
            if flow is not None and flow not in flow_names:
                problems.append(f"{where}.flow: no flow named {json.dumps(flow)} in this document")
        _duplicates(audiences, "name", "routing.audiences", problems)
        known = {a["name"] for a in audiences if isinstance(a, dict) and isinstance(a.get("name"), str)}
    else:
        known = set(Audience.objects.filter(app__app_id=app_id).values_list("name", flat=True)) if app_id else set()
    for flow_index, flow in enumerate(flows):
        offers = _items(flow, "offers")
        for offer_index, offer in enumerate(offers):
            names = offer.get("audiences", []) if isinstance(offer, dict) else []
            if _strings(names) is not None:
                continue  # reported with the offer's fields
            for index, name in enumerate(names):
                if name not in known:
                    problems.append(f"flows[{flow_index}].offers[{offer_index}].audiences[{index}]: no audience "
                                    f"named {json.dumps(name)} (list it under routing.audiences)")


# --- between documents and rows -------------------------------------------------------------------

def _variant_instance(instance: Variant, values: dict) -> Variant:
    for name in VARIANT_SPEC.fields:
        if name == "offers":
            instance.offer_codes = ", ".join(values.get("offers", []))
            continue
        default = cast(Field, Variant._meta.get_field(name)).get_default
        setattr(instance, name, values[name] if name in values else default())
    return instance


def _variant_values(variant: Variant) -> dict:
    return {"code": variant.code, "name": variant.name, "weight": variant.weight, "is_control": variant.is_control,
            "offers": variant.offer_code_list, "title": variant.title, "intro": variant.intro,
            "is_active": variant.is_active}


def _audience_values(audience: Audience) -> dict:
    return {"name": audience.name, "position": audience.position, "rules": audience.rules or {"all": []},
            "flow": audience.flow.name if audience.flow is not None else None, "is_active": audience.is_active}


def variants_export(flow: Flow) -> list[dict]:
    return [_variant_values(variant) for variant in flow.variants.all()]


def routing_export(*, app: App) -> dict:
    audiences = Audience.objects.filter(app=app).select_related("flow").order_by("position", "id")
    return {"audiences": [_audience_values(audience) for audience in audiences]}


def offer_audiences_export(offer: Offer) -> list[str]:
    return [audience.name for audience in offer.audiences.all()]


def offers_prefetch() -> Prefetch:
    return Prefetch("audiences", queryset=Audience.objects.order_by("position", "id"))


def variants_apply(flow: Flow, items: list[dict], result: ImportResult) -> None:
    existing = {variant.code: variant for variant in Variant.objects.filter(flow=flow)}
    codes = [values["code"] for values in items]
    # Retire the variants left out first, so an active control can move to a new code.
    _deactivate(Variant.objects.filter(flow=flow, is_active=True).exclude(code__in=codes), "variants", result)
    for values in items:
        variant = existing.get(values["code"]) or Variant(flow=flow)
        before = _variant_values(variant) if variant.pk else None
        _variant_instance(variant, values)
        if before is not None and _variant_values(variant) == before:
            result.count("variants", "unchanged")
            continue
        variant.save()
        result.count("variants", "created" if before is None else "updated")


def routing_apply(document: dict, app: App, result: ImportResult) -> None:
    """Upsert the audiences (when the document has a routing section), then link offers to theirs."""
    flows = {flow.name: flow for flow in Flow.objects.filter(app=app)}
    if "routing" in document:
        existing = {audience.name: audience for audience in Audience.objects.filter(app=app)}
        names = []
        for index, values in enumerate(document["routing"].get("audiences", [])):
            audience = existing.get(values["name"]) or Audience(app=app)
            before = _audience_values(audience) if audience.pk else None
            audience.name = values["name"]
            audience.position = values.get("position", index)
            audience.rules = values.get("rules", {"all": []})
            audience.flow = flows.get(values["flow"]) if values.get("flow") else None
            audience.is_active = values.get("is_active", True)
            names.append(audience.name)
            if before is not None and _audience_values(audience) == before:
                result.count("audiences", "unchanged")
                continue
            audience.save()
            result.count("audiences", "created" if before is None else "updated")
        _deactivate(Audience.objects.filter(app=app, is_active=True).exclude(name__in=names), "audiences", result)
    audiences = {audience.name: audience for audience in Audience.objects.filter(app=app)}
    for flow_values in document["flows"]:
        saved = Offer.objects.filter(flow=flows[flow_values["name"]]).prefetch_related("audiences")
        by_code = {offer.code: offer for offer in saved}
        for values in flow_values.get("offers", []):
            offer = by_code[values["code"]]
            wanted = values.get("audiences", [])
            if {a.name for a in offer.audiences.all()} != set(wanted):
                offer.audiences.set([audiences[name] for name in wanted])
                result.count("offer audiences", "updated")
