"""The headless API's OpenAPI description (served with the rest at /api/schema/)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

_text = {"type": "string"}
ERROR = {"type": "object", "required": ["error"], "properties": {"error": _text}}

PAGE = {
    "type": "object",
    "required": ["session", "copy", "brand", "reasons", "offers", "cancel", "compliance", "decision"],
    "properties": {
        "session": {"type": "object", "required": ["id", "open", "expires_at", "language"], "properties": {
            "id": _text, "open": {"type": "boolean"}, "expires_at": {"type": "string", "format": "date-time"},
            "language": {"type": "string", "description": "the language every text below is in"}}},
        "copy": {"type": "object", "properties": {k: _text for k in (
            "title", "intro", "reasons_prompt", "feedback_prompt", "offers_heading", "nevermind_label",
            "support_email")}},
        "brand": {"type": "object", "properties": {"logo_url": _text, "color": _text, "background": _text}},
        "reasons": {"type": "array", "items": {"type": "object", "required": ["code", "label"], "properties": {
            "code": _text, "label": _text, "wants_feedback": {"type": "boolean"}}}},
        "offers": {"type": "array", "items": {
            "type": "object", "required": ["code", "kind", "title", "accept_label", "terms", "reasons"],
            "properties": {
                "code": _text, "kind": _text, "title": _text, "description": _text, "accept_label": _text,
                "terms": {"type": "object", "additionalProperties": True,
                          "description": "the kind's terms (discount_percent, discount_months, pause_months, "
                                         "plan, plan_change_timing, trial_days, skip_renewals, support_email, "
                                         "link_url)"},
                "terms_summary": _text,
                "reasons": {"type": "array", "items": _text,
                            "description": "shown only for these reasons; empty: for every reason"}}}},
        "cancel": {"type": "object", "required": ["label", "timing", "effective", "summary", "on_every_step"],
                   "properties": {
            "label": {**_text, "description": "the Cancel button's words: \"now\" only when it cancels at once"},
            "note": _text, "summary": {**_text, "description": "what Cancel will do and when, in a sentence"},
            "timing": {"type": "string", "enum": ["period_end", "immediately"], "nullable": True,
                       "description": "when billing ends the subscription; null: the business acts itself"},
            "effective": {"type": "string", "enum": ["period_end", "immediately"],
                          "description": "what the page promises Cancel will do (immediately only when billing "
                                         "cancels at once), fixed when the session started"},
            "on_every_step": {"type": "boolean",
                              "description": "the customer's rules ask for Cancel on every step, visible "
                                             "without scrolling (else on the last step)"}}},
        "compliance": {
            "type": "object", "required": ["region", "cancel_button", "offers", "receipt", "max_offers"],
            "description": "the rules of the customer's region (account.region, else account.country), "
                           "resolved when the session started; `offers` above are already filtered by them",
            "properties": {
                "region": {**_text, "description": "ISO 3166-2 (US-CA) or 3166-1 alpha-2 (DE); empty: unknown"},
                "cancel_button": {"type": "string", "enum": ["every_step", "last_step"]},
                "offers": {"type": "string", "enum": ["any", "one", "none"]},
                "receipt": {"type": "boolean"},
                "max_offers": {"type": "integer", "nullable": True,
                               "description": "show at most this many offers to this customer; null: no limit"}}},
    },
}

DECISION_REQUEST = {
    "type": "object", "required": ["action"], "additionalProperties": False,
    "properties": {
        "action": {"type": "string", "enum": ["nevermind", "accept", "cancel"]},
        "reason": {"type": "string", "maxLength": 64, "nullable": True, "description": "a reason's code"},
        "feedback": {"type": "string", "maxLength": 5000, "nullable": True},
        "offer": {"type": "string", "maxLength": 64, "nullable": True,
                  "description": "the accepted offer's code (action accept)"},
    },
}
DECISION = {
    "type": "object", "required": ["event", "redirect_url"],
    "properties": {"event": {"type": "string", "description": "session.nevermind, offer.accepted, "
                                                            "offer.email_requested or session.canceled"},
                   "redirect_url": {"type": "string", "format": "uri",
                                    "description": "the return URL with bb_event, bb_account_id, bb_session, "
                                                   "bb_ts and bb_sig"}},
}

PAGE["properties"]["decision"] = {**DECISION, "nullable": True,
                                  "description": "the decision already recorded, if any"}

_retry = OpenApiParameter("Retry-After", int, OpenApiParameter.HEADER, response=[429],
                          description="seconds to wait before trying again")
_unknown = OpenApiResponse(ERROR, description="no page has this token")
_gone = OpenApiResponse(ERROR, description="the page expired before a decision")
_too_many = OpenApiResponse(ERROR, description="too many requests from this address or for this App")

PAGE_GET: dict[str, Any] = {
    "operation_id": "page_describe",
    "summary": "What the hosted cancel page would show, for a page of your own (headless)",
    "parameters": [_retry],
    "responses": {200: OpenApiResponse(PAGE), 404: _unknown, 405: OpenApiResponse(ERROR), 410: _gone,
                  429: _too_many},
}
DECISION_POST: dict[str, Any] = {
    "operation_id": "page_decide",
    "summary": "Record the customer's decision (once) and get the signed return URL",
    "request": {"application/json": DECISION_REQUEST},
    "parameters": [_retry],
    "responses": {
        200: OpenApiResponse(DECISION, description="recorded now, or the decision already recorded; a cancel "
                                                   "after a save (nevermind, an accepted offer) supersedes it "
                                                   "and answers session.canceled"),
        400: OpenApiResponse(ERROR, description="malformed JSON, an unknown action, reason or offer"),
        404: _unknown, 405: OpenApiResponse(ERROR), 410: _gone,
        415: OpenApiResponse(ERROR, description="the body must be application/json"), 429: _too_many},
    "examples": [OpenApiExample("cancel", request_only=True,
                                value={"action": "cancel", "reason": "too-expensive", "feedback": ""})],
}
