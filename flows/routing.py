"""Which Flow a session gets, and which of its variants.

1. Audiences, in order: the first whose rules match the snippet data is the session's audience, and
   its flow (if it names an active one) is the session's flow.
2. Otherwise the App's active flows by priority, preferring one written in the customer's language
   (Flow.languages) over the language-neutral ones.
3. A flow with active variants (an experiment) puts the customer in one of them: see experiments.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet

from .models import App, Audience, Flow, Variant


@dataclass(frozen=True)
class Route:
    flow: Flow
    audience: Audience | None


def language_candidates(locale: str) -> list[str]:
    """"fr_CA" → ["fr-ca", "fr"]: the exact tag first, then its primary language."""
    tag = locale.replace("_", "-").strip().lower()
    if not tag:
        return []
    primary = tag.split("-")[0]
    return [tag] if tag == primary else [tag, primary]


def _facts(flow_ref: str) -> dict:
    """Whether a flow runs an experiment and has offers with rules: when it has neither, the session needs
    no further reads to know its variant (none) and its offers (all of them)."""
    from offers.models import Offer  # offers depends on flows; this one read goes the other way

    ruled = (Q(cap_days__isnull=False) | Q(hide_during_trial=True) | Q(min_monthly_value__isnull=False)
             | Q(audiences__isnull=False))
    return {"has_variants": Exists(Variant.objects.filter(flow_id=OuterRef(flow_ref), is_active=True)),
            "has_offer_rules": Exists(Offer.objects.filter(ruled, flow_id=OuterRef(flow_ref), is_active=True))}


def active_flows(app: App) -> QuerySet[Flow]:
    return app.flows.filter(is_active=True).annotate(**_facts("pk")).order_by("priority", "id")


def flow_for(*, app: App, data: dict) -> Flow | None:
    flows = list(active_flows(app))
    if not flows:
        return None
    for language in language_candidates(data.get("context", {}).get("locale", "")):
        for flow in flows:
            if language in flow.language_list:
                return flow
    # No flow in the customer's language: the first one written for anyone, else the first at all.
    return next((flow for flow in flows if not flow.languages.strip()), flows[0])


def audience_for(*, app: App, data: dict, now: datetime) -> Audience | None:
    facts = {f"flow_{name}": value for name, value in _facts("flow_id").items()}
    audiences = (Audience.objects.filter(app=app, is_active=True).select_related("flow").annotate(**facts)
                 .order_by("position", "id"))
    audience = next((audience for audience in audiences if audience.matches(data, now=now)), None)
    if audience is not None and audience.flow is not None:
        audience.flow.has_variants = audience.flow_has_variants  # type: ignore[attr-defined]
        audience.flow.has_offer_rules = audience.flow_has_offer_rules  # type: ignore[attr-defined]
    return audience


def route_for(*, app: App, data: dict, now: datetime) -> Route | None:
    audience = audience_for(app=app, data=data, now=now)
    if audience is not None and audience.flow is not None and audience.flow.is_active:
        return Route(flow=audience.flow, audience=audience)
    flow = flow_for(app=app, data=data)
    return Route(flow=flow, audience=audience) if flow is not None else None
