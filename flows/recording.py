"""A decision's own writes in one statement, on PostgreSQL (services.decision_record).

Closing the session (the UPDATE that takes its row lock and closes it to any other decision), inserting the
Decision and inserting its Event are one data-modifying WITH query, prepared once per connection
(brightback_site.statements.execute_prepared): one round trip where there were three, planned once rather
than three times per click, and none of the ORM's compiling of three statements on every decision.

Both INSERTs select their session from the UPDATE's RETURNING, so when the session was not open (a concurrent
click decided it first, it expired, it was abandoned) the statement writes nothing at all, and the caller
returns the decision in force instead. The statement is built from the models' own metadata, so a column
added to Decision or Event is written without a change here.

The click that made the decision (its evidence step, flows/steps.py) is written by the same statement where
the step recorder has an INSERT for it (steps.statement_insert, settings.BRIGHTBACK_STEP_STATEMENT): selected
from the closed session too, so a click that decided nothing (the session was not open) is not written here,
and the caller records it as any other step.

A channel's own rows for the decision's event (its outbox rows, say a cancel's receipt) can be written by the
same statement too, where the channel offers them: a channel whose handler in BRIGHTBACK_EVENT_HANDLERS is
named `on_event` may have a sibling `decision_rows(event, *, alias)` in its module, answering one of:
- `Rows`: an INSERT selecting from the closed session, so nothing is written for a session that was not open;
  its keys are handed back to the channel (`Rows.written`);
- None: the channel writes nothing for this event;
- LATER: its `on_event` writes the rows, in the decision's transaction, as for any event (rows the statement
  cannot carry, or another database's).
Only the channels that answered LATER (or have no `decision_rows`) get the event in `on_event`. When none
did, the statement is the decision's whole write: atomic on its own, it needs no transaction around it (two
round trips fewer: BEGIN and COMMIT). Otherwise the statement runs in a transaction and those channels get
the event after it, in it. flows never imports a channel: it runs what settings name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Field, Model
from django.utils.module_loading import import_string

from brightback_site.statements import execute_prepared

from . import steps
from .models import CancelSession, Decision, Event, Flow

# What the channels' INSERTs select from: the session the statement closed (one row, none when it was not open).
CLOSED = "closed"
CLOSED_SESSION_KEY = "id"


class _Later:
    def __repr__(self) -> str:
        return "recording.LATER"


# A channel's `decision_rows` answer: its `on_event` writes this event's rows, in the decision's transaction.
LATER = _Later()


@dataclass(frozen=True)
class Rows:
    """A channel's rows written by a decision's statement (its `decision_rows`; the module's docstring).

    `sql` is an INSERT … RETURNING of one column (the rows' keys) that selects from the relation CLOSED (its
    column CLOSED_SESSION_KEY the session's key), with one %s per parameter, `types` their PostgreSQL types and
    `params` their values. `written(keys)` is called, in the decision's transaction, with the keys of the
    rows written, only when the decision was (the session was open): the channel wakes its workers on commit
    (its `on_event` is not called for that event)."""

    sql: str
    types: tuple[str, ...]
    params: list
    written: Callable[[list[Any]], None]


@lru_cache(maxsize=1)
def _providers(paths: tuple[str, ...]) -> list[Callable[..., Rows | _Later | None] | None]:
    """The `decision_rows` beside each channel's `on_event` (the module's docstring); None for a channel
    without one."""
    found: list[Callable[..., Rows | _Later | None] | None] = []
    for path in paths:
        module, _, name = path.rpartition(".")
        provider = None
        if name == "on_event":
            try:
                provider = import_string(f"{module}.decision_rows")
            except ImportError:
                pass
        found.append(provider)
    return found


def rows_of(instances: Sequence[Model], *, written: Callable[[list[Any]], None],
            session: str | None = "session") -> Rows:
    """Rows writing `instances` (unsaved, all of one model, their keys given by the database) with the
    decision: every concrete column from the instance but the `session` foreign key's, which is the closed
    session's (a model without one, session=None: every column from the instance, written all the same
    only when the session was open). The instances are marked saved, with their keys, before `written`
    gets the keys."""
    model = type(instances[0])
    sql, types = _part(model, len(instances), session)
    fields = _part_fields(model, session)
    params: list[Any] = []
    for instance in instances:
        instance._prepare_related_fields_for_save(operation_name="bulk_create")  # type: ignore[attr-defined]
        params += [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]

    def saved(keys: list[Any]) -> None:
        for instance, key in zip(instances, keys, strict=True):
            instance.pk = key
            instance._state.adding, instance._state.db = False, connection.alias
        written(keys)

    return Rows(sql=sql, types=types, params=params, written=saved)


def _part_fields(model: type[Model], session: str | None) -> list[Field]:
    key = model._meta.get_field(session) if session is not None else None
    return [f for f in model._meta.concrete_fields if not f.primary_key and f is not key]


@lru_cache(maxsize=16)
def _part(model: type[Model], count: int, session: str | None) -> tuple[str, tuple[str, ...]]:
    quote = connection.ops.quote_name
    keys: list[Field] = []
    if session is not None:
        key = model._meta.get_field(session)
        assert isinstance(key, Field) and key.column
        keys = [key]
    fields = _part_fields(model, session)
    types = tuple(str(f.db_type(connection)) for f in fields)
    # Cast, so that the statement reads the same prepared or not (a NULL's type, a UNION's); to the type
    # without its length, which a cast would cut to (the column's own check applies as it would).
    row = ", ".join([*(f"{CLOSED}.{quote(CLOSED_SESSION_KEY)}" for _ in keys),
                     *(f"%s::{kind.split('(')[0]}" for kind in types)])
    columns = ", ".join(quote(str(f.column)) for f in [*keys, *fields])
    select = " UNION ALL ".join([f"SELECT {row} FROM {CLOSED}"] * count)
    assert model._meta.pk is not None
    return (f"INSERT INTO {quote(model._meta.db_table)} ({columns}) {select} "
            f"RETURNING {quote(str(model._meta.pk.column))}"), types * count


def channel_rows(event: Event) -> tuple[list[Rows], list[str]]:
    """What the channels (settings.BRIGHTBACK_EVENT_HANDLERS) write with the decision of `event`, and the
    handlers that write in `on_event` instead (those without `decision_rows`, or answering LATER)."""
    found, later = [], []
    paths = tuple(settings.BRIGHTBACK_EVENT_HANDLERS)
    for path, provider in zip(paths, _providers(paths), strict=True):
        rows = provider(event, alias=connection.alias) if provider is not None else LATER
        if isinstance(rows, Rows):
            found.append(rows)
        elif rows is not None:
            later.append(path)
    return found, later


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


@lru_cache(maxsize=16)
def statement(step_insert: str | None = None,
              parts: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> tuple[str, tuple[str, ...]]:
    """The statement's SQL (one %s per parameter) and its parameters' PostgreSQL types; with `step_insert`
    (steps.statement_insert's INSERT of the relation `click`), the click's step written too, and its id
    the answer's second column; with `parts` (each a channel's Rows' SQL and types), their rows written too,
    each one's keys an array in a column after those."""
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
    for number, (part_sql, part_types) in enumerate(parts):
        types.extend(part_types)
        click += f", part_{number} AS ({part_sql})"
    answers = "".join(f", ARRAY(SELECT * FROM part_{number})" for number in range(len(parts)))
    sql = (f"WITH closed AS (UPDATE {session_table} SET {status} = %s, "
           # A decision reached without the page (an embed's API) opens the session too.
           f"{opened_at} = COALESCE({opened_at}, STATEMENT_TIMESTAMP()), "
           f"{flow_version} = COALESCE({flow_version}, {version}) "
           f"WHERE {session_pk} = %s AND {status} = %s AND {expires_at} > %s "
           f"RETURNING {session_pk} AS {quote(CLOSED_SESSION_KEY)}), "
           f"decided AS (INSERT INTO {quote(Decision._meta.db_table)} ({decision_columns}) "
           f"SELECT {decision_values} FROM closed RETURNING {column(Decision, 'id')}), "
           f"recorded AS (INSERT INTO {quote(Event._meta.db_table)} ({event_columns}) "
           f"SELECT {event_values} FROM closed){click} "
           f"SELECT decided.{column(Decision, 'id')}, "
           + ("(SELECT written.id FROM written)" if step_insert is not None else "NULL") + f"{answers} FROM decided")
    return sql, tuple(types)


def close_and_record(*, session_pk: int, now: datetime, decision: Decision, event: Event,
                     click: steps.Step | None = None, parts: Sequence[Rows] = ()) -> tuple[int | None, bool]:
    """Close the open, unexpired session `session_pk` and insert `decision` and `event` for it, in one
    statement of the caller's transaction: the new decision's key, or None (nothing written) when the
    session was not open, and whether the statement also wrote the `click` step (only with a decision, and
    where the step recorder lets it: else the caller records it). The channels' `parts` (channel_rows) are
    written with the decision, each told its keys. The instances are left as they are: the caller marks
    them saved."""
    insert = steps.statement_insert(alias=connection.alias, rows="click") if click is not None else None
    sql, types = statement(insert, tuple((part.sql, part.types) for part in parts))
    params = [CancelSession.Status.DECIDED, session_pk, CancelSession.Status.OPEN, now]
    for model, instance in ((Decision, decision), (Event, event)):
        params += [f.get_db_prep_save(getattr(instance, f.attname), connection) for f in _written(model)]
    if insert is not None and click is not None:
        params += [click.at, click.kind, click.source, click.name[:32], click.action[:32], click.reason_code[:64],
                   click.offer_code[:64], json.dumps(list(click.controls)), click.status]
    for part in parts:
        params += part.params
    with connection.cursor() as cursor:
        execute_prepared(cursor, sql=sql, types=types, params=params)
        row = cursor.fetchone()
    if row is None:
        return None, False
    for part, keys in zip(parts, row[2:], strict=True):
        part.written(list(keys))
    return row[0], insert is not None and row[1] is not None
