"""The cancel flow end to end in a real browser: the demo page's snippet, the hosted page, the return.

Headless Chromium opens /demo/ on the live server, whose snippet calls /precancel; #bb-cancel leads
to the hosted page, and each decision lands on /demo/return/<outcome> of the same server, which
checks bb_sig itself. The screenshots (the phone's first screen, the desktop's offers step) land in
test-artifacts/ (docs/screenshot*.png are copies of them).
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import expect

from flows import signing
from flows.models import App, CancelSession, Decision

pytestmark = pytest.mark.browser

HOSTED_PAGE = re.compile(r"/c/[A-Za-z0-9_-]{22,}$")
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def open_hosted_page(page, live_server) -> str:  # noqa: ANN001
    """Click Cancel on the demo account page, as a customer would; return the hosted page's token."""
    page.goto(f"{live_server.url}/demo/")
    page.click("#bb-cancel")
    page.wait_for_url(HOSTED_PAGE)
    page.wait_for_load_state()
    return urlsplit(page.url).path.rsplit("/", 1)[1]


def continue_with_reason(page, code: str) -> None:  # noqa: ANN001
    page.check(f"input[name=reason][value={code}]")
    page.click("[data-bb-action=continue]")
    page.wait_for_selector("[data-bb-offer-card]")


def landing(page, app: App, *, path: str, event: str, token: str) -> dict[str, str]:  # noqa: ANN001
    """The browser is on the business's return page, with a bb_sig that verifies; return the query."""
    parts = urlsplit(page.url)
    assert parts.path == path
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert set(query) == {"bb_event", "bb_account_id", "bb_session", "bb_ts", "bb_sig"}
    session = CancelSession.objects.get(token=token)
    assert query["bb_event"] == event
    assert query["bb_account_id"] == "acct_demo_1"
    assert query["bb_session"] == session.public_id
    assert abs(int(query["bb_ts"]) - timezone.now().timestamp()) < 120
    assert query["bb_sig"] == signing.return_signature(
        secret=app.secret, event=event, account_id="acct_demo_1", session=session.public_id, ts=int(query["bb_ts"])
    )
    # The demo's return page checks the signature on its own too, as a business's page would.
    assert page.get_attribute("#signature", "data-verified") == "true"
    return query


def test_nevermind_goes_back_to_save_return_url_signed_and_recorded_once(page, live_server, demo_app):
    token = open_hosted_page(page, live_server)
    page.click("[data-bb-action=nevermind]")
    page.wait_for_url("**/demo/return/saved?**")

    landing(page, demo_app, path="/demo/return/saved", event="session.nevermind", token=token)
    assert page.get_attribute("#outcome", "data-outcome") == "saved"
    decision = Decision.objects.get()
    assert decision.kind == Decision.Kind.NEVERMIND
    assert decision.session.token == token


def test_accepting_an_offer_goes_to_offer_1_url_signed_and_recorded_once(page, live_server, demo_app):
    token = open_hosted_page(page, live_server)
    continue_with_reason(page, "too-expensive")
    page.click("[data-bb-action=accept][data-bb-offer=discount-30]")
    page.wait_for_url("**/demo/return/offer?**")

    landing(page, demo_app, path="/demo/return/offer", event="offer.accepted", token=token)
    decision = Decision.objects.get()
    assert (decision.kind, decision.offer_code, decision.reason_code) == ("accept", "discount-30", "too-expensive")

    # Back to the hosted page (back button, a bookmarked link): the choice stands, shown with one button
    # that would cancel instead; nothing new is recorded.
    page.goto(f"{live_server.url}/c/{token}")
    page.wait_for_selector("text=You already made a choice")
    assert Decision.objects.count() == 1


def test_cancel_is_one_step_away_and_goes_to_cancel_confirmation_url(page, live_server, demo_app):
    token = open_hosted_page(page, live_server)
    page.check("input[name=reason][value=not-using]")
    page.fill("[name=feedback]", "Busy season is over.")
    page.click("[data-bb-action=cancel]")
    page.wait_for_url("**/demo/return/canceled?**")

    landing(page, demo_app, path="/demo/return/canceled", event="session.canceled", token=token)
    decision = Decision.objects.get()
    assert (decision.kind, decision.reason_code, decision.feedback) == ("cancel", "not-using", "Busy season is over.")


def test_page_works_with_javascript_disabled(new_context, live_server, demo_app):
    base = live_server.url
    answer = requests.post(
        f"{base}/precancel",
        timeout=10,
        json={
            "app_id": "demo",
            "email": "jane@example.com",
            "save_return_url": f"{base}/demo/return/saved",
            "cancel_confirmation_url": f"{base}/demo/return/canceled",
            "offer_1_url": f"{base}/demo/return/offer",
            "account": {"internal_id": "acct_demo_1"},
        },
    ).json()
    assert answer["valid"] is True
    page = new_context(java_script_enabled=False).new_page()

    # Proof that scripts are off: the snippet cannot hijack the demo's Cancel link, so it falls back.
    page.goto(f"{base}/demo/")
    page.click("#bb-cancel")
    page.wait_for_url("**/demo/return/fallback")

    page.goto(answer["url"])
    token = urlsplit(page.url).path.rsplit("/", 1)[1]
    page.check("input[name=reason][value=too-expensive]")
    page.click("[data-bb-action=continue]")
    # Without scripts Continue is a form post: wait for the next page rather than reading the old one.
    expect(page.locator("[data-bb-offer-card]")).to_have_count(2)
    assert page.input_value("input[type=hidden][name=reason]") == "too-expensive"
    page.click("[data-bb-action=cancel]")
    page.wait_for_url("**/demo/return/canceled?**")

    landing(page, demo_app, path="/demo/return/canceled", event="session.canceled", token=token)
    decision = Decision.objects.get()
    assert (decision.kind, decision.reason_code) == ("cancel", "too-expensive")


def tab_to(page, selector: str, limit: int = 30) -> None:  # noqa: ANN001
    """Press Tab until the focused element matches the selector, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with the Tab key")


def assert_focus_is_visible(page) -> None:  # noqa: ANN001
    style = page.evaluate("""() => {
        const s = getComputedStyle(document.activeElement);
        return {style: s.outlineStyle, width: parseFloat(s.outlineWidth)};
    }""")
    assert style["style"] != "none" and style["width"] >= 2, style


def test_keyboard_only_customer_can_pick_a_reason_and_accept_an_offer(page, live_server, demo_app):
    token = open_hosted_page(page, live_server)

    tab_to(page, "input[name=reason][value=too-expensive]")
    assert_focus_is_visible(page)
    page.keyboard.press("Space")
    assert page.is_checked("input[name=reason][value=too-expensive]")
    tab_to(page, "[data-bb-action=continue]")
    assert_focus_is_visible(page)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-bb-offer-card]")

    tab_to(page, "[data-bb-action=accept][data-bb-offer=discount-30]")
    assert_focus_is_visible(page)
    page.keyboard.press("Enter")
    page.wait_for_url("**/demo/return/offer?**")

    landing(page, demo_app, path="/demo/return/offer", event="offer.accepted", token=token)
    assert Decision.objects.get().offer_code == "discount-30"


def assert_no_horizontal_scroll(page) -> None:  # noqa: ANN001
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"page is {widths[0]}px wide in a {widths[1]}px viewport"


def assert_touch_targets_are_large_enough(page) -> None:  # noqa: ANN001
    small = page.evaluate("""() => [...document.querySelectorAll('button, label.reason')]
        .map(e => [e.textContent.trim(), e.getBoundingClientRect().height])
        .filter(([, h]) => h < 44)""")
    assert small == []


def test_phone_layout_fits_the_screen_and_screenshots(new_context, live_server, demo_app, artifacts):
    phone = new_context(**PHONE).new_page()
    open_hosted_page(phone, live_server)
    assert_no_horizontal_scroll(phone)
    assert_touch_targets_are_large_enough(phone)
    # The phone's first screen as the customer sees it: the buttons stick to its bottom, so a full-page
    # capture would show them over the middle of the page.
    phone.screenshot(path=str(artifacts / "screenshot-mobile.png"))
    continue_with_reason(phone, "too-expensive")
    assert_no_horizontal_scroll(phone)
    assert_touch_targets_are_large_enough(phone)
    phone.set_viewport_size({"width": 320, "height": 640})  # WCAG reflow: 320 CSS px, no sideways scroll
    assert_no_horizontal_scroll(phone)

    desktop = new_context().new_page()
    open_hosted_page(desktop, live_server)
    continue_with_reason(desktop, "too-expensive")
    assert_no_horizontal_scroll(desktop)
    # A window as tall as the page, so the sticky buttons sit where they belong, below the offers.
    desktop.set_viewport_size({"width": 1280, "height": desktop.evaluate("document.documentElement.scrollHeight")})
    desktop.screenshot(path=str(artifacts / "screenshot.png"))

    assert (artifacts / "screenshot-mobile.png").stat().st_size > 10_000
    assert (artifacts / "screenshot.png").stat().st_size > 10_000


def test_snippet_locale_fr_shows_the_page_in_french(new_context, live_server, demo_app):
    # The browser asks for English pages but its navigator.language, which the snippet sends as
    # context.locale, is French: the snippet's locale wins.
    page = new_context(locale="fr-FR", extra_http_headers={"Accept-Language": "en"}).new_page()
    token = open_hosted_page(page, live_server)

    assert CancelSession.objects.get(token=token).locale == "fr-FR"
    assert page.get_attribute("html", "lang") == "fr"
    assert page.inner_text("legend") == "Pourquoi souhaitez-vous résilier\u00a0?"
    assert page.inner_text("[data-bb-action=continue]") == "Continuer"
    continue_with_reason(page, "too-expensive")
    assert "Appliquer cette remise" in page.inner_text("[data-bb-offer=discount-30]")


@pytest.fixture
def measured_page(new_context):  # noqa: ANN001, ANN201
    # axe-core is injected as a script, which the customer pages' Content-Security-Policy forbids.
    return new_context(bypass_csp=True).new_page()


def test_unknown_token_shows_a_friendly_not_found_page(measured_page, live_server, axe_violations):
    page = measured_page
    response = page.goto(f"{live_server.url}/c/this-is-not-a-real-cancel-page-token")

    assert response.status == 404
    assert page.inner_text("h1") == "This link doesn’t work"
    assert "choose Cancel again" in page.inner_text("main")
    assert "Traceback" not in page.content()
    assert axe_violations(page) == []


def test_hosted_page_steps_and_expired_page_have_no_serious_accessibility_violations(
    measured_page, live_server, demo_app, axe_violations
):
    page = measured_page
    token = open_hosted_page(page, live_server)
    assert axe_violations(page) == [], "reasons step"
    continue_with_reason(page, "too-expensive")
    assert axe_violations(page) == [], "offers step"

    CancelSession.objects.filter(token=token).update(expires_at=timezone.now() - timedelta(minutes=1))
    response = page.goto(f"{live_server.url}/c/{token}")
    assert response.status == 410
    assert page.inner_text("h1") == "This page has expired"
    assert axe_violations(page) == [], "expired page"
