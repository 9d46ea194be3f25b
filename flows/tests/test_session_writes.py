"""What each /precancel and decision writes besides the session's row: the session table's indexes.

A database that has served for a while holds far more sessions than the tests make; there, every index
entry written at a random place is a page PostgreSQL copies whole into its log after each checkpoint. So
the table keeps no index that another already serves, and the page token's index grows at its end.
"""

from __future__ import annotations

import json
import time

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from flows import ids, selectors
from flows.models import CancelSession

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL's catalogue and plans")


def _indexes(table: str) -> list[tuple[str, list[str], list[str]]]:
    """(name, columns, operator classes) of each index on `table`."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT i.relname,
                   ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(attnum, n)
                         JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum ORDER BY k.n),
                   ARRAY(SELECT o.opcname FROM unnest(x.indclass) WITH ORDINALITY c(oid, n)
                         JOIN pg_opclass o ON o.oid = c.oid ORDER BY c.n)
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
            WHERE t.relname = %s AND x.indpred IS NULL""", [table])
        return [(name, list(columns), list(classes)) for name, columns, classes in cursor.fetchall()]


@postgresql_only
def test_no_session_index_is_served_by_another():
    # Before: unique=True gave the token and public_id a second index each (varchar_pattern_ops, for LIKE
    # queries nothing makes), and the App's foreign key one that (app, created_at) already serves.
    indexes = _indexes(CancelSession._meta.db_table)
    redundant = [(name, other) for name, columns, _ in indexes for other, wider, _ in indexes
                 if other != name and wider[:len(columns)] == columns and not name.endswith("_pkey")]
    assert redundant == []
    assert not [name for name, _, classes in indexes if any("pattern_ops" in c for c in classes)]


def _served_by_another(table: str) -> list[tuple[str, str]]:
    """Indexes of `table` whose columns start another index's: every entry written to them is written twice."""
    indexes = _indexes(table)
    return [(name, other) for name, columns, _ in indexes for other, wider, _ in indexes
            if other != name and wider[:len(columns)] == columns and not name.endswith("_pkey")]


@postgresql_only
def test_a_decision_and_its_event_write_no_index_another_serves():
    # Before: each foreign key to the session had an index of its own, which the unique (session, kind) and
    # (session, type) constraints' indexes already serve; every decision wrote both.
    from flows.models import Decision, Event

    assert _served_by_another(Decision._meta.db_table) == []
    assert _served_by_another(Event._meta.db_table) == []


@postgresql_only
def test_the_page_finds_its_session_through_the_unique_token_index(demo_app, snippet_data):
    response = Client().post("/precancel", data=json.dumps(snippet_data()), content_type="application/json")
    token = response.json()["url"].rsplit("/", 1)[1]
    from django.utils import timezone

    from flows import steps

    insert = steps.statement_insert(alias=connection.alias, rows="step")
    assert insert is not None
    for sql, params in [(selectors._first_view_query(), [timezone.now(), token]),
                        # The same read where it also writes the view's step (EXPLAIN alone runs nothing).
                        (selectors._first_view_step_query(insert), [timezone.now(), token, "[]"])]:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")  # a test table is small enough for a scan
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "session_token_unique" in plan


def test_a_session_token_cannot_be_made_twice(demo_app, snippet_data):
    from django.db import IntegrityError, transaction

    response = Client().post("/precancel", data=json.dumps(snippet_data()), content_type="application/json")
    session = CancelSession.objects.get(token=response.json()["url"].rsplit("/", 1)[1])
    with pytest.raises(IntegrityError), transaction.atomic():
        CancelSession.objects.create(app=session.app, flow=session.flow, data={}, token=session.token,
                                     expires_at=session.expires_at)


def test_page_tokens_sort_by_creation_and_keep_256_random_bits():
    earlier = [ids.page_token(1_700_000_000.000 + i / 1000) for i in range(50)]
    later = ids.page_token()
    assert sorted(earlier) == earlier and later > earlier[-1]
    # Lowercase hex first, so every collation sorts them the same; then 32 random bytes, URL-safe.
    assert all(t[:11] == f"{1_700_000_000_000 + i:011x}" for i, t in enumerate(earlier))
    assert len({t[11:] for t in earlier}) == 50 and all(len(t) == 11 + 43 for t in earlier)
    assert all(selectors.TOKEN.match(t) for t in [*earlier, later])
    assert abs(int(later[:11], 16) - time.time() * 1000) < 60_000


@postgresql_only
def test_the_database_sorts_page_tokens_by_creation(demo_app):
    # Whatever the database's collation: the index's order is the one that must follow creation.
    flow = demo_app.flows.get()
    made = [CancelSession.objects.create(app=demo_app, flow=flow, data={}, expires_at=timezone.now(),
                                         token=ids.page_token(1_700_000_000 + n * 0.001 + n * 86400))
            for n in range(20)]
    in_the_database = list(CancelSession.objects.order_by("token").values_list("pk", flat=True))
    assert in_the_database == [session.pk for session in made]


def test_the_decisions_update_reads_the_flows_version_by_its_key_alone(demo_app, snippet_data):
    """The UPDATE that closes a session (and the first view's) notes the flow's version with a subquery by
    the flow's key: no join of the App (Flow's default ordering), no sort, and the version is still noted."""
    from django.test.utils import CaptureQueriesContext

    from flows import services

    client = Client()
    response = client.post("/precancel", data=json.dumps(snippet_data()), content_type="application/json")
    assert response.status_code == 200
    session = selectors.session_by_token(CancelSession.objects.get().token)
    assert session is not None and session.opened_at is None
    with CaptureQueriesContext(connection) as queries:
        services.decision_record(session=session, kind="cancel", reason_code="too-expensive")
    if connection.vendor == "postgresql":  # the UPDATE is the first part of the decision's one statement
        from flows import recording

        assert any(q["sql"].startswith("WITH closed AS") for q in queries.captured_queries)
        update = recording.statement()[0].split("), decided AS")[0]
    else:
        [update] = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "flows_cancelsession"')]
    assert '"flows_flow"' in update and '"flows_app"' not in update and "ORDER BY" not in update
    session.refresh_from_db()
    assert session.status == "decided" and session.opened_at is not None
    assert session.flow_version == session.flow.version


@postgresql_only
@pytest.mark.parametrize(("table", "column", "index"), [
    ("flows_cancelsession", "variant_id", "session_variant"),
    ("flows_cancelsession", "audience_id", "session_audience"),
    ("flows_decision", "offer_id", "decision_offer")])
def test_optional_keys_are_indexed_only_where_set_and_still_found_by_their_index(demo_app, table, column, index):
    # Before: a full index of each, with an entry for every session's NULL audience and variant (most
    # sessions have neither) and every decision's NULL offer (all but accepted offers).
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid "
                       "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(x.indkey) "
                       "WHERE t.relname = %s AND a.attname = %s", [table, column])
        definitions = [row[0] for row in cursor.fetchall()]
        assert len(definitions) == 1 and index in definitions[0] and f"WHERE ({column} IS NOT NULL)" in definitions[0]
        # A lookup by the key (a report's filter, the SET NULL of a deletion) is served by it.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN SELECT 1 FROM {table} WHERE {column} = %s", [1])
        assert index in "\n".join(row[0] for row in cursor.fetchall())


@postgresql_only
def test_a_precancel_writes_its_session_with_a_prepared_insert_as_the_orm_would(demo_app, snippet_data, settings):
    from django.test.utils import CaptureQueriesContext

    from conftest import prepared_runs

    settings.DB_PREPARED_STATEMENTS = True
    client = Client()
    with CaptureQueriesContext(connection) as first:
        assert client.post("/precancel", data=json.dumps(snippet_data(email="first@example.com")),
                           content_type="application/json").status_code == 200
    [insert] = [q["sql"] for q in first if q["sql"].startswith('INSERT INTO "flows_cancelsession"')]
    assert "first@example.com" not in insert and "$1" in insert  # the values sent apart from it
    (_, runs_before), = prepared_runs(insert)
    with CaptureQueriesContext(connection) as second:
        client.post("/precancel", data=json.dumps(snippet_data(email="second@example.com")),
                    content_type="application/json")
    assert insert in [q["sql"] for q in second] and prepared_runs(insert) == [(False, runs_before + 1)]

    # The row is the one the ORM writes for the same session (each column, its key and id aside).
    written = CancelSession.objects.get(email="second@example.com")
    copy = CancelSession.objects.get(pk=written.pk)
    copy.pk, copy.token, copy.public_id = None, ids.page_token(), ids.session_id()
    copy.save(force_insert=True)
    fields = [f.attname for f in CancelSession._meta.concrete_fields if f.attname not in ("id", "token", "public_id")]
    assert ([getattr(written, f) for f in fields]
            == [getattr(CancelSession.objects.get(pk=copy.pk), f) for f in fields])
    assert written.compliance and written.data["email"] == "second@example.com"
    assert written.expires_at > written.created_at
