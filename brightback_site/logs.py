"""Logging that never carries a customer's data: request bodies, feedback, emails.

Our own log calls pass ids, never payloads. What remains are the records others make for us:
- a traceback's exception messages can quote anything (a ValueError with the value, a database error's
  DETAIL with the row): the formatters print each exception's type and frames, and its message only for
  the few types whose messages are about our infrastructure (an OSError's errno and text, a broker or
  Redis connection failure);
- Django's `django.request` record carries the request itself: it becomes "METHOD /path" (no query);
- Celery's task failure and retry records carry the exception's text, the traceback and the task's
  arguments: the text and traceback are written as above, the arguments withheld;
- Django's error reports (the DEBUG page's twin sent to ADMINS) show every frame's variables and the
  POST: with DEBUG off, PrivateExceptionReporterFilter hides all of them.
"""

from __future__ import annotations

import logging
import traceback
from types import TracebackType
from typing import Any

from django.views.debug import SafeExceptionReporterFilter
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

WITHHELD = "(message withheld: it may quote customer data)"
# Exceptions whose messages describe our infrastructure, never a request's content.
SAFE_MESSAGES = {
    "redis.exceptions.ConnectionError",
    "redis.exceptions.TimeoutError",
    "kombu.exceptions.OperationalError",
    "billiard.exceptions.SoftTimeLimitExceeded",
    "billiard.exceptions.TimeLimitExceeded",
}

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


def _name(exc: BaseException) -> str:
    kind = type(exc)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def exception_message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"[Errno {exc.errno}] {exc.strerror}"  # never the file name or address it concerned
    if f"{type(exc).__module__}.{type(exc).__qualname__}" in SAFE_MESSAGES:
        return str(exc)
    return WITHHELD


def _lines(exc: BaseException, seen: set[int]) -> list[str]:
    seen.add(id(exc))
    out: list[str] = []
    if exc.__cause__ is not None and id(exc.__cause__) not in seen:
        out += _lines(exc.__cause__, seen)
        out.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif exc.__context__ is not None and not exc.__suppress_context__ and id(exc.__context__) not in seen:
        out += _lines(exc.__context__, seen)
        out.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    if exc.__traceback__ is not None:
        out.append("Traceback (most recent call last):\n")
        out += traceback.format_list(traceback.extract_tb(exc.__traceback__))
    out.append(f"{_name(exc)}: {exception_message(exc)}\n")
    return out


def private_traceback(exc: BaseException | None) -> str:
    """The traceback as Python prints it (chained exceptions too), each message only when it is safe."""
    if exc is None:
        return ""
    return "".join(_lines(exc, set())).rstrip("\n")


def exception_summary(exc: BaseException) -> str:
    return f"{_name(exc)}: {exception_message(exc)}"


class _Private:
    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return private_traceback(ei[1] if ei else None)

    def format(self, record: logging.LogRecord) -> str:
        # Another handler may have formatted the record first (Django's console handler under DEBUG) and
        # left its whole traceback, messages included, in exc_text, which logging would reuse.
        kept = record.exc_text
        record.exc_text = None
        try:
            return super().format(record)  # type: ignore[misc]
        finally:
            record.exc_text = kept


class TextFormatter(_Private, logging.Formatter):
    pass


class JsonFormatter(_Private, _JsonFormatter):
    def formatException(self, ei: Any) -> str:  # noqa: N802
        return _Private.formatException(self, ei)


class PrivateRecords(logging.Filter):
    """Rewrites the records Django and Celery make with a request or a task's data in them."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if request is not None and hasattr(request, "method") and hasattr(request, "path"):
            record.request = f"{request.method} {request.path}"
        if record.name.startswith("celery") and isinstance(record.args, dict) and "exc" in record.args:
            exc = record.exc_info[1] if record.exc_info else None
            safe = dict(record.args, exc=exception_summary(exc) if exc is not None else WITHHELD)
            for name in ("args", "kwargs"):
                if name in safe:
                    safe[name] = "(withheld)"
            if "traceback" in safe:
                safe["traceback"] = private_traceback(exc)
            record.args = safe
            if isinstance(getattr(record, "data", None), dict):
                record.data = safe
        return True


class PrivateExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's error reports with DEBUG off show no frame's variables and no POST value: any may hold a
    customer's data (the /precancel body, feedback)."""

    def get_post_parameters(self, request: Any) -> dict:
        if not self.is_active(request) or request is None:
            return super().get_post_parameters(request)
        return {name: self.cleansed_substitute for name in request.POST}

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        if not self.is_active(request):
            return super().get_traceback_frame_variables(request, tb_frame)
        return {name: self.cleansed_substitute for name in tb_frame.f_locals}.items()
