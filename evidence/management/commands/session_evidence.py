"""Print what one session's customer was shown and did, and what followed, as JSON; or every session
of an App since a date as JSON lines, for an audit (README, "Evidence")."""

from __future__ import annotations

import json
from datetime import datetime, time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from flows import selectors as flow_selectors
from flows.models import CancelSession

from ...selectors import session_evidence, sessions_of_app


def _since(value: str) -> datetime:
    """A date (its midnight in the server's time zone) or an ISO 8601 time (UTC when it names no zone)."""
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--since: {value!r} is not a date (2026-12-01) or an ISO 8601 time")
        moment = datetime.combine(day, time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    return moment


class Command(BaseCommand):
    help = ("Print a session's evidence as JSON (SESSION_ID, its ses_… id), or with --app and --since every "
            "session of an App started since then, one JSON object per line.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("session_id", nargs="?", help="The session's public id (ses_…).")
        parser.add_argument("--app", dest="app_id", help="The App's public app_id: every session of it, as JSON lines.")
        parser.add_argument("--since", help="With --app: sessions started on or after this date or ISO 8601 time.")

    def handle(self, *args: Any, session_id: str | None, app_id: str | None, since: str | None, **options: Any) -> None:
        if session_id and (app_id or since):
            raise CommandError("Give either SESSION_ID, or --app APP_ID --since DATE, not both.")
        if session_id:
            session = (CancelSession.objects.select_related("app", "flow", "variant")
                       .filter(public_id=session_id).first())
            if session is None:
                raise CommandError(f"No such session: {session_id}")
            self.stdout.write(json.dumps(session_evidence(session), indent=2, ensure_ascii=False))
            return
        if not app_id or not since:
            raise CommandError("Give SESSION_ID, or both --app APP_ID and --since DATE.")
        app = flow_selectors.app_by_public_id(app_id)
        if app is None:
            raise CommandError(f"No such app: {app_id}")
        for session in sessions_of_app(app_pk=app.pk, since=_since(since)):
            self.stdout.write(json.dumps(session_evidence(session), ensure_ascii=False, separators=(",", ":")))
