"""What the billing channel keeps about a customer: each action's request (the subscription and the
billing system's customer id it acts on), what the provider answered, and the attempts' log.

Exactly once is kept by the row's status and public id, not by the ids erased: a finished action is
never carried out again (its claim is a compare-and-set on an unfinished status), and the billing
system keeps its own record of the change. So a finished action keeps its kind, provider, status,
dates, attempt count and status codes (the audit: what was done, when, whether it worked) and loses
the subscription and customer ids and any text naming them, and the customer's own words a cancel
carried to the billing system (`reason.comment`; the billing system keeps its copy, which only it can
erase). An action still to be carried out needs
them: erasing waits until it has finished (busy). A failed action erased can no longer be retried.

What a saved customer paid over the watch window (SavePayment: a currency, an amount, a number of
invoices and dates, read from the billing system's paid invoices) is theirs to see, so it is exported.
Erasing keeps it as it keeps a decision's value: it names nobody once the session's identifiers are gone,
and revenue kept is counted from it. Contract: privacy/parts.py."""

from __future__ import annotations

from datetime import datetime

from privacy.parts import ERASED, Subject, rows

from .models import BillingAction, SavePayment

TARGET_KEYS = ("subscription_id", "customer_id")


def _actions(subject: Subject):  # noqa: ANN202
    return BillingAction.objects.filter(session_id__in=subject.session_ids)


def identifiers(subject: Subject) -> set[str]:
    """The subscriptions the actions found in the billing system, which the page may never have named."""
    found: set[str] = set()
    for request, subscription_ids in _actions(subject).values_list("request", "subscription_ids"):
        found |= {str(request.get(key)) for key in TARGET_KEYS if request.get(key) and request.get(key) != ERASED}
        found |= {str(s) for s in subscription_ids if s != ERASED}
    return found


def busy(subject: Subject) -> list[str]:
    # Locked until the erasure commits: a worker's claim skips them rather than act on what is being erased.
    held = _actions(subject).select_for_update(of=("self",)).order_by("pk")
    unfinished = [a for a in held if a.status in (BillingAction.Status.PENDING, BillingAction.Status.RUNNING)]
    return [f"billing action {a.public_id} ({a.get_kind_display()}) is still to be carried out and needs the "
            f"subscription it names: run again once it has finished" for a in unfinished]


def erase(subject: Subject, *, now: datetime) -> dict[str, int]:
    changed = 0
    for action in _actions(subject).exclude(status__in=[BillingAction.Status.PENDING,
                                                         BillingAction.Status.RUNNING]).order_by("pk"):
        request = {key: (ERASED if key in TARGET_KEYS and value else value) for key, value in action.request.items()}
        reason = request.get("reason")
        if isinstance(reason, dict) and reason.get("comment"):
            request["reason"] = {**reason, "comment": ERASED}
        fields = {
            "request": subject.redact_json(request),
            "subscription_ids": [ERASED for _ in action.subscription_ids],
            "result": subject.redact_json({ERASED + "'" * i: answer
                                           for i, answer in enumerate(action.result.values())}),
            "summary": subject.redact(action.summary),
            "log": subject.redact_json(action.log),
            "last_error": subject.redact(action.last_error),
            "error_detail": subject.redact(action.error_detail),
        }
        if any(getattr(action, name) != value for name, value in fields.items()):
            changed += BillingAction.objects.filter(pk=action.pk).update(**fields)
    return {"billing.BillingAction": changed}


def export(subject: Subject) -> dict[str, list[dict]]:
    return {"actions": rows(_actions(subject)),
            "save_payments": rows(SavePayment.objects.filter(session_id__in=subject.session_ids))}
