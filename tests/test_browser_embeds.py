"""The snippet on a business's own page, on another origin than the server: refusals reach the page,
and the hosted page opens in the snippet's modal (display: "modal").

The business's site is a second local HTTP server (tests/business_site.py) at 127.0.0.1, the server
at localhost: another origin and another site, as in production.
"""

from __future__ import annotations

import pytest

from flows.models import App, CancelSession

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
