"""The customer's receipts in a session's evidence (settings.BRIGHTBACK_EVIDENCE_PARTS): the messages
sent to them, each with its Message-ID and the time it was sent.

The receipts app keeps them and answers `receipts.selectors.receipts_for_session(session)` (rows with
message_id, sent_at, kind and status). An installation without that app has no receipts to show, and
its evidence says so with an empty list rather than failing.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.apps import apps
from django.utils.module_loading import import_string

from flows.models import CancelSession

SELECTOR = "receipts.selectors.receipts_for_session"


@lru_cache(maxsize=1)
def _selector() -> Any:
    if not apps.is_installed("receipts"):
        return None
    try:
        return import_string(SELECTOR)
    except ImportError:
        return None


def _value(row: Any, name: str) -> Any:
    return row.get(name) if isinstance(row, dict) else getattr(row, name, None)


def evidence_part(session: CancelSession) -> dict:
    selector = _selector()
    if selector is None:
        return {"receipts": []}
    rows = []
    for row in selector(session):
        sent_at = _value(row, "sent_at")
        rows.append({"message_id": _value(row, "message_id"), "kind": _value(row, "kind"),
                     "status": _value(row, "status"),
                     "sent_at": sent_at.isoformat() if hasattr(sent_at, "isoformat") else sent_at})
    return {"receipts": rows}
