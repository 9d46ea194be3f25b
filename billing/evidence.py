"""The billing channel's part of a session's evidence (settings.BRIGHTBACK_EVIDENCE_PARTS): each action
taken in the billing system for the session, what was asked and how it ended."""

from __future__ import annotations

from flows.models import CancelSession

from .selectors import actions_for_session


def evidence_part(session: CancelSession) -> dict:
    return {"billing_actions": [
        {"id": action.public_id, "kind": action.kind, "provider": action.provider, "dry_run": action.dry_run,
         "status": action.status, "event_id": action.event_id, "decision_id": action.decision_id,
         "subscription_ids": action.subscription_ids, "summary": action.summary,
         "last_status_code": action.last_status_code,
         "created_at": action.created_at.isoformat(),
         "finished_at": action.finished_at.isoformat() if action.finished_at else None}
        for action in actions_for_session(session_id=session.pk)]}
