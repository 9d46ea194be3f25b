"""The admin's own pages: the App's secret shown once, its embed snippet, and a Flow's preview.

The ModelAdmins in flows/admin.py route here; each view parses, calls one service or renderer, and
renders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.admin import ModelAdmin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _

from offers.models import Offer

from . import services, signing
from .models import App, CancelSession, Decision, Flow, readable_text_on
from .views import page_post, render_page

# --- the secret, once ---------------------------------------------------------------------------

def secret_once_response(request: HttpRequest, model_admin: ModelAdmin, *, app: App, secret: str,
                         created: bool) -> HttpResponse:
    """The one page that shows the secret: rendered straight into the response to the POST that made
    it, so it is never stored in the session, a message cookie, a URL or a log."""
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "original": app,
        "title": _("Copy the app's secret now"),
        "secret": secret,
        "created": created,
        "change_url": reverse(f"admin:{app._meta.app_label}_{app._meta.model_name}_change", args=[app.pk]),
        "add_url": reverse(f"admin:{app._meta.app_label}_{app._meta.model_name}_add"),
    }
    response = TemplateResponse(request, "admin/flows/app/secret_once.html", context)
    add_never_cache_headers(response)
    return response


def secret_hint(secret: str) -> str:
    return f"{secret[:6]}…" if secret else ""


# --- the embed snippet --------------------------------------------------------------------------

def server_address(request: HttpRequest) -> str:
    return settings.SITE_URL or request.build_absolute_uri("/").rstrip("/")


def _example_site(app: App) -> str:
    host = next((h for h in app.return_hosts if not h.startswith("*.")), "")
    if not host:
        return "https://app.example.com"
    return f"{'http' if host in ('localhost', '127.0.0.1') else 'https'}://{host}"


def embed_snippets(*, app: App, server: str) -> dict[str, str]:
    """What the business pastes: the page's tags and, for a live App, the code signing its data.

    The secret only ever appears as a placeholder: whoever can read this page must not learn it.
    """
    site = _example_site(app)
    auth_line = ("\n    // From your server: brightback_auth(internal_id, subscription_id, billing_id, email),"
                 " see below.\n    auth: AUTH," if app.is_live else "")
    html = f"""<script src="{server}/js/brightback.js"></script>
<script>
  window.Brightback.handleData({{
    app_id: {json.dumps(app.app_id)},
    email: "customer@example.com",
    subscription_id: "sub_123",
    save_return_url: "{site}/account",
    cancel_confirmation_url: "{site}/account/canceled",
    offer_1_url: "{site}/account/offer-accepted",
    account: {{internal_id: "acct_123", billing_id: "cus_123", plan: "pro", value: 49}},{auth_line}
  }});
</script>
<a id="bb-cancel" href="{site}/account/cancel">Cancel subscription</a>"""
    snippets = {"html": html}
    if app.is_live:
        hours = signing.AUTH_MAX_AHEAD // 3600
        snippets["python"] = f'''import hashlib
import hmac
import os
import time

APP_ID = {json.dumps(app.app_id)}
APP_SECRET = os.environ["BRIGHTBACK_APP_SECRET"]  # the secret shown once when the app was created


def brightback_auth(internal_id: str, subscription_id: str = "", billing_id: str = "", email: str = "",
                    ttl: int = 3600) -> dict:
    """The snippet's auth block for one customer; expires at most {hours} hours ahead.

    Pass the same subscription_id, account.billing_id and email the page sends (billing acts on them);
    with none of them the signature covers the account alone.
    """
    expires = int(time.time()) + ttl
    message = f"{{APP_ID}}:{{internal_id}}:{{expires}}"
    if subscription_id or billing_id or email:
        message += f":{{subscription_id}}:{{billing_id}}:{{email}}"
    digest = hmac.new(APP_SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
    return {{"expires": expires, "hash": digest}}
'''
        snippets["node"] = f'''const crypto = require("crypto");

const APP_ID = {json.dumps(app.app_id)};
const APP_SECRET = process.env.BRIGHTBACK_APP_SECRET; // the secret shown once when the app was created

// The snippet's auth block for one customer; expires at most {hours} hours ahead. Pass the same
// subscription_id, account.billing_id and email the page sends (billing acts on them); with none of
// them the signature covers the account alone.
function brightbackAuth(internalId, {{ subscriptionId = "", billingId = "", email = "" }} = {{}}, ttl = 3600) {{
  const expires = Math.floor(Date.now() / 1000) + ttl;
  let message = `${{APP_ID}}:${{internalId}}:${{expires}}`;
  if (subscriptionId || billingId || email) message += `:${{subscriptionId}}:${{billingId}}:${{email}}`;
  const hash = crypto.createHmac("sha256", APP_SECRET).update(message).digest("hex");
  return {{ expires, hash }};
}}

module.exports = {{ brightbackAuth }};
'''
        snippets["ruby"] = f'''require "openssl"

APP_ID = {json.dumps(app.app_id)}
APP_SECRET = ENV.fetch("BRIGHTBACK_APP_SECRET") # the secret shown once when the app was created

# The snippet's auth block for one customer; expires at most {hours} hours ahead. Pass the same
# subscription_id, account.billing_id and email the page sends (billing acts on them); with none of
# them the signature covers the account alone.
def brightback_auth(internal_id, subscription_id: "", billing_id: "", email: "", ttl: 3600)
  expires = Time.now.to_i + ttl
  message = "#{{APP_ID}}:#{{internal_id}}:#{{expires}}"
  unless [subscription_id, billing_id, email].all? {{ |field| field.to_s.empty? }}
    message += ":#{{subscription_id}}:#{{billing_id}}:#{{email}}"
  end
  {{ expires: expires, hash: OpenSSL::HMAC.hexdigest("SHA256", APP_SECRET, message) }}
end
'''
    return snippets


# --- the preview --------------------------------------------------------------------------------

def preview_session(flow: Flow) -> CancelSession:
    """An unsaved session with sample data: the page renders from it exactly as for a customer."""
    now = timezone.now()
    site = _example_site(flow.app)
    data = {
        "app_id": flow.app.app_id, "email": "jane@example.com", "subscription_id": "sub_preview",
        "save_return_url": f"{site}/account", "cancel_confirmation_url": f"{site}/account/canceled",
        "account": {"internal_id": "acct_preview", "plan": "pro", "value": 49},
    }
    for slot in flow.offers.exclude(snippet_url_slot=None).values_list("snippet_url_slot", flat=True):
        data[f"offer_{slot}_url"] = f"{site}/offer-{slot}"
    return CancelSession(app=flow.app, flow=flow, data=data, email=data["email"],
                         account_internal_id="acct_preview", subscription_id="sub_preview", is_test=True,
                         locale=(flow.language_list or [""])[0],
                         created_at=now, expires_at=now + timedelta(hours=1))


@dataclass
class PreviewOutcome:
    """What a customer's decision would record and where it would send them."""

    kind: str
    event_type: str
    reason_label: str
    feedback: str
    offer: Offer | None
    destination: str


def _destination(session: CancelSession, redirect_url: str) -> str:
    """Name the sample page's URL a decision goes to, as the snippet field it came from."""
    if not redirect_url:
        return _("our own confirmation page (the page passed no return URL for this)")
    target = redirect_url.split("?", 1)[0]
    for key, value in session.data.items():
        if isinstance(value, str) and value.split("?", 1)[0] == target:
            return _("the page's %(key)s (here %(url)s)") % {"key": key, "url": target}
    return _("the offer's configured URL, %(url)s") % {"url": target}


def flow_preview(request: HttpRequest, *, flow: Flow) -> HttpResponse:
    """The hosted page as a customer sees it, both steps; a decision shows its outcome, records nothing."""
    session = preview_session(flow)
    if request.method != "POST":
        return render_page(request, session=session, step="reasons", preview=True)

    def show(kind: str, reason_code: str, feedback: str, offer_code: str) -> HttpResponse:
        plan = services.decision_plan(session=session, kind=kind, reason_code=reason_code, feedback=feedback,
                                      offer_code=offer_code)
        outcome = PreviewOutcome(kind=Decision.Kind(kind).label, event_type=plan.event_type,
                                 reason_label=plan.reason.label if plan.reason else "", feedback=plan.feedback,
                                 offer=plan.offer, destination=_destination(session, plan.redirect_url))
        context = {
            "flow": flow, "outcome": outcome, "preview": True, "preview_url": request.path,
            "change_url": reverse("admin:flows_flow_change", args=[flow.pk]),
            "brand": flow.brand_color, "brand_text": readable_text_on(flow.brand_color),
            "background": flow.background_color,
        }
        return TemplateResponse(request, "admin/flows/flow/preview_outcome.html", context)

    return page_post(request, session=session, decide=show, preview=True)
