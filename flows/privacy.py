"""What the cancel flow keeps about a customer, and how it forgets it (the contract: privacy/parts.py).

A session keeps the snippet's data, its email, account and subscription ids in columns, the decision's
feedback and redirect URL (which carries the account id), and every event a copy of all that. Erasing
keeps what the numbers are made of: the session's App, flow, audience, variant, status, dates, monthly
value, offers shown, the plan; the decision's kind, reason and offer codes; the events' types and
dates. The account id becomes a pseudonym, one per customer and erasure, so reports that count
accounts still count this one once; nothing links the pseudonym back to the person.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.db.models.functions import Least

from privacy.parts import ERASED, Subject, rows

from . import selectors
from .experiments import account_key
from .models import App, CancelSession, Decision, Event, VariantAssignment
from .snippet_data import OFFER_URL, URL_FIELDS

# What stays of the snippet's data: nothing that tells who the customer is, what reports read.
KEPT_ACCOUNT_KEYS = ("plan", "plan_term", "value", "currency")
PSEUDONYM_PREFIX = "erased-"


def snippet_data_scrubbed(data: dict) -> dict:
    account: dict = data["account"] if isinstance(data.get("account"), dict) else {}
    context: dict = data["context"] if isinstance(data.get("context"), dict) else {}
    kept: dict[str, Any] = {"app_id": data.get("app_id", "")}
    kept["account"] = {key: account[key] for key in KEPT_ACCOUNT_KEYS if key in account}
    if isinstance(context.get("locale"), str):
        kept["context"] = {"locale": context["locale"]}
    return kept


def event_data_scrubbed(data: dict, subject: Subject) -> dict:
    """An event's `data` (flows.services.event_payload, as webhooks and alerts copy it) without the person:
    the ids, test flag, reason, offer and extras stay; who it was, what they wrote and where they came
    from go. Channels use it on their own copies."""
    if not isinstance(data, dict):
        return data
    scrubbed = dict(data)
    scrubbed.update(email=None, subscription_id=None, feedback="", custom={},
                    account=snippet_data_scrubbed(data)["account"],
                    context=snippet_data_scrubbed(data).get("context", {}))
    for name in ("first_name", "last_name", "full_name"):
        scrubbed.pop(name, None)
    billing = scrubbed.get("billing")
    if isinstance(billing, dict) and billing.get("subscription_id"):
        scrubbed["billing"] = {**billing, "subscription_id": ERASED}
    return subject.redact_json(scrubbed)


def identify(sessions: list[CancelSession], decisions: list[Decision]) -> dict[str, set[str]]:
    """What identifies the people of these sessions, by kind (Subject's fields)."""
    from privacy.parts import string_leaves

    found: dict[str, set[str]] = {"emails": set(), "account_ids": set(), "identifiers": set(), "incidental": set()}
    for session in sessions:
        data = session.data if isinstance(session.data, dict) else {}
        account = session.account
        found["emails"] |= {e.lower() for e in (session.email, str(data.get("email") or "")) if e}
        found["account_ids"] |= {a for a in (session.account_internal_id, str(account.get("internal_id") or ""))
                                 if a and not a.startswith(PSEUDONYM_PREFIX)}
        found["identifiers"] |= {str(v) for v in (
            session.subscription_id, data.get("subscription_id"), data.get("first_name"), data.get("last_name"),
            data.get("full_name"), account.get("billing_id"), account.get("company_name"),
            account.get("company_domain")) if v}
        kept = snippet_data_scrubbed(data)
        kept_values = set(string_leaves(kept))
        found["incidental"] |= {v for v in string_leaves(data) if v not in kept_values}
        found["incidental"] |= {v for key, v in data.items()
                                if isinstance(v, str) and (key in URL_FIELDS or OFFER_URL.match(key))}
    found["incidental"] |= {d.feedback for d in decisions if d.feedback}
    return found


def _blocklist_without(app: App, subject: Subject) -> str | None:
    entries = [line.strip() for line in app.offer_blocklist.replace(",", "\n").splitlines() if line.strip()]
    drop = {*subject.emails, *(a.lower() for a in subject.account_ids)}
    kept = [entry for entry in entries if entry.lower() not in drop]
    return "\n".join(kept) if len(kept) != len(entries) else None


# Sessions may keep the customer's experiment key (experiments.account_key) in a column of its own.
_HAS_ACCOUNT_KEY = any(f.name == "account_key" for f in CancelSession._meta.concrete_fields)


def _assignment_keys(subject: Subject) -> list[str]:
    # As experiments.account_key writes them: by account id, else email, else subscription id.
    return ([account_key(internal_id=a, email="") for a in subject.account_ids]
            + [account_key(internal_id="", email=e) for e in subject.emails]
            + [f"sub:{identifier}" for identifier in subject.identifiers])


def busy(subject: Subject) -> list[str]:
    return []


def erase(subject: Subject, *, now: datetime) -> dict[str, int]:
    counts = {"flows.CancelSession": 0, "flows.Decision": 0, "flows.Event": 0}
    sessions = list(CancelSession.objects.filter(pk__in=subject.session_ids, erased_at__isnull=True)
                    .select_for_update().order_by("pk"))
    pseudonyms: dict[tuple[int, str], str] = {}
    for session in sessions:
        person = "one" if subject.is_customer else (session.account_internal_id or session.email.lower())
        pseudonym = pseudonyms.setdefault((session.app_id, person), PSEUDONYM_PREFIX + secrets.token_hex(8))
        fields: dict[str, Any] = {
            "email": "", "account_internal_id": pseudonym, "subscription_id": "",
            "data": snippet_data_scrubbed(session.data), "erased_at": now,
            "expires_at": Least("expires_at", now),  # an open page stops working
        }
        if _HAS_ACCOUNT_KEY:  # the customer as reports count them: the pseudonym, as for any account id
            fields["account_key"] = account_key(internal_id=pseudonym, email="")
        counts["flows.CancelSession"] += CancelSession.objects.filter(pk=session.pk).update(**fields)
    erased_pks = [s.pk for s in sessions]
    counts["flows.Decision"] = Decision.objects.filter(session_id__in=erased_pks).exclude(
        feedback="", redirect_url="").update(feedback="", redirect_url="")
    for event in Event.objects.filter(session_id__in=subject.session_ids).order_by("pk"):
        scrubbed = event_data_scrubbed(event.data, subject)
        if scrubbed != event.data:
            counts["flows.Event"] += Event.objects.filter(pk=event.pk).update(data=scrubbed)
    if subject.app is not None:
        counts["flows.VariantAssignment"] = VariantAssignment.objects.filter(
            flow__app=subject.app, account_key__in=_assignment_keys(subject)).delete()[0]
        app = App.objects.select_for_update().get(pk=subject.app.pk)
        blocklist = _blocklist_without(app, subject)
        counts["flows.App (offer blocklist)"] = 0
        if blocklist is not None:
            counts["flows.App (offer blocklist)"] = App.objects.filter(pk=app.pk).update(offer_blocklist=blocklist)
            selectors.app_changed(app_id=app.app_id)  # every process's copy of the App holds the old list
    return counts


def export(subject: Subject) -> dict[str, list[dict]]:
    exported: dict[str, list[dict]] = {
        # The page token is left out: it is a key to the page, not something about the customer.
        "sessions": rows(CancelSession.objects.filter(pk__in=subject.session_ids), exclude=("token",)),
        "decisions": rows(Decision.objects.filter(session_id__in=subject.session_ids)),
        "events": rows(Event.objects.filter(session_id__in=subject.session_ids)),
    }
    if subject.app is not None:
        exported["variant_assignments"] = rows(VariantAssignment.objects.filter(
            flow__app=subject.app, account_key__in=_assignment_keys(subject)))
        app = App.objects.get(pk=subject.app.pk)
        drop = {*subject.emails, *(a.lower() for a in subject.account_ids)}
        exported["offer_blocklist"] = [{"entry": line.strip()} for line in app.offer_blocklist.replace(",", "\n")
                                       .splitlines() if line.strip().lower() in drop]
    return exported


def mentions(subject: Subject) -> list[str]:
    """Staff's configuration naming the customer, which erasing does not rewrite (an audience's rules
    decide routing: changing them is staff's call). Said to the operator."""
    if subject.app is None:
        return []
    from .models import Audience

    return [f"audience {audience.name!r} of {subject.app.app_id} names this customer in its rules"
            for audience in Audience.objects.filter(app=subject.app)
            if subject.names(str(audience.rules))]


def sessions_with_person(*, app: App, emails: set[str], account_ids: set[str]) -> list[int]:
    """The App's sessions whose email or account id is one of these (not those already erased)."""
    query = Q(pk__in=[])
    for email in emails:
        query |= Q(email__iexact=email)
    if account_ids:
        query |= Q(account_internal_id__in=account_ids)
    return list(CancelSession.objects.filter(query, app=app).values_list("pk", flat=True))
