"""Which Flow a session gets, and which of its variants.

1. Audiences, in order: the first whose rules match the snippet data is the session's audience, and
   its flow (if it names an active one) is the session's flow.
2. Otherwise the App's active flows by priority, preferring one written in the customer's language
   (Flow.languages) over the language-neutral ones.
3. A flow with active variants (an experiment) puts the customer in one of them: see experiments.py.

The App's flows, audiences, variants and offers are read once per App version and process (published).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import Exists, OuterRef, Q, QuerySet

from . import selectors
from .models import App, Audience, Flow, Variant

if TYPE_CHECKING:
    from offers.models import Offer


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


@dataclass(frozen=True)
class Published:
    """What routing a session reads of its App, kept in each process's memory under the App's version
    (selectors.app_part; every write of a flow, audience, variant or offer retires it)."""

    flows: list[Flow]  # active, by priority, with has_variants and has_offer_rules
    audiences: list[Audience]  # active, in order, each with its flow
    variants: dict[int, list[Variant]]  # active, by flow
    offers: dict[int, list[Offer]]  # active, by flow, with their audiences


def _published_now(app: App) -> Published:
    from offers.models import Offer  # offers depends on flows; this one read goes the other way

    flows = list(active_flows(app))
    by_pk = {flow.pk: flow for flow in flows}
    audiences = list(Audience.objects.filter(app=app, is_active=True).select_related("flow").order_by("position", "id"))
    for audience in audiences:
        if audience.flow_id in by_pk:  # the active flow, with its facts; an inactive one is never routed to
            Audience.flow.field.set_cached_value(audience, by_pk[audience.flow_id])
    variants: dict[int, list[Variant]] = {}
    for variant in Variant.objects.filter(flow__in=flows, is_active=True).order_by("id"):
        variants.setdefault(variant.flow_id, []).append(variant)
    offers: dict[int, list[Offer]] = {}
    for offer in Offer.objects.filter(flow__in=flows, is_active=True).prefetch_related("audiences"):
        offers.setdefault(offer.flow_id, []).append(offer)
    return Published(flows=flows, audiences=audiences, variants=variants, offers=offers)


def published(app: App) -> Published:
    return selectors.app_part(app_id=app.app_id, part="routing", load=lambda: _published_now(app))


def flow_for(*, app: App, data: dict, content: Published | None = None) -> Flow | None:
    flows = (content or published(app)).flows
    if not flows:
        return None
    for language in language_candidates(data.get("context", {}).get("locale", "")):
        for flow in flows:
            if language in flow.language_list:
                return flow
    # No flow in the customer's language: the first one written for anyone, else the first at all.
    return next((flow for flow in flows if not flow.languages.strip()), flows[0])


def audience_for(*, app: App, data: dict, now: datetime, content: Published | None = None) -> Audience | None:
    audiences = (content or published(app)).audiences
    return next((audience for audience in audiences if audience.matches(data, now=now)), None)


def route_for(*, app: App, data: dict, now: datetime, content: Published | None = None) -> Route | None:
    content = content or published(app)
    audience = audience_for(app=app, data=data, now=now, content=content)
    if audience is not None and audience.flow is not None and audience.flow.is_active:
        return Route(flow=audience.flow, audience=audience)
    flow = flow_for(app=app, data=data, content=content)
    return Route(flow=flow, audience=audience) if flow is not None else None
