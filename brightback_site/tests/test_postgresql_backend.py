"""The PostgreSQL backend's health-check window (brightback_site/postgresql), on the machine's PostgreSQL.

Each test drives a connection of its own the way Django's request signals do: close_old_connections()
as a request starts and as it ends, a cursor in between.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.db import connections
from django.db.utils import OperationalError, ProgrammingError

from brightback_site.postgresql.base import DatabaseWrapper
from conftest import need

pytestmark = pytest.mark.django_db


@pytest.fixture
def conn(monkeypatch: pytest.MonkeyPatch) -> Iterator[DatabaseWrapper]:
    need(connections["default"].vendor == "postgresql", "the backend under test is PostgreSQL's")
    wrapper = connections.create_connection("default")
    assert isinstance(wrapper, DatabaseWrapper) and wrapper.settings_dict["CONN_HEALTH_CHECKS"]
    wrapper.checks = 0  # type: ignore[attr-defined]
    usable = wrapper.is_usable

    def counted() -> bool:
        wrapper.checks += 1  # type: ignore[attr-defined]
        return usable()

    monkeypatch.setattr(wrapper, "is_usable", counted)
    yield wrapper
    wrapper.close()


def request(conn: DatabaseWrapper, sql: str = "SELECT pg_backend_pid()") -> int:
    conn.close_if_unusable_or_obsolete()  # request_started
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()[0]
    finally:
        conn.close_if_unusable_or_obsolete()  # request_finished


def test_a_connection_that_just_finished_a_request_skips_the_next_check(conn, settings) -> None:  # noqa: ANN001
    settings.DB_HEALTH_CHECK_BYPASS = 60
    first = request(conn)  # a new connection: nothing to check
    second, third = request(conn), request(conn)
    assert first == second == third
    assert conn.checks == 0  # type: ignore[attr-defined]

    settings.DB_HEALTH_CHECK_BYPASS = 0  # Django's own behaviour: a check before every request
    request(conn)
    request(conn)
    assert conn.checks == 2  # type: ignore[attr-defined]


def test_an_idle_connection_is_checked_and_a_dead_one_replaced(conn, settings) -> None:  # noqa: ANN001
    settings.DB_HEALTH_CHECK_BYPASS = 0.05
    first = request(conn)
    request(conn)
    assert conn.checks == 0  # type: ignore[attr-defined]
    with connections["default"].cursor() as other:  # the database drops the connection while it is idle
        other.execute("SELECT pg_terminate_backend(%s)", [first])
    time.sleep(0.1)

    conn.close_if_unusable_or_obsolete()  # a request starting does not count as the connection working
    replaced = request(conn)
    assert conn.checks == 1 and replaced != first  # type: ignore[attr-defined]


def test_a_connection_that_saw_an_error_is_checked_before_it_counts_as_alive(conn, settings) -> None:  # noqa: ANN001
    settings.DB_HEALTH_CHECK_BYPASS = 60
    first = request(conn)
    with pytest.raises(ProgrammingError):
        request(conn, "SELECT * FROM no_such_table")
    assert conn.checks == 1  # type: ignore[attr-defined] # Django's own check, as the failed request ended
    assert request(conn) == first and conn.checks == 1  # type: ignore[attr-defined] # it just answered that

    # An error on a connection the database has dropped: the check fails and the next request reconnects.
    with connections["default"].cursor() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [first])
    with pytest.raises(OperationalError):
        request(conn)
    assert conn.checks == 2 and conn.connection is None  # type: ignore[attr-defined]
    assert request(conn) != first
