"""Which Flow a session gets. Today: the App's first active Flow by priority.

Audiences and experiments (DESIGN: routing/audiences/experiments) extend this one function.
"""

from __future__ import annotations

from .models import App, Flow


def flow_for(*, app: App, data: dict) -> Flow | None:
    return app.flows.filter(is_active=True).order_by("priority", "id").first()
