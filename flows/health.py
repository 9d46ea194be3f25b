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
