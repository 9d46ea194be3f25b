"""Logs and tracebacks never carry a request's body or a customer's feedback.

A 500 is forced where no input could cause one (a service replaced by one that raises with the data in
its message, as a database error's DETAIL or a ValueError quoting a value would), and the records the
server writes are read as they leave the process: the console handler's own output.
"""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.test import Client

from brightback_site import logs
from flows import services
from flows.models import App

pytestmark = pytest.mark.django_db

EMAIL = "secret.person@example.com"
FEEDBACK = "I am leaving because of my divorce lawyer bills"


def console() -> logging.StreamHandler:
    """The handler settings.LOGGING gives the root logger: every record the server writes goes through it."""
    return next(h for h in logging.getLogger().handlers
                if isinstance(h, logging.StreamHandler) and isinstance(h.formatter, (logs.JsonFormatter,
                                                                                      logs.TextFormatter)))


@pytest.fixture
def emitted():  # noqa: ANN201
    """What the console handler writes, as it writes it."""
    stream = io.StringIO()
    handler = console()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def written(records: list[logging.LogRecord], formatter: logging.Formatter) -> str:
    handler = console()
    out = []
    for record in records:
        if all(f.filter(record) for f in handler.filters):
            out.append(formatter.format(record))
    return "\n".join(out)


def formatters() -> list[logging.Formatter]:
    return [logs.JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"),
            logs.TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")]


def raising(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201
    # What a careless error message does: quote what it was given.
    raise ValueError(f"could not handle {kwargs!r}")


def test_a_500_in_precancel_logs_no_trace_of_the_body(demo_app: App, snippet_data, monkeypatch, caplog, emitted):  # noqa: ANN001
    monkeypatch.setattr(services, "session_start", raising)
    body = snippet_data(email=EMAIL, custom={"note": FEEDBACK})
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.post("/precancel", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 500
    assert EMAIL not in response.content.decode()
    records = [r for r in caplog.records if r.name == "django.request"]
    assert records and records[0].exc_info is not None, "the 500 must be logged with its traceback"
    output = emitted.getvalue()
    assert "Internal Server Error: /precancel" in output and "ValueError" in output
    for text in [output, *(written(records, f) for f in formatters())]:
        assert "raising" in text  # the traceback is there, frames and all…
        assert EMAIL not in text and FEEDBACK not in text and "acct_42" not in text  # …but not the data


def test_a_500_on_the_hosted_page_logs_no_trace_of_the_feedback(demo_app: App, snippet_data, monkeypatch, caplog):  # noqa: ANN001
    session = services.session_start(app=demo_app, data=snippet_data(email=EMAIL))
    monkeypatch.setattr(services, "decision_record", raising)
    client = Client(raise_request_exception=False)
    page = client.get(f"/c/{session.token}")
    token = page.cookies["csrftoken"].value if "csrftoken" in page.cookies else ""
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.post(f"/c/{session.token}", {"csrfmiddlewaretoken": token, "action": "cancel",
                                                        "reason": "other", "feedback": FEEDBACK})
    assert response.status_code == 500
    records = [r for r in caplog.records if r.name == "django.request"]
    assert records
    for formatter in formatters():
        text = written(records, formatter)
        assert "ValueError" in text and FEEDBACK not in text and EMAIL not in text


def test_a_failing_task_logs_neither_its_arguments_nor_the_exception_text(caplog):
    from billiard.einfo import ExceptionInfo
    from celery import states
    from celery.app.task import Context
    from celery.app.trace import TraceInfo

    from flows.tasks import sessions_expire as task
    try:
        raise RuntimeError(f"boom for {EMAIL}")
    except RuntimeError:
        einfo = ExceptionInfo()
    request = Context({"id": "t-1", "args": [EMAIL], "kwargs": {"feedback": FEEDBACK}, "hostname": "w1"})
    with caplog.at_level(logging.ERROR, logger="celery.app.trace"):
        TraceInfo(states.FAILURE, einfo.exception)._log_error(task, request, einfo)
    records = [r for r in caplog.records if r.name == "celery.app.trace"]
    assert records
    for formatter in formatters():
        text = written(records, formatter)
        assert "flows.sessions_expire" in text and "RuntimeError" in text
        assert EMAIL not in text and FEEDBACK not in text


def test_infrastructure_errors_keep_their_message():
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError as exc:
        text = logs.private_traceback(exc)
    assert text.endswith("ConnectionRefusedError: [Errno 111] Connection refused")


def test_chained_exceptions_are_all_written_without_their_messages():
    try:
        try:
            raise KeyError(EMAIL)
        except KeyError as inner:
            raise RuntimeError(FEEDBACK) from inner
    except RuntimeError as exc:
        text = logs.private_traceback(exc)
    assert "KeyError: (message withheld" in text and "RuntimeError: (message withheld" in text
    assert "direct cause" in text and EMAIL not in text and FEEDBACK not in text


def test_error_reports_hide_local_variables_and_post_values(rf, settings):  # noqa: ANN001
    settings.DEBUG = False
    from django.views.debug import ExceptionReporter

    request = rf.post("/c/x", {"feedback": FEEDBACK})
    try:
        feedback = FEEDBACK  # noqa: F841 - a local variable the report must not show
        raise ValueError("x")
    except ValueError as exc:
        report = ExceptionReporter(request, type(exc), exc, exc.__traceback__).get_traceback_text()
    assert FEEDBACK not in report


def test_a_receipt_that_fails_for_good_logs_no_customer_address(demo_app: App, snippet_data, settings, caplog):  # noqa: ANN001
    from alerts import services as alerts
    from alerts.models import AlertDelivery, AlertSettings
    from alerts.testing import SmtpServer

    settings.BRIGHTBACK_CUSTOMER_EMAILS = []  # the alerts channel's own receipt, not the receipts channel's
    AlertSettings.objects.create(app=demo_app, cancellation_receipt=True)
    session = services.session_start(app=demo_app, data=snippet_data(email=EMAIL))
    services.decision_record(session=session, kind="cancel")
    receipt = AlertDelivery.objects.get(kind=AlertDelivery.Kind.RECEIPT)
    with SmtpServer(answers=[f"550 5.1.1 <{EMAIL}>: Recipient address rejected"]) as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = smtp.host, smtp.port, False
        settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD, settings.EMAIL_TIMEOUT = "", "", 5
        with caplog.at_level(logging.WARNING, logger="alerts.services"):
            alerts.delivery_send(delivery_id=receipt.pk)
    assert AlertDelivery.objects.get(pk=receipt.pk).status == AlertDelivery.Status.FAILED
    records = [r for r in caplog.records if r.name == "alerts.services"]
    assert records and "failed for good" in records[0].getMessage()
    for formatter in formatters():
        assert EMAIL not in written(records, formatter)


def test_every_handler_that_writes_records_writes_them_privately():
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in logging.Logger.manager.loggerDict)]
    for logger in loggers:
        for handler in logger.handlers:
            if type(handler).__module__.startswith("_pytest"):
                continue  # the test runner's own capture
            if isinstance(handler, logging.StreamHandler) and logger.name != "django.server":  # runserver's lines
                assert isinstance(handler.formatter, (logs.JsonFormatter, logs.TextFormatter)), logger.name
                assert any(isinstance(f, logs.PrivateRecords) for f in handler.filters), logger.name
            assert not isinstance(handler, logging.Handler) or type(handler).__name__ != "AdminEmailHandler", \
                logger.name


@pytest.mark.billing
def test_a_billing_action_that_fails_for_good_logs_no_billing_ids(demo_app: App, snippet_data, settings, caplog):  # noqa: ANN001
    from billing import services as billing
    from billing.models import BillingAction
    from billing.testing import fake_billing

    server = fake_billing("stripe")
    try:
        creds = server.credentials()
        settings.BILLING_ALLOWED_API_BASES = [creds.api_base]
        billing.connection_save(app=demo_app, provider=server.slug, api_key=creds.api_key, site=creds.site,
                                api_base=creds.api_base)
        first, second = server.seed(customer_id="cus_secretperson"), server.seed(customer_id="cus_secretperson")
        account = {"internal_id": "acct_42", "plan": "basic", "value": 49, "billing_id": "cus_secretperson"}
        session = services.session_start(app=demo_app, data=snippet_data(subscription_id=None, account=account)
                                         | {"subscription_id": ""})
        services.decision_record(session=session, kind="cancel")
        action = BillingAction.objects.get(session=session)
        with caplog.at_level(logging.INFO, logger="billing"):
            billing.action_execute(action_id=action.pk)
    finally:
        server.close()
    action.refresh_from_db()
    assert action.status == "failed" and "cus_secretperson" in action.last_error  # the row says why…
    records = [r for r in caplog.records if r.name.startswith("billing")]
    assert any("failed for good" in r.getMessage() for r in records)
    for formatter in formatters():
        text = written(records, formatter)
        assert "cus_secretperson" not in text and first not in text and second not in text  # …the log does not
