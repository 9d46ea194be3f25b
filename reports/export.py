"""The sessions CSV: every session of a report's filter with its decision, one line each.

On PostgreSQL the database writes the lines itself (`COPY (SELECT ...) TO STDOUT WITH CSV`, read through
psycopg's copy) and they are passed on in blocks as they arrive: no Python object per cell, so a
large range streams at tens of thousands of rows a second, and the header leaves before the query runs.
Elsewhere (SQLite, `make run`'s default) the rows come from the database's cursor and Python's csv module
writes them (`python_lines`). Both give the same bytes (reports/tests/test_export_copy.py holds them to
it): the columns of EXPORT_HEADER, times in ISO 8601 UTC as Python's `isoformat()` writes them, Python's
csv quoting (only where a delimiter, a quote or a line break needs it; quotes doubled), CRLF line ends,
customers' and staff's text kept from running as a spreadsheet formula, and `value_kept` valued by
reports.value to the cent.

Nearly all of the export's time is PostgreSQL's work per row (Python's is a list append per row and a few
C calls per block), so the SQL is written for it: each cell's text in one cheap expression (an empty text
found by ascii() rather than compared, one to_char per time, whole months of value multiplied rather than
divided and rounded), no JIT compilation for the statement (its cost made PostgreSQL compile the
expressions, which took longer than it saved). One column for the whole line was tried and was slower:
concat() costs more than COPY's own writing of each cell.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.backends.utils import CursorDebugWrapper
from django.db.models import F
from django.db.models.fields.json import KT

from flows.models import CancelSession
from offers.models import Offer

from . import selectors, value

# Spreadsheet programs run cells starting with these as formulas: a customer's feedback must stay text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# The columns whose text comes from customers or staff; the others are ours (ids, codes, numbers, times).
FREE_TEXT = {"flow", "audience", "email", "account_internal_id", "plan", "plan_term", "reason_label", "feedback"}
BLOCK_BYTES = 64 * 1024  # what the response is handed at a time


def cell(text: object) -> str:
    """A customer's or staff member's text as a cell that a spreadsheet shows rather than runs."""
    text = "" if text is None else str(text)
    return "'" + text if text.startswith(FORMULA_START) else text


class _Echo:
    def write(self, line: str) -> str:
        return line


def header_line() -> str:
    return csv.writer(_Echo()).writerow(selectors.EXPORT_HEADER)


def python_lines(report: selectors.ReportFilter) -> Iterator[str]:
    """The lines after the header, written by Python's csv module from the database's cursor."""
    writer = csv.writer(_Echo())
    free_text = [i for i, name in enumerate(selectors.EXPORT_HEADER) if name in FREE_TEXT]
    for row in selectors.sessions_for_export(report):
        for i in free_text:
            row[i] = cell(row[i])
        yield writer.writerow(row)


# --- the database's own CSV ---------------------------------------------------------------------

# The columns the inner query selects (as c_<name>), then each export column as SQL over them.
_SOURCE = {
    "id": "id", "public_id": "public_id", "created_at": "created_at", "opened_at": "opened_at",
    "app_id": "app__app_id", "is_test": "is_test", "flow": "flow__name", "audience": "audience__name",
    "variant": "variant__code", "email": "email", "account": "account_internal_id",
    "monthly": "monthly_value", "currency": "app__currency", "shown": "offers_shown", "kind": "decision__kind",
    "decided_at": "decision__created_at", "reason_code": "decision__reason_code",
    "reason_label": "decision__reason_label", "feedback": "decision__feedback",
    "offer_code": "decision__offer_code", "offer_id": "decision__offer_id", "offer_kind": "decision__offer__kind",
    "discount_percent": "decision__offer__discount_percent",
}


def _iso(column: str) -> str:
    """datetime.isoformat() of an aware UTC datetime: microseconds only when there are some. One to_char
    (whatever the connection's DateStyle), the six zeros of a whole second then taken out."""
    return (f"replace(to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'), "
            "'.000000+', '+')")


def _text(column: str) -> str:
    """A text as its cell: NULL when empty (COPY writes an empty text as "", the csv module as nothing).
    ascii() is the first character's code, 0 for an empty text: one cheap call where NULLIF's comparison of
    texts took a quarter of the export's time over all the columns."""
    return f"CASE ascii({column}) WHEN 0 THEN NULL ELSE {column} END"


def _cell(column: str) -> str:
    """A customer's or staff's text as its cell: NULL when empty, a leading ' where a spreadsheet would run
    it as a formula (the same ascii() as _text, compared once per starting character)."""
    guarded = " ".join(f"WHEN {ord(c)} THEN '''' || {column}" for c in FORMULA_START)
    return f"CASE ascii({column}) WHEN 0 THEN NULL {guarded} ELSE {column} END"


def _value_kept() -> str:
    """value.amount_for(monthly_value, months) in integers: cents = monthly x 100 x num / den, rounded half to
    even, where num/den is the session's offer's months (the `m` join); '-0.00' where Decimal writes it."""
    product = "(e.c_monthly * 100 * m.num)"
    quotient = f"div({product}, m.den)"
    rest = f"abs({product} - {quotient} * m.den)"
    cents = (f"({quotient} + sign({product}) * CASE WHEN 2 * {rest} > m.den THEN 1 "
             f"WHEN 2 * {rest} = m.den THEN abs(mod({quotient}, 2)) ELSE 0 END)")
    # Whole months (Nevermind: the window's one month; a pause's): the product itself, with its two decimals.
    whole = "m.den = 1 AND m.num > 0"
    return (f"CASE WHEN e.c_kind IN ('nevermind', 'accept') AND e.c_monthly IS NOT NULL AND m.num IS NOT NULL "
            f"THEN CASE WHEN {whole} THEN (e.c_monthly * m.num)::text "
            f"WHEN {cents} = 0 AND ((e.c_monthly < 0) <> (m.num < 0)) THEN '-0.00' "
            f"ELSE ({cents} * 0.01)::text END END")


def _columns() -> list[str]:
    """SQL for each EXPORT_HEADER column, in its order; NULL for an empty cell. Times, numbers and 'yes' are
    never empty texts: only the rows' own texts go through _text or _cell."""
    shown = ("NULLIF(CASE WHEN jsonb_typeof(e.c_shown) = 'array' THEN "
             "array_to_string(ARRAY(SELECT jsonb_array_elements_text(e.c_shown)), ' ') END, '')")
    return [
        _text("e.c_public_id"), _iso("e.c_created_at"), _iso("e.c_opened_at"),
        _text("e.c_app_id"), "CASE WHEN e.c_is_test THEN 'yes' END", _cell("e.c_flow"), _cell("e.c_audience"),
        _text("e.c_variant"), _cell("e.c_email"), _cell("e.c_account"), _cell("e.c_plan"), _cell("e.c_plan_term"),
        "e.c_monthly::text", _text("e.c_currency"), shown, _text("e.c_kind"), _iso("e.c_decided_at"),
        _text("e.c_reason_code"), _cell("e.c_reason_label"), _cell("e.c_feedback"), _text("e.c_offer_code"),
        "CASE WHEN e.c_offer_kind = 'discount' THEN e.c_discount_percent::text END",
        _value_kept(),
    ]


def _months_by_offer(report: selectors.ReportFilter) -> list[tuple[int | None, int, int]]:
    """(offer pk, or None for no offer; numerator; denominator) of what each offer the report's sessions may
    have taken leaves the customer paying over the window (reports.value), for the SQL to look up."""
    offers = Offer.objects.all()
    if report.app_id is not None:
        offers = offers.filter(flow__app_id=report.app_id)
    if report.app_ids is not None:
        offers = offers.filter(flow__app_id__in=report.app_ids)
    found: list[tuple[int | None, int, int]] = []
    for pk, *terms in offers.order_by().values_list("pk", *value.TERMS):
        months = value.months_paid_exact(confirmed=False, **dict(zip(("offer_kind", *value.TERMS[1:]), terms,
                                                                     strict=True)))
        found.append((pk, months.numerator, months.denominator))
    months = value.months_paid_exact(offer_kind=None, confirmed=False)
    return [*found, (None, months.numerator, months.denominator)]


def copy_statement(report: selectors.ReportFilter, months: list[tuple[int | None, int, int]]) -> tuple[str, list]:
    """The COPY statement and its parameters (bound by psycopg on our side: COPY takes none itself)."""
    inner = (CancelSession.objects.filter(report.sessions()).order_by()
             .values(**{f"c_{name}": F(source) for name, source in _SOURCE.items()},
                     c_plan=KT("data__account__plan"), c_plan_term=KT("data__account__plan_term")))
    inner_sql, params = inner.query.sql_with_params()
    # Each offer's months as a literal list (a few rows per App); an offer made after this list was read is
    # not in it, and its sessions' value_kept is left blank rather than guessed.
    lookup = ", ".join("(%s::bigint, %s::numeric, %s::numeric)" for _ in months)
    values = [part for row in months for part in row]
    columns = ", ".join(_columns())
    statement = (f"COPY (SELECT {columns} FROM ({inner_sql}) AS e "
                 f"LEFT JOIN (VALUES {lookup}) AS m(offer_id, num, den) "
                 f"ON m.offer_id IS NOT DISTINCT FROM e.c_offer_id "
                 f"ORDER BY e.c_id) TO STDOUT WITH (FORMAT csv)")
    return statement, [*params, *values]


def csv_lines(rows: list[bytes]) -> bytes:
    """COPY's rows (one message each, ending in a bare LF) as the csv module ends its lines, with CRLF. A
    line break inside a quoted cell stays as it is: only where the block has no LF but the rows' own is
    one replace() enough; otherwise each row's last byte is replaced."""
    block = b"".join(rows)
    if not block.endswith(b"\n"):
        raise RuntimeError("COPY sent a message that does not end a row")
    if block.count(b"\n") == len(rows):
        return block.replace(b"\n", b"\r\n")
    if any(row[-1:] != b"\n" for row in rows):
        raise RuntimeError("COPY sent a message that does not end a row")
    return b"\r\n".join(row[:-1] for row in rows) + b"\r\n"


def copy_blocks(report: selectors.ReportFilter, months: list[tuple[int | None, int, int]]) -> Iterator[bytes]:
    """The lines after the header, as PostgreSQL's COPY writes them, in blocks of about BLOCK_BYTES (rows
    gathered as they come, each block's line ends made CRLF at once: csv_lines)."""
    try:
        statement, params = copy_statement(report, months)
    except EmptyResultSet:  # a reader granted no App: nothing to send
        return
    with transaction.atomic(), connection.cursor() as cursor:
        # A large range costs enough for PostgreSQL to compile the statement's expressions (JIT): that delayed
        # the first line by a quarter of a second under load and made the whole export slower, not faster.
        cursor.execute("SET LOCAL jit = off")
        raw: Any = cursor.cursor
        # Django's query log (and its test tools) see the COPY as they see any query.
        logged = cursor.debug_sql(statement, params) if isinstance(cursor, CursorDebugWrapper) else nullcontext()
        with logged, raw.copy(statement, params) as copy:
            rows: list[bytes] = []
            size = 0
            for row in copy:
                rows.append(row)
                size += len(row)
                if size >= BLOCK_BYTES:
                    yield csv_lines(rows)
                    rows, size = [], 0
            if rows:
                yield csv_lines(rows)


def csv_stream(report: selectors.ReportFilter, *, use_copy: bool | None = None) -> Iterator[str | bytes]:
    """The whole file: the header at once, then the lines (COPY on PostgreSQL unless `use_copy` is False).
    The offers' months are read here, before the header leaves, so that after it the sessions are one query."""
    if use_copy is None:
        use_copy = connection.vendor == "postgresql"
    months = _months_by_offer(report) if use_copy else []

    def lines() -> Iterator[str | bytes]:
        yield header_line()
        if use_copy:
            yield from copy_blocks(report, months)
        else:
            yield from python_lines(report)

    return lines()
