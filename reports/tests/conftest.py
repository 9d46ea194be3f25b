from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from audiences import facts
from flows.models import App, CancelSession, Decision, Event, Flow, Reason, Variant
from offers.models import Offer


@pytest.fixture
def make_session(demo_app: App) -> Callable[..., CancelSession]:
    """A session as the cancel flow leaves it, written directly so each test states its numbers."""
    flow = Flow.objects.get(app=demo_app, name="Default")
    counter = iter(range(1, 1_000_000))

    def make(*, at: datetime | None = None, value: float | None = 10, plan_term: str = "month",
             decision: str | None = None, reason: str = "", feedback: str = "", offer: str = "",
             shown: list[str] | None = None, variant: Variant | None = None, confirmed: bool = False,
             account: str | None = None, decided_at: datetime | None = None, opened: bool = True,
             is_test: bool = False) -> CancelSession:
        at = at or timezone.now()
        number = next(counter)
        account_data = {"internal_id": account or f"acct_{number}", "plan_term": plan_term}
        if value is not None:
            account_data["value"] = value
        session = CancelSession.objects.create(
            app=demo_app, flow=flow, variant=variant, email=f"c{number}@example.com",
            account_internal_id=account_data["internal_id"], data={"app_id": "demo", "account": account_data},
            monthly_value=facts.monthly_value(account_data), created_at=at, expires_at=at + timedelta(days=1),
            opened_at=at if opened or decision else None, is_test=is_test,
            account_key=f"id:{account_data['internal_id']}",
            offers_shown=shown, offers_shown_at=at + timedelta(minutes=1) if shown else None,
            status=CancelSession.Status.DECIDED if decision else CancelSession.Status.OPEN)
        if decision:
            the_reason = Reason.objects.get(flow=flow, code=reason) if reason else None
            the_offer = Offer.objects.get(flow=flow, code=offer) if offer else None
            made = Decision.objects.create(session=session, in_force_for=session, kind=decision, reason=the_reason,
                                           reason_code=reason, reason_label=the_reason.label if the_reason else "",
                                           feedback=feedback, offer=the_offer, offer_code=offer,
                                           created_at=decided_at or at + timedelta(minutes=2))
            if confirmed:
                Event.objects.create(app=demo_app, session=session, type=Event.Type.SAVE_CONFIRMED, data={},
                                     created_at=made.created_at + timedelta(days=30))
        return session

    return make


def money(value: str) -> Decimal:
    return Decimal(value)
