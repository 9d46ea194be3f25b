"""A decision's own writes in one statement, on PostgreSQL (services.decision_record).

Closing the session (the UPDATE that takes its row lock and closes it to any other decision), inserting the
Decision and inserting its Event are one data-modifying WITH query, prepared once per connection
(selectors.execute_prepared): one round trip where there were three, planned once rather than three times
per click, and none of the ORM's compiling of three statements on every decision.

Both INSERTs select their session from the UPDATE's RETURNING, so when the session was not open (a concurrent
click decided it first, it expired, it was abandoned) the statement writes nothing at all, and the caller
returns the decision in force instead. The statement is built from the models' own metadata, so a column
added to Decision or Event is written without a change here.

The click that made the decision (its evidence step, flows/steps.py) is written by the same statement where
the step recorder has an INSERT for it (steps.statement_insert, settings.BRIGHTBACK_STEP_STATEMENT): selected
from the closed session too, so a click that decided nothing (the session was not open) is not written here,
and the caller records it as any other step.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache

from django.db import connection
from django.db.models import Field, Model

from . import steps
from .models import CancelSession, Decision, Event, Flow
from .selectors import execute_prepared

PREPARED_NAME = "flows_decision_record"

# Set from the session the statement closes, not from a parameter.
_SESSION_COLUMNS = {Decision: ("session_id", "in_force_for_id"), Event: ("session_id",)}


def _written(model: type[Decision] | type[Event]) -> list[Field]:
    """The columns of `model` the statement fills from the instance: every concrete one but the session's
    (and Decision's own key, which the database gives)."""
    return [f for f in model._meta.concrete_fields
            if f.attname not in _SESSION_COLUMNS[model] and not (model is Decision and f.primary_key)]


# The click step's columns as steps.statement_insert reads them from its relation, the session's first (taken
# from the closed session), each other one a parameter of the given type.
_STEP_PARAMETERS = (("at", "timestamptz"), ("kind", "text"), ("source", "text"), ("name", "text"),
                    ("action", "text"), ("reason_code", "text"), ("offer_code", "text"), ("controls", "jsonb"),
                    ("status", "smallint"))


@lru_cache(maxsize=4)
def statement(step_insert: str | None = None) -> tuple[str, tuple[str, ...]]:
    """The statement's SQL (one %s per parameter) and its parameters' PostgreSQL types; with `step_insert`
    (steps.statement_insert's INSERT of the relation `click`), the click's step written too, and its id
    the answer's second column."""
    quote = connection.ops.quote_name

    def column(model: type[Model], name: str) -> str:
        field = model._meta.get_field(name)
        assert isinstance(field, Field) and field.column
        return quote(field.column)

    session_table, session_pk = quote(CancelSession._meta.db_table), column(CancelSession, "id")
    status, opened_at = column(CancelSession, "status"), column(CancelSession, "opened_at")
    flow_version, expires_at = column(CancelSession, "flow_version"), column(CancelSession, "expires_at")
    types: list[str] = []

    def inserted(model: type[Decision] | type[Event]) -> tuple[str, str]:
        fields = _written(model)
        types.extend(str(f.db_type(connection)) for f in fields)
        session_columns = [column(model, name) for name in _SESSION_COLUMNS[model]]
        columns = ", ".join([*session_columns, *(quote(str(f.column)) for f in fields)])
        values = ", ".join([*(f"closed.{session_pk}" for _ in session_columns), *(["%s"] * len(fields))])
        return columns, values

    types.extend(["varchar", "bigint", "varchar", "timestamptz"])
    # The flow's published version, read by the flow's key alone (services._published_version).
    version = (f"NULLIF((SELECT f.{column(Flow, 'version')} FROM {quote(Flow._meta.db_table)} f "
               f"WHERE f.{column(Flow, 'id')} = {session_table}.{column(CancelSession, 'flow')}), 0)")
    decision_columns, decision_values = inserted(Decision)
    event_columns, event_values = inserted(Event)
    click = ""
    if step_insert is not None:
        types.extend(kind for _name, kind in _STEP_PARAMETERS)
        values = ", ".join(f"%s::{kind} AS {name}" for name, kind in _STEP_PARAMETERS)
        click = (f", click AS (SELECT closed.{session_pk} AS session_id, {values} FROM closed), "
                 f"written AS ({step_insert})")
    sql = (f"WITH closed AS (UPDATE {session_table} SET {status} = %s, "
           # A decision reached without the page (an embed's API) opens the session too.
           f"{opened_at} = COALESCE({opened_at}, STATEMENT_TIMESTAMP()), "
           f"{flow_version} = COALESCE({flow_version}, {version}) "
           f"WHERE {session_pk} = %s AND {status} = %s AND {expires_at} > %s RETURNING {session_pk}), "
           f"decided AS (INSERT INTO {quote(Decision._meta.db_table)} ({decision_columns}) "
           f"SELECT {decision_values} FROM closed RETURNING {column(Decision, 'id')}), "
           f"recorded AS (INSERT INTO {quote(Event._meta.db_table)} ({event_columns}) "
           f"SELECT {event_values} FROM closed){click} "
           f"SELECT decided.{column(Decision, 'id')}"
           + (", (SELECT written.id FROM written) " if click else " ") + "FROM decided")
    return sql, tuple(types)


def close_and_record(*, session_pk: int, now: datetime, decision: Decision, event: Event,
                     click: steps.Step | None = None) -> tuple[int | None, bool]:
    """Close the open, unexpired session `session_pk` and insert `decision` and `event` for it, in one
    statement of the caller's transaction: the new decision's key, or None (nothing written) when the
    session was not open, and whether the statement also wrote the `click` step (only with a decision, and
    where the step recorder lets it: else the caller records it). The instances are left as they are: the
    caller marks them saved."""
    insert = steps.statement_insert(alias=connection.alias, rows="click") if click is not None else None
    sql, types = statement(insert[1] if insert is not None else None)
    params = [CancelSession.Status.DECIDED, session_pk, CancelSession.Status.OPEN, now]
    for model, instance in ((Decision, decision), (Event, event)):
        params += [f.get_db_prep_save(getattr(instance, f.attname), connection) for f in _written(model)]
    if insert is not None and click is not None:
        params += [click.at, click.kind, click.source, click.name[:32], click.action[:32], click.reason_code[:64],
                   click.offer_code[:64], json.dumps(list(click.controls)), click.status]
    name = PREPARED_NAME if insert is None else f"{PREPARED_NAME}_step_{insert[0]}"
    with connection.cursor() as cursor:
        execute_prepared(cursor, name=name, sql=sql, types=types, params=params)
        row = cursor.fetchone()
    if row is None:
        return None, False
    return row[0], insert is not None and row[1] is not None
