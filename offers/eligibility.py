"""Which of a Flow's offers a customer may see: worked out once, when the session starts.

The page and the decision then only compare codes with the session's list (no further queries), and a
customer cannot see an offer by posting its code. What hides an offer:
- the experiment: a control variant shows none, another variant only its own list;
- the App's blocklist: listed accounts never see offers;
- the offer's rules: its audiences, its monthly-value floor, trials, and its per-customer cap.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Max

from audiences import facts
from flows.models import App, Decision, Flow, Variant

from .models import Offer


def _last_accepted(*, app: App, internal_id: str, email: str, codes: set[str], since: datetime) -> dict[str, datetime]:
    """When this customer last accepted each of `codes` since `since`, in any flow of the App."""
    decisions = Decision.objects.filter(kind=Decision.Kind.ACCEPT, offer_code__in=codes, created_at__gte=since,
                                        session__app=app)
    if internal_id:
        decisions = decisions.filter(session__account_internal_id=internal_id)
    elif email:
        decisions = decisions.filter(session__email__iexact=email)
    else:
        return {}
    return dict(decisions.values("offer_code").annotate(last=Max("created_at")).values_list("offer_code", "last"))


def _passes_rules(offer: Offer, *, data: dict, account: dict, monthly: Decimal | None, now: datetime) -> bool:
    if offer.hide_during_trial and facts.in_trial(account, now=now):
        return False
    if offer.min_monthly_value is not None and (monthly is None or monthly < offer.min_monthly_value):
        return False
    audiences = list(offer.audiences.all())
    return not audiences or any(audience.matches(data, now=now) for audience in audiences)


def offer_codes_for(*, app: App, flow: Flow, variant: Variant | None, data: dict, now: datetime,
                    offers: list[Offer] | None = None) -> list[str] | None:
    """The codes of the offers this customer may see, or None when nothing hides any of the flow's.

    `offers`: the flow's active offers with their audiences when the caller has them (routing.published)."""
    if variant is not None and variant.is_control:
        return []
    account = data["account"] if isinstance(data.get("account"), dict) else {}
    internal_id, email = str(account.get("internal_id") or ""), str(data.get("email") or "")
    if app.blocks_offers_for(internal_id=internal_id, email=email):
        return []
    if variant is None and getattr(flow, "has_offer_rules", True) is False:
        return None  # nothing could hide an offer (routing read that with the flow)
    if offers is None:
        offers = list(Offer.objects.filter(flow=flow, is_active=True).prefetch_related("audiences"))
    wanted = set(variant.offer_code_list) if variant is not None and variant.offer_code_list else None
    monthly = facts.monthly_value(account)
    shown = [offer for offer in offers if (wanted is None or offer.code in wanted)
             and _passes_rules(offer, data=data, account=account, monthly=monthly, now=now)]
    capped = [offer for offer in shown if offer.cap_days]
    if capped:
        since = now - timedelta(days=max(offer.cap_days or 0 for offer in capped))
        last = _last_accepted(app=app, internal_id=internal_id, email=email,
                              codes={offer.code for offer in capped}, since=since)
        shown = [offer for offer in shown if not offer.cap_days or offer.code not in last
                 or last[offer.code] < now - timedelta(days=offer.cap_days)]
    if len(shown) == len(offers):
        return None
    return [offer.code for offer in shown]

