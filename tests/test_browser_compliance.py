"""Rules per region on the hosted page, in a real browser: Cancel on the first screen of every step, no offer
for a customer whose region forbids them, and a later Cancel that is always honoured.

The demo App imports the presets (flows/fixtures/demo-flow.json): US-MN shows no offers. /demo/?region=…
plays a customer there.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from flows.models import CancelSession, Decision, Event
from tests.test_browser_journey import HOSTED_PAGE, PHONE, continue_with_reason, landing, open_hosted_page

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 800}}
SAVE_CONTROLS = "[data-bb-action=continue], [data-bb-action=nevermind], [data-bb-action=accept]"
PAGE_BUDGET = 150 * 1024


def assert_cancel_on_the_first_screen(page) -> None:  # noqa: ANN001
    """The Cancel button is inside the viewport without scrolling, and no smaller than any save control."""
    assert page.evaluate("() => window.scrollY") == 0
    found = page.evaluate("""(saves) => {
        const box = e => { const r = e.getBoundingClientRect(); return {top: r.top, bottom: r.bottom,
                                                                        width: r.width, height: r.height}; };
        const cancel = document.querySelectorAll('[data-bb-action=cancel]');
        return {count: cancel.length, cancel: cancel.length ? box(cancel[0]) : null,
                tag: cancel.length ? cancel[0].tagName : null, viewport: window.innerHeight,
                saves: [...document.querySelectorAll(saves)].map(box)};
    }""", SAVE_CONTROLS)
    assert found["count"] == 1 and found["tag"] == "BUTTON", found
    cancel = found["cancel"]
    assert cancel["top"] >= 0 and cancel["bottom"] <= found["viewport"], found
    for save in found["saves"]:
        assert cancel["width"] >= save["width"] - 0.5 and cancel["height"] >= save["height"] - 0.5, found


def page_bytes(page) -> int:  # noqa: ANN001
    """What the browser loaded for the page: its HTML and every resource it fetched (axe, injected inline by the
    test, is not one)."""
    return page.evaluate("""() => performance.getEntriesByType("navigation")
        .concat(performance.getEntriesByType("resource")).reduce((sum, e) => sum + e.decodedBodySize, 0)""")


@pytest.mark.parametrize("device", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_cancel_is_on_the_first_screen_of_every_step(new_context, live_server, demo_app, axe_violations, device):
    # axe-core is injected as a script, which the customer pages' Content-Security-Policy forbids.
    page = new_context(bypass_csp=True, **device).new_page()
    token = open_hosted_page(page, live_server)
    assert_cancel_on_the_first_screen(page)
    assert page.inner_text("[data-bb-action=cancel]") == "Cancel at the end of the billing period"
    assert axe_violations(page) == [], "reasons step"
    assert page_bytes(page) < PAGE_BUDGET

    continue_with_reason(page, "too-expensive")
    page.evaluate("() => window.scrollTo(0, 0)")
    assert_cancel_on_the_first_screen(page)
    assert axe_violations(page) == [], "offers step"
    assert page_bytes(page) < PAGE_BUDGET

    page.click("[data-bb-action=accept][data-bb-offer=discount-30]")
    page.wait_for_url("**/demo/return/offer?**")
    page.goto(f"{live_server.url}/c/{token}")  # the link again: the earlier choice, and one button that cancels
    page.wait_for_selector("text=You already made a choice")
    assert_cancel_on_the_first_screen(page)
    assert axe_violations(page) == [], "earlier choice"
    assert page_bytes(page) < PAGE_BUDGET


def test_a_minnesota_customer_sees_no_offer(page, live_server, demo_app):
    page.goto(f"{live_server.url}/demo/?region=US-MN")
    page.click("#bb-cancel")
    page.wait_for_url(HOSTED_PAGE)
    token = urlsplit(page.url).path.rsplit("/", 1)[1]
    assert CancelSession.objects.get(token=token).compliance["offers"] == "none"
    page.check("input[name=reason][value=too-expensive]")
    page.click("[data-bb-action=continue]")
    page.wait_for_selector("text=We’re sorry to see you go.")
    expect(page.locator("[data-bb-offer-card]")).to_have_count(0)
    assert_cancel_on_the_first_screen(page)

    page.click("[data-bb-action=cancel]")
    page.wait_for_url("**/demo/return/canceled?**")
    assert Decision.objects.get().kind == "cancel"


def test_a_cancel_in_a_second_tab_after_an_accepted_offer_ends_canceled_once(new_context, live_server, demo_app):
    context = new_context()
    first = context.new_page()
    token = open_hosted_page(first, live_server)
    second = context.new_page()  # the same page, opened in another tab before any choice
    second.goto(f"{live_server.url}/c/{token}")

    continue_with_reason(first, "too-expensive")
    first.click("[data-bb-action=accept][data-bb-offer=discount-30]")
    first.wait_for_url("**/demo/return/offer?**")

    second.click("[data-bb-action=cancel]")  # the other tab's Cancel: it shows what was chosen first
    second.wait_for_selector("text=You already made a choice")
    assert "30% off for the next 3 months" in second.inner_text("main")
    expect(second.locator("button")).to_have_count(1)
    assert list(Decision.objects.values_list("kind", flat=True)) == ["accept"]
    form = {field: second.input_value(f"input[name={field}]") for field in ("csrfmiddlewaretoken", "confirm")}

    second.click("[data-bb-action=cancel]")
    second.wait_for_url("**/demo/return/canceled?**")
    landing(second, demo_app, path="/demo/return/canceled", event="session.canceled", token=token)
    session = CancelSession.objects.get(token=token)
    assert session.decision.kind == "cancel"
    assert sorted(Decision.objects.values_list("kind", flat=True)) == ["accept", "cancel"]
    assert Event.objects.filter(session=session, type="session.canceled").count() == 1

    # The confirmation posted again (a double click, a replay): nothing new, the same way out.
    replay = context.request.post(f"{live_server.url}/c/{token}", form={**form, "action": "cancel"},
                                  max_redirects=0)
    assert replay.status == 303
    assert urlsplit(replay.headers["location"]).path == "/demo/return/canceled"
    assert Decision.objects.count() == 2
    assert Event.objects.filter(session=session).count() == 2
