"""What the evidence keeps about a customer: each step of their sessions (a page shown or a button
pressed, when, by the controls' codes). A step holds no text the customer wrote and no identifier: it is
the business's proof of how the cancellation went, so erasing leaves it as it is (flows.privacy erases the
session it belongs to), and it is exported with the rest. Contract: privacy/parts.py."""

from __future__ import annotations

from datetime import datetime

from privacy.parts import Subject, rows

from .models import Step


def busy(subject: Subject) -> list[str]:
    return []


def erase(subject: Subject, *, now: datetime) -> dict[str, int]:
    return {}


def export(subject: Subject) -> dict[str, list[dict]]:
    return {"steps": rows(Step.objects.filter(session_id__in=subject.session_ids))}
