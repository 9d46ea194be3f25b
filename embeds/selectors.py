"""What the hosted page would show, as data: the headless API's description of a page.

Read through the same selectors as the page (flows.selectors, offers.selectors), in the customer's
language (the snippet's locale, then the browser's), so a page drawn from it says what ours would.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext, ngettext

from billing import selectors as billing_selectors
from compliance import rules
from flows import cancel_terms
from flows import selectors as flow_selectors
from flows.models import CancelSession
from offers.models import Offer
from offers.selectors import offers_for_flow


def language_of(session: CancelSession) -> str:
    """The snippet's locale first, then the browser's (LocaleMiddleware already read it)."""
    if session.locale:
        try:
            return translation.get_supported_language_variant(session.locale.replace("_", "-").lower())
        except LookupError:
            pass
    return translation.get_language() or settings.LANGUAGE_CODE


def _accept_label(offer: Offer) -> str:
    if offer.accept_label:
        return offer.accept_label
    return {
        Offer.Kind.DISCOUNT: gettext("Apply this discount"),
        Offer.Kind.PAUSE: gettext("Pause my subscription"),
        Offer.Kind.PLAN_CHANGE: gettext("Switch plans"),
        Offer.Kind.TRIAL_EXTENSION: gettext("Extend my trial"),
        Offer.Kind.SKIP_RENEWAL: gettext("Skip my next payment"),
        Offer.Kind.CONTACT_SUPPORT: gettext("Yes, contact me"),
    }.get(offer.kind, gettext("Take me there"))


def _terms_summary(offer: Offer) -> str:
    """The offer's terms in a sentence, in the active language ("" when the kind has none to tell)."""
    if offer.kind == Offer.Kind.DISCOUNT and offer.discount_percent:
        if offer.discount_months:
            return ngettext("%(percent)s%% off for %(months)s month", "%(percent)s%% off for %(months)s months",
                            offer.discount_months) % {"percent": offer.discount_percent,
                                                      "months": offer.discount_months}
        return gettext("%(percent)s%% off") % {"percent": offer.discount_percent}
    if offer.kind == Offer.Kind.PAUSE and offer.pause_months:
        return ngettext("Pause for %(months)s month", "Pause for %(months)s months",
                        offer.pause_months) % {"months": offer.pause_months}
    if offer.kind == Offer.Kind.TRIAL_EXTENSION and offer.trial_days:
        return ngettext("%(days)s more day of trial", "%(days)s more days of trial",
                        offer.trial_days) % {"days": offer.trial_days}
    if offer.kind == Offer.Kind.SKIP_RENEWAL:
        return offer.skip_summary
    if offer.kind == Offer.Kind.PLAN_CHANGE and offer.plan:
        if offer.plan_change_timing == "renewal":
            return gettext("Switch to %(plan)s at your next renewal") % {"plan": offer.plan}
        return gettext("Switch to %(plan)s now") % {"plan": offer.plan}
    if offer.kind == Offer.Kind.CONTACT_SUPPORT:
        return gettext("Our team will email you shortly.")
    return ""


# Terms a customer may see: not the billing coupon's id, which could be redeemed elsewhere.
_PUBLIC_TERMS = ("discount_percent", "discount_months", "pause_months", "plan", "plan_change_timing",
                 "trial_days", "skip_renewals", "support_email", "link_url")


def _offer(offer: Offer) -> dict:
    terms = {name: value for name, value in offer.terms().items() if name in _PUBLIC_TERMS}
    return {"code": offer.code, "kind": offer.kind, "title": offer.title, "description": offer.description,
            "accept_label": _accept_label(offer), "terms": terms, "terms_summary": _terms_summary(offer),
            "reasons": sorted(reason.code for reason in offer.reasons.all())}


def _cancel(session: CancelSession) -> dict:
    """What Cancel will do and when: `timing` is the App's billing connection's (at the period's end or at
    once; null without one, when the business acts on the webhook itself); `effective` is what the page
    promised when the session started, and its label and summary say it: "now" only when billing cancels at
    once."""
    timing = billing_selectors.cancel_timing(app_id=session.app_id)
    effective = cancel_terms.session_effective(session)
    everywhere, _effective = cancel_terms.page_rules(session.compliance)
    return {"label": cancel_terms.cancel_label(session.flow, effective), "note": session.flow.cancel_note,
            "timing": timing, "effective": effective, "summary": cancel_terms.cancel_summary(effective),
            "on_every_step": everywhere}


def _offers(session: CancelSession) -> list[dict]:
    """The offers the session may see, as the page would show them under the customer's rules: none for
    "none"; for "one", the offer the page shows first for each reason, each listing the reasons it is shown
    for, so that a page drawn from this shows at most one whatever the reason (`compliance.max_offers`)."""
    offers = [offer for offer in offers_for_flow(flow_id=session.flow_id) if session.shows_offer(offer.code)]
    limit = rules.offers_allowed(session.compliance or {})
    if limit is None:
        return [_offer(offer) for offer in offers]
    reasons = [reason.code for reason in flow_selectors.published_reasons(flow=session.flow)]
    if limit == 0 or not reasons:
        return [_offer(offer) for offer in flow_selectors.offers_on_page(session, "")]
    shown_for: dict[str, list[str]] = {}
    for reason in reasons:
        for offer in flow_selectors.offers_on_page(session, reason):
            shown_for.setdefault(offer.code, []).append(reason)
    return [{**_offer(offer), "reasons": sorted(shown_for[offer.code])} for offer in offers
            if offer.code in shown_for]


def _compliance(session: CancelSession) -> dict:
    """The rules that apply to this customer (resolved when the session started), as the page applies them."""
    compliance = {key: value for key, value in (session.compliance or {}).items() if key != "cancel_effective"}
    return {**rules.resolve(None), "region": "", **compliance,
            "max_offers": rules.offers_allowed(session.compliance or {})}


def page_description(session: CancelSession) -> dict:
    """The page as its customer would see it now, in their language (call under translation.override)."""
    flow = session.flow
    reasons = flow_selectors.published_reasons(flow=flow)
    offers = _offers(session)
    return {
        "session": {"id": session.public_id, "open": session.is_open,
                    "expires_at": session.expires_at.isoformat(), "language": translation.get_language()},
        "copy": {
            "title": session.title or gettext("Before you go…"), "intro": session.intro,
            "reasons_prompt": flow.reasons_prompt or gettext("Why are you canceling?"),
            "feedback_prompt": gettext("Anything else you’d like us to know? (optional)"),
            "offers_heading": gettext("Before you cancel, would one of these help?"),
            "nevermind_label": flow.nevermind_label or gettext("Never mind, keep my subscription"),
            "support_email": session.app.support_email,
        },
        "brand": {"logo_url": flow.logo_url, "color": flow.brand_color, "background": flow.background_color},
        "reasons": [{"code": r.code, "label": r.label, "wants_feedback": r.wants_feedback} for r in reasons],
        "offers": offers,
        "cancel": _cancel(session),
        "compliance": _compliance(session),
    }
