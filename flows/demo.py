"""/demo/: a pretend customer account page using the snippet, and the pages its return URLs land on.

It shows a developer the whole journey on one machine, and it is what the browser test drives.
"""

from __future__ import annotations

import hmac
import json
import re

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from . import selectors, signing

DEMO_APP_ID = "demo"
# /demo/?subscription_id=sub_… plays the account page of that subscription, so a demo App connected to a
# billing system's test account acts on a real test subscription.
SUBSCRIPTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
COUNTRY = re.compile(r"[A-Z]{2}")
REGION = re.compile(r"[A-Z]{2}-[A-Z0-9]{1,3}")


@require_GET
def demo_page(request: HttpRequest) -> HttpResponse:
    app = selectors.app_by_public_id(DEMO_APP_ID)
    if app is None:
        raise Http404("Run `python manage.py demo_setup` first.")
    base = request.build_absolute_uri("/").rstrip("/")
    data = {
        "app_id": app.app_id,
        "email": "jane@example.com",
        "first_name": "Jane",
        "last_name": "Doe",
        "subscription_id": _subscription_id(request),
        "save_return_url": base + reverse("demo-return", args=["saved"]),
        "cancel_confirmation_url": base + reverse("demo-return", args=["canceled"]),
        "offer_1_url": base + reverse("demo-return", args=["offer"]),
        "account": {"internal_id": "acct_demo_1", "plan": "pro", "plan_term": "monthly", "value": 49},
        "custom": {"seats": 3},
    }
    # /demo/?region=US-MN (or ?country=DE) plays a customer there, under the App's compliance rules.
    for key, pattern in (("country", COUNTRY), ("region", REGION)):
        if pattern.fullmatch(request.GET.get(key, "")):
            data["account"][key] = request.GET[key]
    if request.GET.get("display") == "modal":  # /demo/?display=modal: the hosted page in an overlay here
        data["display"] = "modal"
    # One call, run by the page and shown on it: what runs is exactly what a developer reads.
    # "<" is escaped so no value can close the script element.
    call = "window.Brightback.handleData(" + json.dumps(data, indent=2).replace("<", "\\u003c") + ");"
    return render(request, "flows/demo.html", {"base": base, "call": call})


def _subscription_id(request: HttpRequest) -> str:
    asked = request.GET.get("subscription_id", "")
    return asked if SUBSCRIPTION_ID.match(asked) else "sub_demo_1"


@require_GET
def demo_return(request: HttpRequest, outcome: str) -> HttpResponse:
    app = selectors.app_by_public_id(DEMO_APP_ID)
    if app is None or outcome not in {"saved", "canceled", "offer"}:
        raise Http404
    params = {k: request.GET.get(k, "") for k in ("bb_event", "bb_account_id", "bb_session", "bb_ts", "bb_sig")}
    verified = False
    if params["bb_ts"].isascii() and params["bb_ts"].isdigit():
        expected = signing.return_signature(secret=app.secret, event=params["bb_event"],
                                            account_id=params["bb_account_id"], session=params["bb_session"],
                                            ts=int(params["bb_ts"]))
        verified = hmac.compare_digest(expected, params["bb_sig"])
    return render(request, "flows/demo_return.html", {"outcome": outcome, "params": params, "verified": verified})
