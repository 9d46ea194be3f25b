"""A cancel in the browser puts a help-desk-ready email in a real SMTP server.

Headless Chromium cancels on the demo page, exactly as in test_browser_journey; the live server records
the decision, and its alert is sent through Django's SMTP backend to aiosmtpd on 127.0.0.1. Celery runs
the send in the web process here (task_always_eager) so the test needs no broker; the worker path is
covered by alerts/tests/test_faults.py. The rendered HTML part is saved as test-artifacts/alert-email.png
(docs/alert-email.png is a copy of it).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from alerts import services
from alerts.models import AlertDelivery
from brightback_site.celery import app as celery_app
from flows.models import Decision
from tests.test_browser_journey import open_hosted_page

pytestmark = pytest.mark.browser


@pytest.fixture
def eager_celery() -> Iterator[None]:
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = previous


@pytest.fixture
def smtp(smtp, settings):  # noqa: ANN001, ANN201
    """The shared SMTP server, with the sender this journey's emails name."""
    settings.DEFAULT_FROM_EMAIL = "Acme cancel flow <alerts@acme.example>"
    return smtp


def test_a_cancel_in_the_browser_puts_a_help_desk_ready_email_in_the_smtp_server(
        page, new_context, live_server, demo_app, smtp, eager_celery, settings, admin_client, artifacts):
    settings.SITE_URL = live_server.url
    services.rule_create(app=demo_app, events=["session.canceled"], recipients=["help@acme.zendesk.com"])

    token = open_hosted_page(page, live_server)
    page.check("input[name=reason][value=missing-feature]")
    page.fill("[name=feedback]", "We need <SSO> & audit logs before renewing.")
    page.click("[data-bb-action=cancel]")
    page.wait_for_url("**/demo/return/canceled?**")
    # The help desk's alert, beside the customer's own receipt (the receipts channel's).
    [message] = [m for m in smtp.wait_for(2, timeout=15) if m["To"] == "help@acme.zendesk.com"]

    decision = Decision.objects.get(session__token=token)
    session = decision.session
    assert message["From"] == "Acme cancel flow <alerts@acme.example>"
    assert message["To"] == "help@acme.zendesk.com"
    assert message["Reply-To"] == "jane@example.com"
    assert message["Subject"] == "[Test] Canceled: jane@example.com (pro, monthly, 49)"
    assert message["X-Cancel-Flow-Event"] == "session.canceled"
    assert message["X-Cancel-Flow-Session"] == session.public_id
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    admin_url = f"{live_server.url}/admin/flows/cancelsession/{session.pk}/change/"
    for line in ["Canceled: jane@example.com (pro, monthly, 49)", "Email: jane@example.com",
                 "Subscription: sub_demo_1", "Reason: It’s missing a feature I need (missing-feature)",
                 "Feedback: We need <SSO> & audit logs before renewing.", "  internal_id: acct_demo_1",
                 "  plan: pro", "  plan_term: monthly", "  value: 49", "  seats: 3", "  locale: en-US",
                 f"  url: {live_server.url}/demo/", f"Session in the admin: {admin_url}",
                 f"Session: {session.public_id} · Event: {session.events.get().id}",
                 "Replying to this email writes to the customer."]:
        assert line in text.splitlines(), line
    assert "We need &lt;SSO&gt; &amp; audit logs before renewing." in html
    assert f'href="{admin_url}"' in html
    assert admin_client.get(urlsplit(admin_url).path).status_code == 200
    delivery = AlertDelivery.objects.get()
    assert (delivery.status, delivery.attempt_count) == (AlertDelivery.Status.SUCCEEDED, 1)

    # The HTML part as a mail client shows it: the README's picture.
    viewer = new_context(viewport={"width": 720, "height": 900}, java_script_enabled=False).new_page()
    viewer.set_content(html)
    assert viewer.locator("h1").inner_text() == "Canceled: jane@example.com (pro, monthly, 49)"
    shot = artifacts / "alert-email.png"
    viewer.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
