"""Statements each request runs, prepared once per connection on PostgreSQL (execute_prepared), a row
written by one (insert_prepared), and the INSERT of a model's rows both it and the outbox write
(insert_sql)."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connections, router
from django.db.models import Field, Model


def execute_prepared(cursor: Any, *, sql: str, types: tuple[str, ...], params: list) -> None:
    """Run `sql` (one %s per parameter, `types` their PostgreSQL types) on `cursor` (Django's, from
    `connection.cursor()`; read its rows as usual) as a statement PostgreSQL prepares once per connection,
    where PostgreSQL and DB_PREPARED_STATEMENTS allow; else as it is. For statements each request runs,
    whose planning costs more than their running.

    Prepared, the values travel apart from the SQL (the extended protocol's parameters, each cast to its
    type): nothing is quoted into the statement's text, and the server neither parses nor plans it again.
    Django's own cursors bind their values into the SQL and are never prepared (its default, kept for
    connection poolers); only the cursor handed here binds them apart, and psycopg prepares what it runs
    and keeps each connection's statements (the 100 most used)."""
    db = cursor.db
    if db.vendor != "postgresql" or not getattr(settings, "DB_PREPARED_STATEMENTS", False):
        cursor.execute(sql, params)
        return
    raw = db.connection
    if raw.prepare_threshold != 0:
        raw.prepare_threshold = 0  # prepared at once: only execute_prepared's cursors bind values apart
    # The wrapper stays Django's (its execute wrappers, the queries it logs); only what it wraps changes.
    cursor.cursor.close()
    cursor.cursor = _bound_apart_cursor()(raw)
    cursor.execute(_typed(sql, types), params)


@lru_cache(maxsize=1)
def _bound_apart_cursor() -> type:
    """Django's cursor for values bound apart from the SQL, keeping the query it ran where Django's query
    log (DEBUG, the tests' CaptureQueriesContext) reads it: psycopg keeps it only for a statement it did
    not run prepared."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    class BoundApartCursor(ServerBindingCursor):  # type: ignore[misc,valid-type]
        def _convert_query(self, query: Any, params: Any = None) -> Any:  # noqa: ANN401
            self._query = super()._convert_query(query, params)  # type: ignore[misc]
            return self._query

    return BoundApartCursor


@lru_cache(maxsize=64)
def _typed(sql: str, types: tuple[str, ...]) -> str:
    """`sql` with each %s cast to its type, a length or precision aside (a parameter's type has none:
    a value too long for its column is refused by the column, never cut by the cast)."""
    casts = iter(re.sub(r"\([^)]*\)", "", kind).strip() for kind in types)
    typed = re.sub("%s", lambda _: f"%s::{next(casts)}", sql)
    assert next(casts, None) is None, "a type for each parameter"
    return typed


def insert_prepared(instance: Model) -> None:
    """`instance.save(force_insert=True)` for a model without save signals or a save() of its own, as a
    statement prepared once per connection (execute_prepared): a request's one write costs its INSERT, not
    the ORM's compiling of it. The instance is left as save() leaves it (its key set, marked saved)."""
    model = type(instance)
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        instance.save(force_insert=True)
        return
    fields = inserted_fields(model)
    instance._prepare_related_fields_for_save(operation_name="save")  # type: ignore[attr-defined]
    params = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    with connection.cursor() as cursor:
        execute_prepared(cursor, sql=insert_sql(model, 1, connection.ops.quote_name),
                         types=_inserted_types(model, connection.alias), params=params)
        (instance.pk,) = cursor.fetchone()
    instance._state.adding, instance._state.db = False, connection.alias


def inserted_fields(model: type[Model]) -> list[Field]:
    """The columns an INSERT of `model`'s new rows writes: every concrete one but the key the database gives."""
    return [f for f in model._meta.concrete_fields if not f.primary_key]


@lru_cache(maxsize=64)
def insert_sql(model: type[Model], count: int, quote: Callable[[str], str]) -> str:
    """INSERT … VALUES of `count` rows of `model` (inserted_fields, one %s each) RETURNING their keys."""
    fields = inserted_fields(model)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    assert model._meta.pk is not None
    return (f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(str(f.column)) for f in fields)}) "
            f"VALUES {', '.join([row] * count)} RETURNING {quote(str(model._meta.pk.column))}")


@lru_cache(maxsize=16)
def _inserted_types(model: type[Model], alias: str) -> tuple[str, ...]:
    return tuple(str(f.db_type(connections[alias])) for f in inserted_fields(model))
