"""The snippet on a business's own page, on another origin than the server: refusals reach the page,
and the hosted page opens in the snippet's modal (display: "modal").

The business's site is a second local HTTP server (tests/business_site.py) at 127.0.0.1, the server
at localhost: another origin and another site, as in production.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from django.core.signals import request_started

from flows.models import App, CancelSession, Decision
from tests.conftest import AXE_SCRIPT
from tests.test_browser_journey import landing

pytestmark = pytest.mark.browser


def account_data(live_server, **overrides) -> dict:  # noqa: ANN001, ANN003
    data = {
        "app_id": "demo", "email": "jane@example.com", "subscription_id": "sub_demo_1",
        "save_return_url": f"{live_server.url}/demo/return/saved",
        "cancel_confirmation_url": f"{live_server.url}/demo/return/canceled",
        "offer_1_url": f"{live_server.url}/demo/return/offer",
        "account": {"internal_id": "acct_demo_1", "plan": "pro", "value": 49},
    }
    data.update(overrides)
    return data


def allow(app: App, origin: str) -> None:
    app.allowed_origins = origin
    app.save()


def open_account(page, url: str) -> dict:  # noqa: ANN001
    """Open the business's account page and wait for handleDataPromise to settle; return how."""
    page.goto(url)
    page.wait_for_function("() => window.bbResult !== undefined")
    return page.evaluate("() => window.bbResult")


def console_warnings(page) -> list[str]:  # noqa: ANN001
    lines: list[str] = []
    page.on("console", lambda message: lines.append(message.text) if message.type == "warning" else None)
    return lines


def test_an_allowed_origin_gets_the_hosted_page_url(page, live_server, demo_app, business_site):
    allow(demo_app, business_site.url)
    result = open_account(page, business_site.account_page(snippet_server=live_server.url,
                                                           data=account_data(live_server)))
    assert result["resolved"]["valid"] is True
    assert result["resolved"]["url"].startswith(f"{live_server.url}/c/")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"app_id": "no-such-app"}, "No such app:no-such-app"),
    ({"save_return_url": "https://evil.example.net/"},
     "save_return_url is not on this app's allowed return-URL hosts"),
    ({"email": "not-an-email"}, "email is not a valid email address"),
])
def test_a_refusal_resolves_with_the_servers_message_and_the_link_keeps_its_href(
    page, live_server, demo_app, business_site, overrides, message
):
    allow(demo_app, business_site.url)
    warnings = console_warnings(page)
    result = open_account(page, business_site.account_page(snippet_server=live_server.url,
                                                           data=account_data(live_server, **overrides)))

    assert result == {"resolved": {"valid": False, "message": message}}
    ours = [line for line in warnings if line.startswith("Brightback:")]
    assert len(ours) == 1 and message in ours[0] and "/precancel refused" in ours[0]
    page.click("#bb-cancel")
    page.wait_for_url(f"{business_site.url}/fallback-cancel")
    assert not CancelSession.objects.exists()


def test_an_unreachable_server_rejects_and_the_link_keeps_its_href(page, live_server, demo_app, business_site):
    warnings = console_warnings(page)
    url = business_site.account_page(snippet_server=live_server.url, data=account_data(live_server))
    # The browser's own network error, as when the server is down or the address is wrong.
    page.route("**/precancel", lambda route: route.abort("connectionrefused"))
    result = open_account(page, url)

    assert "rejected" in result and "unreachable" in result["rejected"]
    page.click("#bb-cancel")
    page.wait_for_url(f"{business_site.url}/fallback-cancel")
    ours = [line for line in warnings if line.startswith("Brightback:")]
    assert len(ours) == 1 and "/precancel unreachable" in ours[0]


# --- display: "modal" ------------------------------------------------------------------------------

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def open_modal(page, live_server, business_site, demo_app, **overrides):  # noqa: ANN001, ANN003, ANN201
    """The business's account page with display: "modal"; click Cancel; return the hosted page's frame."""
    allow(demo_app, business_site.url)
    url = business_site.account_page(snippet_server=live_server.url,
                                     data=account_data(live_server, display="modal", **overrides))
    assert open_account(page, url)["resolved"]["valid"] is True
    page.click("#bb-cancel")
    frame = page.wait_for_selector("#bb-modal iframe").content_frame()
    frame.wait_for_selector("[data-bb-action=nevermind]")
    assert page.url == url  # the business's page stays where it is under the overlay
    return frame


def box(page, selector: str) -> dict:  # noqa: ANN001
    return page.eval_on_selector(selector, "e => { const r = e.getBoundingClientRect();"
                                           " return {x: r.x, y: r.y, width: r.width, height: r.height}; }")


def test_modal_on_a_phone_fills_the_screen_and_nevermind_takes_the_whole_page_back_signed(
    new_context, live_server, demo_app, business_site
):
    page = new_context(**PHONE).new_page()
    frame = open_modal(page, live_server, business_site, demo_app)
    assert box(page, "#bb-modal iframe") == {"x": 0, "y": 0, "width": 390, "height": 844}
    token = urlsplit(frame.url).path.rsplit("/", 1)[1]

    frame.click("[data-bb-action=nevermind]")
    page.wait_for_url("**/demo/return/saved?**")
    landing(page, demo_app, path="/demo/return/saved", event="session.nevermind", token=token)
    assert Decision.objects.get().kind == Decision.Kind.NEVERMIND


def test_modal_on_a_desktop_is_a_labelled_dialog_with_no_serious_accessibility_violations(
    new_context, live_server, demo_app, business_site, axe_violations
):
    # axe-core is injected as a script, which the hosted page's Content-Security-Policy forbids.
    page = new_context(bypass_csp=True).new_page()
    frame = open_modal(page, live_server, business_site, demo_app)
    dialog, viewport = box(page, "#bb-modal [role=dialog]"), page.viewport_size
    assert dialog["width"] == 640 and dialog["height"] < viewport["height"]
    assert dialog["x"] == (viewport["width"] - 640) / 2
    assert page.get_attribute("#bb-modal [role=dialog]", "aria-modal") == "true"
    assert page.get_attribute("#bb-modal button", "aria-label") == "Close"

    assert axe_violations(frame) == [], "reasons step inside the modal"
    frame.check("input[name=reason][value=too-expensive]")
    frame.click("[data-bb-action=continue]")
    frame.wait_for_selector("[data-bb-offer-card]")
    assert axe_violations(frame) == [], "offers step inside the modal"
    page.add_script_tag(path=str(AXE_SCRIPT))
    outside = page.evaluate("""async () => (await axe.run(document, {iframes: false}))
        .violations.filter(v => ["serious", "critical"].includes(v.impact)).map(v => v.id)""")
    assert outside == [], "the business page with the overlay open"


def test_focus_stays_in_the_modal_and_escape_or_close_leave_without_a_decision(
    page, live_server, demo_app, business_site
):
    frame = open_modal(page, live_server, business_site, demo_app)
    assert page.evaluate("document.activeElement.tagName") == "IFRAME"
    assert page.evaluate("document.querySelector('main').inert") is True
    for _ in range(12):  # Tab through everything: focus never lands on the page behind the overlay
        page.keyboard.press("Tab")
        assert page.evaluate("!!document.activeElement.closest('#bb-modal')"
                             " || document.activeElement === document.body")
    frame.focus("[data-bb-action=nevermind]")
    page.keyboard.press("Escape")  # pressed inside the framed page
    page.wait_for_selector("#bb-modal", state="detached")
    assert page.evaluate("document.querySelector('main').inert") is False
    assert page.evaluate("document.activeElement.id") == "bb-cancel"

    page.click("#bb-cancel")
    page.wait_for_selector("#bb-modal iframe")
    page.focus("#bb-modal button[aria-label=Close]")
    page.keyboard.press("Escape")  # pressed on the business's page (its close button has focus)
    page.wait_for_selector("#bb-modal", state="detached")

    page.click("#bb-cancel")
    page.click("#bb-modal button[aria-label=Close]")
    page.wait_for_selector("#bb-modal", state="detached")
    assert not Decision.objects.exists()
    assert page.evaluate("window.bbLog") == []


def test_the_decision_event_fires_first_and_prevent_default_keeps_the_page(page, live_server, demo_app,
                                                                          business_site):
    frame = open_modal(page, live_server, business_site, demo_app)
    account = page.url
    page.evaluate("window.keepPage = true")
    frame.click("[data-bb-action=cancel]")
    page.wait_for_function("() => window.bbLog.length > 0")
    page.wait_for_selector("#bb-modal", state="detached")

    decision = Decision.objects.get()
    assert decision.kind == Decision.Kind.CANCEL
    assert page.evaluate("window.bbLog") == [{"event": "session.canceled", "url": decision.redirect_url}]
    assert page.url == account


def test_a_decision_without_any_cookie_still_works(new_context, live_server, demo_app, business_site):
    context = new_context()
    page = context.new_page()
    # What each request to the hosted page carried, read in the server: the decision must not depend on a
    # cookie, and none must reach it (as when a browser blocks third-party cookies). Read there rather
    # than by emptying the browser's jar or stripping the header in a request route: both have been seen
    # to leave the browser waiting without end on this machine.
    cookies: list[tuple[str, str]] = []

    def seen(sender, environ, **kwargs):  # noqa: ANN001, ANN003, ANN202
        if environ.get("PATH_INFO", "").startswith("/c/"):
            cookies.append((environ.get("REQUEST_METHOD", ""), environ.get("HTTP_COOKIE", "")))

    request_started.connect(seen)
    try:
        frame = open_modal(page, live_server, business_site, demo_app)
        token = urlsplit(frame.url).path.rsplit("/", 1)[1]
        frame.check("input[name=reason][value=too-expensive]")
        frame.click("[data-bb-action=continue]")
        frame.locator("[data-bb-action=accept][data-bb-offer=discount-30]").wait_for()
        frame.click("[data-bb-action=accept][data-bb-offer=discount-30]")
        page.wait_for_url("**/demo/return/offer?**")
    finally:
        request_started.disconnect(seen)
    landing(page, demo_app, path="/demo/return/offer", event="offer.accepted", token=token)
    assert Decision.objects.get().offer_code == "discount-30"
    assert ("POST", "") in cookies and all(cookie == "" for _, cookie in cookies), cookies


def test_an_origin_the_app_does_not_allow_cannot_frame_the_page(page, live_server, demo_app, business_site):
    frame = open_modal(page, live_server, business_site, demo_app)
    token_path = urlsplit(frame.url).path
    # The App no longer lists this site; a page here frames the hosted page claiming an origin it does list.
    allow(demo_app, "https://somewhere-else.example.com")
    business_site.pages["/evil"] = (f'<!doctype html><title>x</title><iframe id=f src="{live_server.url}{token_path}'
                                    '?bb_display=modal&bb_origin=https://somewhere-else.example.com"></iframe>')
    page.goto(f"{business_site.url}/evil")
    framed = page.wait_for_selector("#f").content_frame()
    # Chromium replaces a frame its policy refuses with its own error page.
    deadline = time.monotonic() + 10
    while not framed.url.startswith("chrome-error://") and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert framed.url.startswith("chrome-error://")


# --- the headless API, from the business's own origin -----------------------------------------------

def test_a_page_of_its_own_describes_the_session_and_cancels_once_across_origins(
    page, live_server, demo_app, business_site
):
    allow(demo_app, business_site.url)
    result = open_account(page, business_site.account_page(snippet_server=live_server.url,
                                                           data=account_data(live_server)))
    token = urlsplit(result["resolved"]["url"]).path.rsplit("/", 1)[1]
    api = f"{live_server.url}/api/v1/pages/{token}"
    answers = page.evaluate("""async (api) => {
        const page = await (await fetch(api)).json();
        const post = () => fetch(api + "/decision", {method: "POST", headers: {"Content-Type": "application/json"},
            body: JSON.stringify({action: "cancel", reason: page.reasons[0].code})}).then(r => r.json());
        return {page, first: await post(), again: await post()};
    }""", api)

    assert answers["page"]["copy"]["nevermind_label"] == "Never mind, keep my subscription"
    assert answers["first"] == answers["again"]
    assert answers["first"]["event"] == "session.canceled"
    decision = Decision.objects.get()
    assert answers["first"]["redirect_url"] == decision.redirect_url and "bb_sig=" in decision.redirect_url
    page.goto(answers["first"]["redirect_url"])
    landing(page, demo_app, path="/demo/return/canceled", event="session.canceled", token=token)


def test_the_demo_opens_the_modal_when_asked(page, live_server, demo_app):
    page.goto(f"{live_server.url}/demo/?display=modal")
    page.wait_for_function("() => window.Brightback !== undefined")
    page.click("#bb-cancel")
    frame = page.wait_for_selector("#bb-modal iframe").content_frame()
    frame.click("[data-bb-action=nevermind]")
    page.wait_for_url("**/demo/return/saved?**")
    assert page.get_attribute("#signature", "data-verified") == "true"
