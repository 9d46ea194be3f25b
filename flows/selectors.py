from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal, NamedTuple, TypeVar

from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.db.models import Field, Model
from django.utils import timezone

from brightback_site.statements import execute_prepared

from . import steps
from .models import App, AppAccess, CancelSession, Decision, Event, Flow, Reason, Variant

logger = logging.getLogger(__name__)

T = TypeVar("T")

# What ids.page_token() makes; anything else is unknown without asking the database.
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def app_by_public_id(app_id: str) -> App | None:
    """The App by its public id, from this process's memory while it is current.

    Current means: the App's version in the shared cache (Redis in production) is the one the copy was
    read under. Every write of an App moves that version once it commits (app_changed, called by the
    App's save and delete signals and by updates that bypass them), so a change made in any process is
    seen by all of them on their next request. Without a cache that answers, the database is asked.
    Callers must not modify the App they get: it is shared by this process's requests.
    """
    version = _app_version(app_id)
    cached = _apps.get(app_id)
    if version is not None and cached is not None and cached[0] == version:
        return cached[1]
    app = App.objects.filter(app_id=app_id).first()
    if app is not None and version is not None:
        if len(_apps) >= _APPS_CACHE_SIZE:
            _apps.clear()
        _apps[app_id] = (version, app)
    return app


_apps: dict[str, tuple[str, App]] = {}
_APPS_CACHE_SIZE = 1000


def _app_version_key(app_id: str) -> str:
    return f"flows:app-version:{app_id}"


# Inside app_versions_read_once(): the versions read so far, by App.
_versions_read: ContextVar[dict[str, str | None] | None] = ContextVar("flows_app_versions_read", default=None)


@contextmanager
def app_versions_read_once() -> Iterator[None]:
    """Within the block, each App's version is asked of the shared cache once: one request or one event
    that reads several of an App's parts (app_by_public_id, routing, each channel's configuration) needs
    one round trip to the cache, not one per part. Blocks nest; the outermost one decides."""
    token = _versions_read.set({}) if _versions_read.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _versions_read.reset(token)


def _app_version(app_id: str) -> str | None:
    read = _versions_read.get()
    if read is not None and app_id in read:
        return read[app_id]
    version = _app_version_now(app_id)
    if read is not None:
        read[app_id] = version
    return version


def _app_version_now(app_id: str) -> str | None:
    key = _app_version_key(app_id)
    try:
        version = cache.get(key)
        if version is None:
            cache.add(key, secrets.token_hex(8), timeout=None)
            version = cache.get(key)
    except Exception:  # noqa: BLE001 - no shared cache, no shared copy: read the database
        logger.warning("app cache unavailable; reading %s from the database", app_id, exc_info=True)
        return None
    return version


def app_part(*, app_id: str, part: str, load: Callable[[], T]) -> T:
    """Something read from the App's published content or configuration (its routing: flows, audiences,
    variants and offers; a channel's webhook endpoints, billing connection or alert rules), from this
    process's memory while the App's version stands, else `load()`-ed and kept under that version.

    The version is read before `load` runs, so a copy loaded while another process's write committed is
    kept under the version that write retires. Every write of what a part reads must call app_changed
    (the models' save and delete signals do; queryset updates call it themselves). Without a cache that
    answers, `load` runs every time. Callers must not modify what they get: it is shared.
    """
    version = _app_version(app_id)
    if version is None:
        return load()
    entry = _app_parts.get(app_id)
    if entry is None or entry[0] != version:
        if len(_app_parts) >= _APPS_CACHE_SIZE:
            _app_parts.clear()
        entry = _app_parts[app_id] = (version, {})
    parts = entry[1]
    if part not in parts:
        parts[part] = load()
    return parts[part]


_app_parts: dict[str, tuple[str, dict[str, Any]]] = {}


def forget_app_copies() -> None:
    """Drop every copy this process keeps (the tests start each one clean)."""
    _apps.clear()
    _app_parts.clear()


def app_changed(*, app_id: str) -> None:
    """Retire every process's copy of the App and of its parts (app_part), once the current transaction
    commits; this process's own copies at once, so its next read in the transaction sees the change."""

    def bump() -> None:
        _apps.pop(app_id, None)
        _app_parts.pop(app_id, None)
        try:
            cache.set(_app_version_key(app_id), secrets.token_hex(8), timeout=None)
        except Exception:  # noqa: BLE001
            logger.warning("app cache unavailable; other processes may serve %s unchanged", app_id, exc_info=True)

    _apps.pop(app_id, None)
    _app_parts.pop(app_id, None)
    read = _versions_read.get()
    if read is not None:
        read.pop(app_id, None)
    transaction.on_commit(bump)


def app_row_changed(*, pk: int | None) -> None:
    """app_changed for the App with this primary key (what the content and channel models point at)."""
    app_id = App.objects.filter(pk=pk).values_list("app_id", flat=True).first() if pk is not None else None
    if app_id is not None:
        app_changed(app_id=app_id)


def retire_app_on_write(model: type[Model], *, app_pk: Callable[[Any], int | None]) -> None:
    """Retire the App's copies (app_changed) whenever a row of `model` is saved or deleted; `app_pk`
    names the App a row belongs to."""
    from django.db.models.signals import post_delete, post_save

    def retire(sender: type[Model], instance: Model, **kwargs: Any) -> None:
        app_row_changed(pk=app_pk(instance))

    uid = f"flows.app_changed.{model._meta.label_lower}"
    post_save.connect(retire, sender=model, dispatch_uid=f"{uid}.save", weak=False)
    post_delete.connect(retire, sender=model, dispatch_uid=f"{uid}.delete", weak=False)


def app_pk_of_flow(flow_id: int | None) -> int | None:
    return Flow.objects.filter(pk=flow_id).values_list("app_id", flat=True).first() if flow_id else None


def session_by_token(token: str) -> CancelSession | None:
    """The session with its app, flow and decision (if any), in one indexed query.

    Every view of the hosted page starts here. Django's ORM spends longer building this four-table
    query than PostgreSQL spends answering it, so the SQL is built once per process from the models'
    own metadata (new columns join in by themselves) and the rows become model instances through the
    fields' own converters, exactly as the ORM would make them.
    """
    if not TOKEN.match(token):
        return None
    sql, models_and_fields = _session_query(connection.vendor)
    row = _fetch_by_token(sql, token)
    if row is None:
        return None
    instances: list[Model | None] = []
    offset = 0
    for model, fields, converters in models_and_fields:
        values = list(row[offset:offset + len(fields)])
        offset += len(fields)
        for i, column, field_converters in converters:
            for convert in field_converters:
                values[i] = convert(values[i], column, connection)  # as the ORM calls them: with the column
        pk = values[0]
        instances.append(None if pk is None else model.from_db(connection.alias, [f.attname for f in fields], values))
    session, app, flow, variant, decision = instances
    assert isinstance(session, CancelSession) and flow is not None  # never NULL: the session's and its flow's
    if offset < len(row):
        flow._row_version = row[offset]  # type: ignore[attr-defined] # see flow_version()
    CancelSession.app.field.set_cached_value(session, app)
    CancelSession.flow.field.set_cached_value(session, flow)
    CancelSession.variant.field.set_cached_value(session, variant)
    CancelSession.decision.related.set_cached_value(session, decision)
    if decision is not None:
        Decision.session.field.set_cached_value(decision, session)  # type: ignore[attr-defined]
    return session


# PostgreSQL plans the session's query in several times the time it takes to run it, so each connection
# prepares it once (execute_prepared).
def _fetch_by_token(sql: str, token: str) -> tuple | None:
    """The one row `sql` finds for the token, through a statement prepared once per connection where
    PostgreSQL and DB_PREPARED_STATEMENTS allow."""
    with connection.cursor() as cursor:
        execute_prepared(cursor, sql=sql, types=("text",), params=[token])
        return cursor.fetchone()


# Which version of the flow's row this is, however it was written (flow_version): every UPDATE writes a new
# row version, stamped with the writing transaction (xmin, the optimistic-concurrency token Npgsql and EF Core
# use) at a new place (ctid, which tells apart two versions one transaction wrote).
_FLOW_ROW_VERSION = "f.xmin::text || ':' || f.ctid::text"


def flow_version(flow: Flow) -> object:
    """Something that changes whenever the flow's row does, however it was written: on PostgreSQL the row
    version (_FLOW_ROW_VERSION), read with the session by session_by_token and first_view_state; elsewhere,
    or for a flow read another way, all its columns."""
    version = getattr(flow, "_row_version", None)
    return version if version is not None else tuple(getattr(flow, f.attname) for f in Flow._meta.concrete_fields)


class FirstView(NamedTuple):
    """What the hosted page's first view needs of a session, its flow and its App: no more."""

    is_open: bool  # open, not expired and undecided
    session_pk: int
    opened: bool  # the page was opened before (services.session_opened)
    locale: str
    title: str
    intro: str
    support_email: str
    flow_id: int
    flow_version: str
    flow_updated_at: datetime
    compliance: dict  # the rules the session started under (CancelSession.compliance)
    step_id: int | None = None  # the view's step, when the read wrote it (first_view_state's expected_steps)
    step_expected: int | None = None  # which of the expected steps it wrote (its place in their array)


def first_view_state(token: str, *, now: datetime | None = None,
                     expected_steps: str | None = None) -> FirstView | Literal[False] | None:
    """The session's FirstView in one narrow query, without building a model: PostgreSQL only.

    The hosted page's most common view is a customer opening their page, which page_cache already holds
    rendered; this reads only what tells whether that copy still answers. False when no session has the
    token; None on other databases, where session_by_token answers.

    With `expected_steps` (page_cache.expected_steps: the controls the copies served so far showed, by
    flow row version and rules), the same statement writes the view's step for a session that is open and
    was opened before, when its flow version and rules are among them (flows.steps.statement_insert), and the
    answer names that step: the page's read and its one write are one round trip. Should that write fail,
    the session is read without it (the view then records its step as any other page does).
    """
    if connection.vendor != "postgresql":
        return None
    if not TOKEN.match(token):
        return False
    now = now or timezone.now()
    row = None
    insert = steps.statement_insert(alias=connection.alias, rows="step") if expected_steps else None
    if insert is not None:
        try:
            with connection.cursor() as cursor:
                execute_prepared(cursor, sql=_first_view_step_query(insert),
                                 types=("timestamptz", "text", "jsonb"), params=[now, token, expected_steps])
                row = cursor.fetchone()
        except DatabaseError:
            if connection.in_atomic_block:
                raise
            logger.exception("the first view's step was not written with its read")
            insert = None
    if insert is None:
        with connection.cursor() as cursor:
            execute_prepared(cursor, sql=_first_view_query(),
                             types=("timestamptz", "text"), params=[now, token])
            row = cursor.fetchone()
        row = row and (*row, None, None)
    if row is None:
        return False
    is_open, opened, locale, title, intro, flow_id, version, updated_at, support_email, session_pk, compliance, \
        step_id, step_expected = row
    return FirstView(is_open=is_open, session_pk=session_pk, opened=opened, locale=locale, title=title, intro=intro,
                     support_email=support_email, flow_id=flow_id, flow_version=version, flow_updated_at=updated_at,
                     compliance=_json(compliance), step_id=step_id, step_expected=step_expected)


@lru_cache(maxsize=4)
def _first_view_step_query(insert_sql: str) -> str:
    """The first view's read (_first_view_query's columns) and, by `insert_sql` (steps.statement_insert), the
    view's step, for an open session opened before whose flow version and rules the expected steps name;
    then the step's id and which of the expected steps it wrote (its place in their array), or NULLs.
    Parameters: now, the token, the expected steps (a JSON array)."""
    columns = _first_view_columns()
    named = ", ".join(f"{column} AS c{i}" for i, column in enumerate(columns))
    # c0 is_open, c1 opened, c5 the flow's id, c6 its row version, c9 the session's id, c10 compliance
    # (_first_view_columns' order).
    return (f"WITH page AS (SELECT {named}, clock.now AS now {_first_view_from()}), "
            # Each entry's values taken as they are (jsonb_to_recordset would print and parse them again).
            f"expected AS (SELECT (e->>'place')::int AS place, (e->>'flow')::bigint AS flow, e->>'version' AS version, "
            f"e->'compliance' AS compliance, e->'controls' AS controls FROM jsonb_array_elements(%s::jsonb) AS e), "
            f"step AS (SELECT page.c9 AS session_id, page.now AS at, '{steps.Kind.VIEW}'::text AS kind, "
            f"'{steps.Source.PAGE}'::text AS source, 'reasons'::text AS name, ''::text AS action, "
            f"''::text AS reason_code, ''::text AS offer_code, expected.controls AS controls, 200 AS status, "
            f"expected.place FROM page JOIN expected ON expected.flow = page.c5 "
            f"AND expected.version = page.c6 AND expected.compliance = page.c10 "
            f"WHERE page.c0 AND page.c1 LIMIT 1), "
            f"written AS ({insert_sql}) "
            f"SELECT {', '.join(f'page.c{i}' for i in range(len(columns)))}, written.id, (SELECT place FROM step) "
            f"FROM page LEFT JOIN written ON true")


def _json(value: Any) -> dict:
    """A jsonb column as psycopg returns it (decoded), or its text where the driver left it undecoded."""
    if isinstance(value, str):
        import json

        value = json.loads(value)
    return value if isinstance(value, dict) else {}


@lru_cache(maxsize=1)
def _first_view_query() -> str:
    """FirstView's columns; parameters: now, the token."""
    return f"SELECT {', '.join(_first_view_columns())} {_first_view_from()}"


def _first_view_from() -> str:
    # The clock (the first parameter) the session is open by.
    return f"FROM (SELECT %s::timestamptz AS now) clock, {_session_joins().removeprefix('FROM ')}"


@lru_cache(maxsize=1)
def _first_view_columns() -> tuple[str, ...]:
    """What FirstView holds, worked out by the database where it can be (fewer values to read)."""
    def column(model: type[Model], alias: str, name: str) -> str:
        field = model._meta.get_field(name)
        assert isinstance(field, Field) and field.column
        return f"{alias}.{connection.ops.quote_name(field.column)}"

    def variant_or_flow(name: str) -> str:
        # As CancelSession.title and .intro read them: the variant's copy, else the flow's.
        return f"COALESCE(NULLIF({column(Variant, 'v', name)}, ''), {column(Flow, 'f', name)})"

    is_open = (f"({column(CancelSession, 's', 'status')} = '{CancelSession.Status.OPEN}' "
               f"AND {column(Decision, 'd', 'id')} IS NULL AND clock.now < {column(CancelSession, 's', 'expires_at')})")
    return (is_open, f"({column(CancelSession, 's', 'opened_at')} IS NOT NULL)", column(CancelSession, "s", "locale"),
            variant_or_flow("title"), variant_or_flow("intro"), column(Flow, "f", "id"), _FLOW_ROW_VERSION,
            column(Flow, "f", "updated_at"), column(App, "a", "support_email"), column(CancelSession, "s", "id"),
            column(CancelSession, "s", "compliance"))


@lru_cache(maxsize=4)
def _session_query(vendor: str) -> tuple[str, list[tuple[type[Model], list[Field], list[tuple[int, Any, list]]]]]:
    def quote(name: str | None) -> str:
        return connection.ops.quote_name(str(name))

    tables = [(CancelSession, "s"), (App, "a"), (Flow, "f"), (Variant, "v"), (Decision, "d")]
    columns, models_and_fields = [], []
    for model, alias in tables:
        fields = [model._meta.pk, *(f for f in model._meta.concrete_fields if not f.primary_key)]
        columns += [f"{alias}.{quote(f.column)}" for f in fields]
        converters = []
        for i, f in enumerate(fields):
            column = f.get_col(alias)
            found = connection.ops.get_db_converters(column) + f.get_db_converters(connection)
            if found:
                converters.append((i, column, found))
        models_and_fields.append((model, fields, converters))
    if vendor == "postgresql":
        columns.append(_FLOW_ROW_VERSION)
    return f"SELECT {', '.join(columns)} {_session_joins()}", models_and_fields


def _session_joins() -> str:
    def quote(name: str | None) -> str:
        return connection.ops.quote_name(str(name))

    return (f"FROM {quote(CancelSession._meta.db_table)} s "
            f"JOIN {quote(App._meta.db_table)} a ON a.{quote(App._meta.pk.column)} = s.{quote('app_id')} "
            f"JOIN {quote(Flow._meta.db_table)} f ON f.{quote(Flow._meta.pk.column)} = s.{quote('flow_id')} "
            f"LEFT JOIN {quote(Variant._meta.db_table)} v "
            f"ON v.{quote(Variant._meta.pk.column)} = s.{quote('variant_id')} "
            f"LEFT JOIN {quote(Decision._meta.db_table)} d "
            f"ON d.{quote(Decision._meta.get_field('in_force_for').column)} = s.{quote(CancelSession._meta.pk.column)} "
            f"WHERE s.{quote('token')} = %s")


def reasons_for_flow(*, flow_id: int) -> list[Reason]:
    return list(Reason.objects.filter(flow_id=flow_id, is_active=True))


# A flow's published reasons, kept in each process's memory and stamped with the flow's updated_at: the
# session's own query already reads the flow (select_related), so knowing the copy is current costs
# nothing. Every staff write of a flow's content moves updated_at (services.flow_content_changed, called
# by the admin and the importer), which retires the copy in every process at once.
_reasons_cache: dict[int, tuple[datetime, list[Reason]]] = {}
_REASONS_CACHE_SIZE = 2000


def published_reasons(*, flow: Flow) -> list[Reason]:
    kept = published_reasons_kept(flow_id=flow.pk, updated_at=flow.updated_at)
    if kept is not None:
        return kept
    reasons = reasons_for_flow(flow_id=flow.pk)
    if len(_reasons_cache) >= _REASONS_CACHE_SIZE:
        _reasons_cache.clear()
    _reasons_cache[flow.pk] = (flow.updated_at, reasons)
    return reasons


def published_reasons_kept(*, flow_id: int, updated_at: datetime) -> list[Reason] | None:
    """The flow's published reasons if this process keeps them for this very version of the flow."""
    cached = _reasons_cache.get(flow_id)
    return cached[1] if cached is not None and cached[0] == updated_at else None


def forget_published_content(*, flow_ids: list[int]) -> None:
    for flow_id in flow_ids:
        _reasons_cache.pop(flow_id, None)


def offers_on_page(session: CancelSession, reason_code: str) -> list:
    """The offers the page shows this customer for a reason ("" for none): the flow's for that reason, those
    the session may see (routing, audiences, caps), cut to what the customer's rules allow (compliance:
    "one" shows the first, "none" none)."""
    from compliance.rules import limit_offers  # offers and compliance depend on flows; these reads go the other way
    from offers.selectors import offers_for_flow, offers_for_reason

    shown = [offer for offer in offers_for_reason(list(offers_for_flow(flow_id=session.flow_id)), reason_code or None)
             if session.shows_offer(offer.code)]
    return limit_offers(shown, session.compliance or {})


def apps_allowing_origin(origin: str) -> bool:
    origin = origin.rstrip("/").lower()
    return any(origin in app.origins for app in App.objects.filter(allowed_origins__icontains=origin))


DECISION_EVENT_TYPES = (Event.Type.SESSION_NEVERMIND, Event.Type.OFFER_ACCEPTED, Event.Type.OFFER_EMAIL_REQUESTED,
                        Event.Type.SESSION_CANCELED)


def decision_event_type(decision: Decision) -> str:
    """The event a decision recorded (`session.nevermind`, `offer.accepted`, …), as its return URL's bb_event."""
    # A session may have a save and a later cancel (flows.later_cancel): each decision has its own event.
    types = ([Event.Type.SESSION_CANCELED] if decision.kind == Decision.Kind.CANCEL
             else [t for t in DECISION_EVENT_TYPES if t != Event.Type.SESSION_CANCELED])
    recorded = (Event.objects.filter(session_id=decision.session_id, type__in=types)
                .values_list("type", flat=True).first())
    return recorded or ""


# --- staff access per App -------------------------------------------------------------------------

def staff_app_ids(user: Any, *, editing: bool = False) -> frozenset[int] | None:
    """The pks of the Apps a staff user may read (or, `editing`, change); None means every App.

    Superusers reach every App; anyone else only the Apps granted to them (flows.AppAccess), so a user
    with no grant sees nothing. Django's permissions still decide what they may do within those Apps.
    """
    if not getattr(user, "is_active", False):
        return frozenset()
    if user.is_superuser:
        return None
    grants = AppAccess.objects.filter(user_id=user.pk)
    if editing:
        grants = grants.filter(role=AppAccess.Role.EDITOR)
    return frozenset(grants.values_list("app_id", flat=True))
