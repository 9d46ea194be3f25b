from __future__ import annotations

import logging

from django.db import connection

logger = logging.getLogger(__name__)


def database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        logger.warning("database check failed: %s", exc)
        return "unavailable"


def broker_state() -> str:
    from brightback_site.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:  # noqa: BLE001
        logger.warning("broker check failed: %s", exc)
        return "unavailable"


def secrets_state() -> str:
    """ok, or unreadable when a stored secret does not decrypt (SECRET_KEY or FIELD_ENCRYPTION_KEYS
    changed without keeping the key that wrote it): every page needing it would fail."""
    from brightback_site.secrets import unreadable_columns

    try:
        columns = unreadable_columns()
    except Exception as exc:  # noqa: BLE001 - the database check reports a database that does not answer
        logger.warning("secrets check failed: %s", exc)
        return "ok"
    if columns:
        logger.error("stored secrets cannot be decrypted: %s (FIELD_ENCRYPTION_KEYS or SECRET_KEY changed "
                     "without keeping the key that wrote them)", ", ".join(columns))
        return "unreadable"
    return "ok"
