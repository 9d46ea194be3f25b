"""What an alert says: the facts of an event laid out for a help desk, as an email (subject, text and
HTML parts, from templates) and as a Slack Block Kit message (built here as data).

Reads only. The admin's preview and the worker's send both go through `message_for`, so staff see
exactly what is sent. Templates live in templates/alerts/<kind>/; a file at
templates/alerts/<app_id>/<kind>/<name> replaces the default for that App only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.template.loader import select_template
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.http import urlencode

from flows.models import App, Event

from .transports import Message

VERBS: dict[str, str] = {
    Event.Type.SESSION_CANCELED: "Canceled",
    Event.Type.OFFER_ACCEPTED: "Offer accepted",
    Event.Type.OFFER_EMAIL_REQUESTED: "Wants to talk to support",
    Event.Type.SESSION_NEVERMIND: "Stayed",
    Event.Type.SESSION_ABANDONED: "Abandoned the cancel page",
    Event.Type.SAVE_CONFIRMED: "Save confirmed",
    Event.Type.BILLING_ACTION_FAILED: "Billing action failed",
    Event.Type.SESSION_REACTIVATED: "Came back and kept the subscription",
}
OFFER_TYPES = {"discount": "Discount", "pause": "Pause", "plan_change": "Plan change",
               "trial_extension": "Trial extension", "skip_renewal": "Skip renewals",
               "contact_support": "Talk to support", "custom_link": "Custom link"}
TERM_LABELS = {"coupon": "coupon", "discount_percent": "discount (%)", "discount_months": "for months",
               "pause_months": "pause (months)", "plan": "new plan", "trial_days": "extra trial days",
               "skip_renewals": "renewals free",
               "support_email": "support address", "link_url": "link"}
# A billing action in words: what it does, where, and how far it got (the status words tell a team that
# processes cancels by hand that this one is being done for them).
BILLING_ACTIONS = {"cancel": "Cancel the subscription", "coupon": "Apply the coupon", "pause": "Pause billing",
                   "plan_change": "Change the plan", "trial_extension": "Extend the trial",
                   "skip_renewal": "Skip the next renewals (nothing charged)",
                   "reactivate": "Keep the subscription (remove the scheduled cancel)"}
BILLING_PROVIDERS = {"stripe": "Stripe", "recurly": "Recurly", "chargebee": "Chargebee", "paddle": "Paddle"}
BILLING_STATUSES = {"pending": "queued, carried out automatically", "running": "in progress, carried out automatically",
                    "succeeded": "done automatically", "skipped": "dry run, nothing was sent", "failed": "failed"}


def _term_order(name: str) -> tuple[int, str]:
    order = list(TERM_LABELS)
    return (order.index(name) if name in order else len(order), name)


ACCOUNT_ORDER = ("internal_id", "billing_id", "company_name", "company_domain", "plan", "plan_term", "value",
                 "created_at")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def one_line(value: str, *, limit: int = 250) -> str:
    """Header-safe: control characters (line breaks included) become spaces."""
    return " ".join(_CONTROL.sub(" ", value).split())[:limit]


def display(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 49, as the page sent it, not 49.0
    return str(value)


def flatten(values: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested objects (custom fields) as ("team.name", "Blue") pairs, in the order stored."""
    if not isinstance(values, dict):
        return []
    pairs: list[tuple[str, str]] = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            pairs.extend(flatten(value, f"{name}."))
        else:
            pairs.append((name, display(value)))
    return pairs


def email_address(value: Any) -> str | None:
    if not isinstance(value, str) or _CONTROL.search(value):
        return None
    try:
        validate_email(value)
    except ValidationError:
        return None
    return value


def answer_by(start: datetime, business_days: int) -> datetime:
    """`business_days` working days (Monday to Friday) after `start`, in the team's time zone
    (TIME_ZONE); a request made at a weekend counts from Monday morning."""
    moment = timezone.localtime(start) if timezone.is_aware(start) else start
    if moment.weekday() >= 5:
        moment = (moment + timedelta(days=7 - moment.weekday())).replace(hour=9, minute=0, second=0, microsecond=0)
    added = 0
    while added < business_days:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            added += 1
    return moment


def admin_session_url(*, session_id: str, session_pk: int | None) -> str:
    try:
        if session_pk is not None:
            path = reverse("admin:flows_cancelsession_change", args=[session_pk])
        else:
            path = reverse("admin:flows_cancelsession_changelist") + "?" + urlencode({"q": session_id})
    except NoReverseMatch:
        return ""
    return f"{settings.SITE_URL}{path}"


@dataclass(frozen=True)
class Facts:
    """Everything an alert can say about one event, ready for templates and Slack."""

    event_type: str
    verb: str
    who: str
    plan_summary: str
    subject: str
    test: bool
    email: str | None
    occurred_at: datetime
    event_id: str
    session_id: str
    admin_url: str
    subscription_id: str
    reason: str
    feedback: str
    offer: dict | None  # {"title", "type", "code", "terms": [(label, value)]}
    account: list[tuple[str, str]]
    custom: list[tuple[str, str]]
    context: list[tuple[str, str]]
    billing: dict | None  # {"action", "provider", "status", "error", "subscription_id"}
    support_request: dict | None  # offer.email_requested: {"asked_for", "words", "answer_by", "promise", "reply_to"}
    app_name: str
    app_id: str

    def as_context(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _promise(days: int) -> str:
    if days == 0:
        return "the same business day"
    return f"within {days} business day{'s' if days != 1 else ''}"


def facts_for(*, app: App, event_type: str, data: dict, occurred_at: datetime, session_pk: int | None = None,
              response_business_days: int = 1, event_billing: dict | None = None) -> Facts:
    """`event_billing`: what billing is doing about the event now (flows.services.event_billing), for an
    event that does not carry its own `billing`."""
    account = _dict(data.get("account"))
    email = email_address(data.get("email"))
    raw_email = _text(data.get("email"))
    who = one_line(raw_email or str(account.get("internal_id") or "") or "an unknown customer", limit=120)
    plan_bits = [one_line(display(account[key]), limit=40) for key in ("plan", "plan_term", "value")
                 if account.get(key) not in (None, "")]
    plan_summary = ", ".join(plan_bits)
    verb = VERBS.get(event_type, event_type)
    subject = one_line(f"{'[Test] ' if data.get('test') else ''}{verb}: {who}"
                       + (f" ({plan_summary})" if plan_summary else ""))
    reason = _dict(data.get("reason"))
    offer_data = _dict(data.get("offer"))
    offer = None
    if offer_data:
        terms = _dict(offer_data.get("terms"))
        offer = {"title": display(offer_data.get("title")), "code": display(offer_data.get("code")),
                 "type": OFFER_TYPES.get(str(offer_data.get("type")), display(offer_data.get("type"))),
                 # In a fixed order: PostgreSQL's jsonb does not keep the order keys were written in.
                 "terms": [(TERM_LABELS.get(k, k), display(terms[k])) for k in sorted(terms, key=_term_order)
                           if terms[k] not in (None, "")]}
    ordered = [k for k in ACCOUNT_ORDER if k in account] + [k for k in account if k not in ACCOUNT_ORDER]
    account_pairs = flatten({key: account[key] for key in ordered})
    context = _dict(data.get("context"))
    billing_data = _dict(data.get("billing")) or _dict(event_billing)
    billing = None
    if billing_data:
        billing = {key: display(billing_data.get(key)) for key in ("action", "provider", "status", "error",
                                                                     "subscription_id")}
        for key, words in (("action", BILLING_ACTIONS), ("provider", BILLING_PROVIDERS), ("status", BILLING_STATUSES)):
            billing[key] = words.get(str(billing_data.get(key)), billing[key])
    feedback = _text(data.get("feedback"))
    support_request: dict[str, Any] | None = None
    if event_type == Event.Type.OFFER_EMAIL_REQUESTED:
        terms = _dict(offer_data.get("terms"))
        support_request = {
            "asked_for": offer["title"] if offer else "to talk to support",
            "words": feedback,
            "answer_by": answer_by(occurred_at, response_business_days),
            "promise": _promise(response_business_days),
            "reply_to": raw_email or "—",
            "support_email": _text(terms.get("support_email")) or app.support_email,
        }
    session_id = str(data.get("session_id") or "")
    return Facts(
        event_type=event_type, verb=verb, who=who, plan_summary=plan_summary, subject=subject,
        test=bool(data.get("test")), email=email, occurred_at=occurred_at, event_id=str(data.get("event_id") or ""),
        session_id=session_id,
        admin_url=admin_session_url(session_id=session_id, session_pk=session_pk) if session_id else "",
        subscription_id=str(data.get("subscription_id") or ""),
        reason=(f"{display(reason.get('label'))} ({display(reason.get('code'))})" if reason else ""),
        feedback=feedback, offer=offer, account=account_pairs, custom=flatten(data.get("custom")),
        context=[(k, display(context[k])) for k in ("locale", "timezone", "url", "referrer", "user_agent")
                 if context.get(k)],
        billing=billing, support_request=support_request, app_name=app.name, app_id=app.app_id,
    )


# --- email ----------------------------------------------------------------------------------------

def _template(app: App, kind: str, name: str) -> Any:
    return select_template([f"alerts/{app.app_id}/{kind}/{name}", f"alerts/{kind}/{name}"])


def render_email(*, app: App, kind: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, text, html) from templates/alerts/[<app_id>/]<kind>/{subject.txt,body.txt,body.html}."""
    subject = one_line(_template(app, kind, "subject.txt").render(context))
    text = _template(app, kind, "body.txt").render(context)
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    html = _template(app, kind, "body.html").render(context)
    return subject, text, html


def team_email(*, app: App, facts: Facts, to: list[str]) -> Message:
    subject, text, html = render_email(app=app, kind="team", context=facts.as_context())
    return Message(subject=subject, text=text, html=html, to=tuple(to),
                   reply_to=(facts.email,) if facts.email else (),
                   headers={"X-Cancel-Flow-Event": facts.event_type,
                            "X-Cancel-Flow-Session": one_line(facts.session_id, limit=60)})


def customer_email(*, app: App, kind: str, facts: Facts, language: str, effective: str = "") -> Message:
    """The acknowledgement (after a contact-support offer) or the cancellation receipt, in the
    customer's language."""
    with translation.override(language or settings.LANGUAGE_CODE):
        context = {**facts.as_context(), "effective": effective,
                   "occurred_on": date_format(timezone.localtime(facts.occurred_at), "DATE_FORMAT"),
                   "answer_by_text": (date_format(timezone.localtime(facts.support_request["answer_by"]), "l j F Y")
                                      if facts.support_request else "")}
        subject, text, html = render_email(app=app, kind=kind, context=context)
    reply_to = (facts.support_request or {}).get("support_email") or app.support_email
    return Message(subject=subject, text=text, html=html, to=(facts.email,) if facts.email else (),
                   reply_to=(reply_to,) if email_address(reply_to) else ())


# --- Slack ----------------------------------------------------------------------------------------

def mrkdwn(value: str, *, limit: int = 2000) -> str:
    """Slack's mrkdwn escapes exactly these three; a snippet field can then neither ping a channel
    (<!channel>) nor forge a link."""
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "…"


def _field(label: str, value: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": mrkdwn(f"*{label}*\n", limit=200) + mrkdwn(value, limit=1700)}


def slack_message(*, facts: Facts) -> dict[str, Any]:
    """A Block Kit payload with the email's facts; every user-supplied string is escaped and cut to
    Slack's limits, so no snippet field can break the blocks."""
    fields = [_field("Customer", facts.who)]
    if facts.plan_summary:
        fields.append(_field("Plan", facts.plan_summary))
    if facts.reason:
        fields.append(_field("Reason", facts.reason))
    if facts.offer:
        terms = ", ".join(f"{label}: {value}" for label, value in facts.offer["terms"])
        fields.append(_field("Offer", f"{facts.offer['title']} ({facts.offer['type']})"
                             + (f" — {terms}" if terms else "")))
    if facts.subscription_id:
        fields.append(_field("Subscription", facts.subscription_id))
    if facts.billing:
        b = facts.billing
        fields.append(_field("Billing", f"{b['action']} in {b['provider']}: {b['status']}"
                             + (f" ({b['error']})" if b["error"] != "—" else "")))
    header = one_line(facts.subject, limit=150)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": False}},
        {"type": "section", "fields": fields[:10]},
    ]
    if facts.support_request:
        request = facts.support_request
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn(
            f"They asked: {request['asked_for']}. Answer by "
            f"{timezone.localtime(request['answer_by']):%a %d %b %Y %H:%M %Z} ({request['promise']}).",
            limit=3000)}})
    if facts.feedback:
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                    "text": "*Feedback*\n" + mrkdwn(facts.feedback, limit=2900)}})
    extra = facts.account + [(f"custom.{k}", v) for k, v in facts.custom]
    if extra:
        lines = "\n".join(f"{k}: {v}" for k, v in extra)
        text = "*Account and custom fields*\n" + mrkdwn(lines, limit=2800)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    context = [f"{facts.app_name} · {facts.event_type} · {timezone.localtime(facts.occurred_at):%Y-%m-%d %H:%M %Z}"]
    if facts.session_id:
        context.append(f"session {facts.session_id}")
    elements: list[dict[str, Any]] = [{"type": "mrkdwn", "text": mrkdwn(" · ".join(context), limit=3000)}]
    blocks.append({"type": "context", "elements": elements})
    if facts.admin_url.startswith(("https://", "http://")):
        blocks.append({"type": "actions", "elements": [{
            "type": "button", "text": {"type": "plain_text", "text": "Open in the admin"},
            "url": facts.admin_url[:3000]}]})
    return {"text": mrkdwn(facts.subject, limit=3000), "blocks": blocks}


# --- one delivery --------------------------------------------------------------------------------

def message_for(*, app: App, kind: str, event_type: str, data: dict, occurred_at: datetime | None = None,
                session_pk: int | None = None, response_business_days: int = 1, recipients: list[str] | None = None,
                slack_webhook_url: str = "", language: str = "", effective: str = "",
                event_billing: dict | None = None) -> tuple[str, Message]:
    """The transport slug and the rendered message of one alert: what the worker sends and the admin
    previews."""
    facts = facts_for(app=app, event_type=event_type, data=data, occurred_at=occurred_at or timezone.now(),
                      session_pk=session_pk, response_business_days=response_business_days,
                      event_billing=event_billing)
    if kind == "slack":
        return "slack", Message(subject=facts.subject, chat=slack_message(facts=facts), url=slack_webhook_url)
    if kind == "team_email":
        return "email", team_email(app=app, facts=facts, to=list(recipients or []))
    return "email", customer_email(app=app, kind=kind, facts=facts, language=language, effective=effective)


def sample_data(*, app: App, event_type: str) -> dict[str, Any]:
    """A made-up event of `event_type` with every field filled, for test alerts and previews (the
    same every time, so a test alert is exactly what its preview showed)."""
    offer = {"code": "discount-30", "type": "discount", "title": "30% off for the next 3 months",
             "terms": {"coupon": "SAVE30", "discount_percent": 30, "discount_months": 3}}
    if event_type == Event.Type.OFFER_EMAIL_REQUESTED:
        offer = {"code": "talk-to-us", "type": "contact_support", "title": "Talk to us about a better plan",
                 "terms": {"support_email": app.support_email}}
    data: dict[str, Any] = {
        "event_id": "evt_test_alert", "app_id": app.app_id, "session_id": "ses_test_alert", "test": True,
        "email": "jane@example.com",
        "account": {"internal_id": "acct_test", "billing_id": "cus_test", "company_name": "Example Ltd",
                    "plan": "pro", "plan_term": "monthly", "value": 49},
        "subscription_id": "sub_test",
        "reason": {"code": "too-expensive", "label": "It’s too expensive"},
        "feedback": "This is a test alert sent from the admin.",
        "offer": offer if event_type in (Event.Type.OFFER_ACCEPTED, Event.Type.OFFER_EMAIL_REQUESTED) else None,
        "custom": {"seats": 3, "team": {"name": "Blue"}},
        "context": {"locale": "en-US", "url": "https://app.example.com/account/billing"},
    }
    if event_type == Event.Type.BILLING_ACTION_FAILED:
        data["billing"] = {"action": "cancel", "provider": "stripe", "status": "failed",
                           "error": "No such subscription: sub_test", "subscription_id": "sub_test"}
    return data
