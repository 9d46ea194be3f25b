"""Which Flow a session gets: the App's active flows by priority, preferring one written in the
customer's language (Flow.languages) over the language-neutral ones.

Audiences and experiments (DESIGN: routing/audiences/experiments) extend this one function.
"""

from __future__ import annotations

from .models import App, Flow


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
