"""What the hosted page would show, as data: the headless API's description of a page.

Read through the same selectors as the page (flows.selectors, offers.selectors), in the customer's
language (the snippet's locale, then the browser's), so a page drawn from it says what ours would.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext, ngettext

from billing import selectors as billing_selectors
from billing.models import BillingConnection
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
    """What Cancel will do and when: the App's billing connection acts at the period's end or at once;
    without one, the business acts on the webhook itself and the page says nothing of timing."""
    timing = billing_selectors.cancel_timing(app_id=session.app_id)
    summary = {
        BillingConnection.CancelTiming.PERIOD_END: gettext(
            "Your subscription ends at the end of the current billing period."),
        BillingConnection.CancelTiming.IMMEDIATELY: gettext("Your subscription ends now."),
    }.get(timing, "") if timing else ""
    flow = session.flow
    return {"label": flow.cancel_label or gettext("Cancel my subscription now"), "note": flow.cancel_note,
            "timing": timing, "summary": summary}


def page_description(session: CancelSession) -> dict:
    """The page as its customer would see it now, in their language (call under translation.override)."""
    flow = session.flow
    reasons = flow_selectors.published_reasons(flow=flow)
    offers = [offer for offer in offers_for_flow(flow_id=flow.pk) if session.shows_offer(offer.code)]
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
        "offers": [_offer(offer) for offer in offers],
        "cancel": _cancel(session),
    }
