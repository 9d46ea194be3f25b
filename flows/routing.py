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

from .models import App, Audience, Flow


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


def flow_for(*, app: App, data: dict) -> Flow | None:
    flows = list(app.flows.filter(is_active=True).order_by("priority", "id"))
    if not flows:
        return None
    for language in language_candidates(data.get("context", {}).get("locale", "")):
        for flow in flows:
            if language in flow.language_list:
                return flow
    # No flow in the customer's language: the first one written for anyone, else the first at all.
    return next((flow for flow in flows if not flow.languages.strip()), flows[0])


def audience_for(*, app: App, data: dict, now: datetime) -> Audience | None:
    audiences = Audience.objects.filter(app=app, is_active=True).select_related("flow").order_by("position", "id")
    return next((audience for audience in audiences if audience.matches(data, now=now)), None)


def route_for(*, app: App, data: dict, now: datetime) -> Route | None:
    audience = audience_for(app=app, data=data, now=now)
    if audience is not None and audience.flow is not None and audience.flow.is_active:
        return Route(flow=audience.flow, audience=audience)
    flow = flow_for(app=app, data=data)
    return Route(flow=flow, audience=audience) if flow is not None else None
