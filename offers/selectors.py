from __future__ import annotations

from django.db.models import QuerySet

from .models import Offer


def offers_for_flow(*, flow_id: int) -> QuerySet[Offer]:
    return Offer.objects.filter(flow_id=flow_id, is_active=True).prefetch_related("reasons")


def offers_for_reason(offers: list[Offer], reason_code: str | None) -> list[Offer]:
    """Offers restricted to no reason show for every reason; the others only for theirs."""
    chosen = []
    for offer in offers:
        codes = {reason.code for reason in offer.reasons.all()}
        if not codes or (reason_code and reason_code in codes):
            chosen.append(offer)
    return chosen
