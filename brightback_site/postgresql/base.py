"""Django's PostgreSQL backend, with its per-request health check skipped for a connection that has just
proved itself.

With CONN_HEALTH_CHECKS, Django sends `SELECT 1` before the first query of every request that reuses a
persistent connection, so that one dropped while idle (a database restart, a failover, an idle timeout)
is replaced instead of failing the request. Under a burst that is one extra round trip per request: on
the hosted page, as many as the page's own query. HikariCP, the JDBC pool, settled this long ago with its
`aliveBypassWindowMs` (500 ms): a connection that finished its last piece of work cleanly less than that
long ago is taken as alive. This backend does the same. A connection idle for longer is checked as before;
one that saw an error is checked by Django at the end of that request and closed if it fails, as before.
The window is `DB_HEALTH_CHECK_BYPASS_MS` (default 500; 0 checks before every request, as Django does).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    # When this connection last came through the end of a request (or a task) with no error: time.monotonic().
    _clean_at: float | None = None

    def close_if_health_check_failed(self) -> None:
        window = getattr(settings, "DB_HEALTH_CHECK_BYPASS", 0.0)
        if (self.connection is not None and self._clean_at is not None and window > 0
                and time.monotonic() - self._clean_at < window):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def close_if_unusable_or_obsolete(self) -> None:
        # Django calls this as a request (or a task) starts and as it ends. health_check_done says the
        # connection did some work since the last call: a cursor was taken, or Django itself checked it
        # after an error. A request that never touched the database proves nothing.
        worked = self.connection is not None and self.health_check_done
        clean = worked and not self.errors_occurred
        super().close_if_unusable_or_obsolete()
        if self.connection is None:
            self._clean_at = None
        elif worked:
            self._clean_at = time.monotonic() if clean else None

    def close(self) -> None:
        self._clean_at = None
        super().close()
