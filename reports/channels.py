"""What the reports read from the channels (billing), through the settings that name their functions:
reports never import a channel, as flows never does (BRIGHTBACK_SAVE_CHECKS is the same pattern)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string


@lru_cache(maxsize=8)
def _imported(paths: tuple[str, ...]) -> list:
    return [import_string(path) for path in paths]


def apps_with_billing(*, app_ids: list[int] | None = None) -> set[int]:
    """The Apps whose saves a billing system confirms (BRIGHTBACK_SAVES_FROM_BILLING)."""
    found: set[int] = set()
    for read in _imported(tuple(settings.BRIGHTBACK_SAVES_FROM_BILLING)):
        found |= set(read(app_ids=app_ids))
    return found


def paid_after_saves(*, start: datetime, end: datetime) -> dict[int, dict[str, Decimal]]:
    """What the saves of the sessions created in [start, end) actually paid over their watch windows, by
    session pk and currency, where a channel read it (BRIGHTBACK_PAID_AFTER_SAVES); others are absent."""
    found: dict[int, dict[str, Decimal]] = {}
    for read in _imported(tuple(settings.BRIGHTBACK_PAID_AFTER_SAVES)):
        for session_id, amounts in read(start=start, end=end).items():
            found.setdefault(session_id, {}).update(amounts)
    return found
