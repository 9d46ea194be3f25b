"""The receipt and the way back in a real browser: the customer cancels on the hosted page, the receipt
reaches a real SMTP server (aiosmtpd), and its link, opened in headless Chromium, keeps the subscription
with one click; accessible, without JavaScript, in the customer's language."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from flows.models import CancelSession, Event
from receipts import services
from receipts.models import Receipt
from tests.test_browser_journey import PHONE, open_hosted_page
from tests.workers import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

LINK = re.compile(r"(https?://\S+/r/\S+)")


def receipt_link(smtp, token: str) -> str:  # noqa: ANN001
    session = CancelSession.objects.get(token=token)
    wait_until(lambda: Receipt.objects.filter(session=session).exists(), timeout=10, what="the receipt row")
    receipt = Receipt.objects.get(session=session)
    assert services.receipt_send(receipt_id=receipt.pk).outcome == Receipt.Status.SUCCEEDED
    [accepted] = smtp.accepted
    text = accepted.message.get_body(("plain",)).get_content()
    assert session.public_id in text
    match = LINK.search(text)
    assert match, text
    return match.group(1)


@pytest.mark.parametrize("viewport", [{}, PHONE], ids=["desktop", "phone"])
def test_the_receipts_link_keeps_the_subscription_with_one_click(live_server, demo_app, new_context, smtp, settings,
                                                                 axe_violations, viewport):  # noqa: ANN001
    settings.SITE_URL = live_server.url
    customer = new_context(java_script_enabled=True, **viewport).new_page()
    token = open_hosted_page(customer, live_server)
    customer.check("input[name=reason][value=not-using]")
    customer.click("[data-bb-action=cancel]")
    customer.wait_for_url("**/demo/return/canceled?**")
    link = receipt_link(smtp, token)

    # The email is read later, in a mail client that runs no script: the page must work without it.
    reader = new_context(java_script_enabled=False, **viewport).new_page()
    reader.goto(link)
    button = reader.locator("[data-bb-action=reactivate]")
    expect(button).to_be_visible()
    assert reader.evaluate("() => document.documentElement.lang") == "en"
    scripted = new_context(bypass_csp=True, **viewport).new_page()  # axe is a script our pages forbid
    scripted.goto(link)
    assert axe_violations(scripted) == []

    button.click()
    expect(reader.get_by_role("heading", name="Your subscription continues")).to_be_visible()
    assert reader.locator("[data-bb-action=reactivate]").count() == 0
    reader.go_back()
    reader.reload()  # a second visit (or a replayed click) records nothing new
    session = CancelSession.objects.get(token=token)
    assert Event.objects.filter(session=session, type=Event.Type.SESSION_REACTIVATED).count() == 1
    assert axe_violations(scripted) == []


def test_the_way_back_page_is_in_the_customers_language(live_server, demo_app, new_context, smtp, settings,
                                                       axe_violations):  # noqa: ANN001
    settings.SITE_URL = live_server.url
    customer = new_context(locale="fr-FR").new_page()
    customer.goto(f"{live_server.url}/demo/")
    customer.click("#bb-cancel")
    customer.wait_for_selector("input[name=reason]")
    token = customer.url.rsplit("/", 1)[1]
    customer.check("input[name=reason][value=not-using]")
    customer.click("[data-bb-action=cancel]")
    customer.wait_for_url("**/demo/return/canceled?**")
    link = receipt_link(smtp, token)

    page = new_context(locale="de-DE", bypass_csp=True).new_page()  # the session's language wins over the browser's
    page.goto(link)
    expect(page.locator("[data-bb-action=reactivate]")).to_have_text("Garder mon abonnement")
    assert axe_violations(page) == []
