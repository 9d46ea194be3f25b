"""Every write of the evidence: flow versions (made, restored) and a session's steps.

A flow's version is its published content: its entry in the App's flow document (copy, branding,
reasons, offers, variants) and the document's `compliance` section when the App has one, exactly as
flow_export writes them. flows.services.flow_content_published hands every write of a flow's content
here (settings.BRIGHTBACK_CONTENT_VERSIONS), inside the writer's transaction; a version is made only
when the content's hash differs from the latest version's, so a save or an import that changed nothing
makes none. A restore imports the old content through document_import, the one way in that validates
it, and so becomes a version of its own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connections, router, transaction
from django.utils import timezone

from brightback_site.statements import execute_prepared
from flows import services as flow_services
from flows import steps as flow_steps
from flows.flow_document import DocumentInvalid, document_export, document_import
from flows.models import Flow

from .models import FlowVersion, Step

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# Document sections that are part of every flow's published content (the rules the page follows).
SHARED_SECTIONS = ("compliance",)

# Who and what a restore is, for the versions the import inside it makes (see attributed()).
_attribution: ContextVar[tuple[User | None, str, int | None] | None] = ContextVar("evidence_attribution",
                                                                                  default=None)


class RestoreRefused(Exception):
    """The version cannot be restored as it stands; the message says why."""


def content_hash(content: Any) -> str:
    """SHA-256 of the canonical JSON (keys sorted, no spaces, UTF-8): the same content, the same hash."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def flow_contents(*, app_pk: int) -> dict[str, dict]:
    """Each flow's published content, by flow name, from one export of its App's document."""
    flow = Flow.objects.select_related("app").filter(app_id=app_pk).first()
    if flow is None:
        return {}
    document = document_export(app=flow.app)
    shared = {key: document[key] for key in SHARED_SECTIONS if key in document}
    return {entry["name"]: {"flow": entry, **shared} for entry in document["flows"]}


@contextmanager
def attributed(*, author: User | None, source: str, restored_from: int | None = None) -> Iterator[None]:
    """Versions made inside the block are by `author` through `source`, whatever the writer says."""
    token = _attribution.set((author, source, restored_from))
    try:
        yield
    finally:
        _attribution.reset(token)


def flow_versions_record(*, flow_ids: Sequence[int], author: User | None = None,
                         source: str = "admin") -> list[FlowVersion]:
    """A new version of each flow whose published content differs from its latest version (or that has
    none yet); the flows that did not change get nothing. Runs in the caller's transaction, with each
    flow's row locked so two writers number their versions one after the other."""
    attribution = _attribution.get()
    restored_from = None
    if attribution is not None:
        author, source, restored_from = attribution
    made = []
    with transaction.atomic():
        flows = list(Flow.objects.select_for_update().filter(pk__in=flow_ids).order_by("pk"))
        contents: dict[int, dict[str, dict]] = {}
        for flow in flows:
            if flow.app_id not in contents:
                contents[flow.app_id] = flow_contents(app_pk=flow.app_id)
            content = contents[flow.app_id].get(flow.name)
            if content is None:
                continue
            digest = content_hash(content)
            latest = FlowVersion.objects.filter(flow=flow).order_by("-number").first()
            if latest is not None and latest.content_hash == digest:
                continue
            version = FlowVersion.objects.create(
                flow=flow, number=(latest.number if latest else 0) + 1, created_at=timezone.now(),
                author=author if author is not None and author.pk else None,
                author_name=(author.get_username() if author is not None else "") or _tool(source),
                source=source if source in FlowVersion.Source.values else FlowVersion.Source.ADMIN,
                restored_from=restored_from, content=content, content_hash=digest)
            flow_services.flow_version_published(flow_id=flow.pk, number=version.number)
            made.append(version)
    return made


def _tool(source: str) -> str:
    return {"import": "flow_import"}.get(source, "")


@transaction.atomic
def flow_version_restore(*, version: FlowVersion, author: User | None) -> FlowVersion:
    """Make the flow's published content what it was in `version`: imported as a document (validated
    whole; nothing changes if it no longer fits the App, say an audience it names was removed), and
    recorded as a new version that says which one it restored. Restoring the content already published
    makes no version and returns the latest."""
    flow = Flow.objects.select_for_update().select_related("app").get(pk=version.flow_id)
    entry = dict(version.content["flow"])
    if entry["name"] != flow.name:
        if Flow.objects.filter(app_id=flow.app_id, name=entry["name"]).exclude(pk=flow.pk).exists():
            raise RestoreRefused(f"Another flow of this app is now named {entry['name']!r}: rename it first.")
        # Flows are matched by name in a document: the flow takes its old name back before the import.
        Flow.objects.filter(pk=flow.pk).update(name=entry["name"])
        flow.name = entry["name"]
    current = document_export(app=flow.app)
    document: dict[str, Any] = {"format_version": current["format_version"], "app": current["app"],
                                "flows": [entry if item["name"] == flow.name else item for item in current["flows"]]}
    for key in SHARED_SECTIONS:
        if key in version.content:
            document[key] = version.content[key]
    try:
        with attributed(author=author, source=FlowVersion.Source.RESTORE, restored_from=version.number):
            document_import(document=document)
    except DocumentInvalid as exc:
        raise RestoreRefused("; ".join(exc.problems)) from None
    return FlowVersion.objects.filter(flow=flow).order_by("-number").first() or version


def steps_record(*, session_pk: int, steps: Sequence[flow_steps.Step]) -> None:
    """settings.BRIGHTBACK_STEP_RECORDER: one request's steps, in one INSERT.

    On PostgreSQL, outside a transaction (the page's own requests), the INSERT commits without waiting
    for the write-ahead log to reach the disk (synchronous_commit off for that one statement): the page
    answers as fast as without it, and a database crash can lose at most the last fraction of a second
    of steps (wal_writer_delay, 200 ms, three times over), never a decision, which commits as before.
    EVIDENCE_STEPS_SYNCHRONOUS=1 waits for the disk like every other write.
    """
    values = [(session_pk, step.at, step.kind, step.source, step.name[:32], step.action[:32], step.reason_code[:64],
               step.offer_code[:64], list(step.controls), step.status) for step in steps]
    connection = connections[router.db_for_write(Step)]
    if connection.vendor != "postgresql" or connection.in_atomic_block or settings.EVIDENCE_STEPS_SYNCHRONOUS:
        Step.objects.bulk_create([Step(**dict(zip(_STEP_FIELDS, row, strict=True))) for row in values])
        return
    params: list = []
    for row in values:
        params += [*row[:8], json.dumps(row[8]), row[9]]
    with connection.cursor() as cursor:
        # Prepared once per connection (brightback_site.statements.execute_prepared): the page's one write
        # is planned once.
        execute_prepared(cursor, sql=_relaxed_insert(len(values), quote=connection.ops.quote_name),
                         types=_STEP_CASTS * len(values), params=params)


class StepsInStatement:
    """settings.BRIGHTBACK_STEP_STATEMENT: steps_record's INSERT as a part of a caller's own statement, for a
    request whose one read can write its step too (flows.selectors.first_view_state: the hosted page's
    most common view costs one round trip) or whose one write can (flows.recording: a decision and the
    click that made it), committed as steps_record's would be (in a transaction: with it)."""

    @staticmethod
    def insert(*, alias: str, rows: str) -> str | None:
        """An INSERT … RETURNING id of the rows the caller's relation `rows` holds (its columns named as
        _STEP_FIELDS). None where the caller's connection (`alias`) is not the one
        steps are written on, or not PostgreSQL: it records them with steps_record instead."""
        connection = connections[router.db_for_write(Step)]
        if connection.alias != alias or connection.vendor != "postgresql":
            return None
        relaxed = not (connection.in_atomic_block or settings.EVIDENCE_STEPS_SYNCHRONOUS)
        return _insert_from(rows, relaxed=relaxed, quote=connection.ops.quote_name)

    @staticmethod
    def withdraw(*, step_id: int) -> None:
        """Take back a step the caller's statement wrote before the request turned out to show another page
        (it records that one with steps_record)."""
        Step.objects.filter(pk=step_id).delete()


@lru_cache(maxsize=8)
def _insert_from(rows: str, *, relaxed: bool, quote: Callable[[str], str]) -> str:
    columns = ", ".join(quote(Step._meta.get_field(name).column) for name in _STEP_FIELDS)  # type: ignore[union-attr]
    # As _relaxed_insert: set_config(..., true) holds for the statement's own transaction only.
    source = f"{rows}, (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed" if relaxed else rows
    return (f"INSERT INTO {quote(Step._meta.db_table)} ({columns}) "
            f"SELECT {', '.join(f'{rows}.{name}' for name in _STEP_FIELDS)} FROM {source} "
            f"RETURNING {quote(Step._meta.pk.column)} AS id")


_STEP_FIELDS = ("session_id", "at", "kind", "source", "name", "action", "reason_code", "offer_code", "controls",
                "status")
_STEP_CASTS = ("bigint", "timestamptz", "text", "text", "text", "text", "text", "text", "jsonb", "smallint")


@lru_cache(maxsize=8)
def _relaxed_insert(count: int, *, quote: Callable[[str], str]) -> str:
    """One INSERT of `count` rows whose own implicit transaction commits asynchronously: set_config(..., true)
    sets synchronous_commit for the statement's transaction only, and it is read when that commits."""
    columns = ", ".join(quote(Step._meta.get_field(name).column) for name in _STEP_FIELDS)  # type: ignore[union-attr]
    row = "(" + ", ".join(f"%s::{cast}" for cast in _STEP_CASTS) + ")"
    return (f"WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)) "
            f"INSERT INTO {quote(Step._meta.db_table)} ({columns}) SELECT rows.* FROM relaxed, "
            f"(VALUES {', '.join([row] * count)}) AS rows")
