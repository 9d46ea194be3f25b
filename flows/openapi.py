"""The OpenAPI description of the public JSON endpoints (served at /api/schema/ by drf-spectacular).

Raw JSON Schema rather than serializers: /precancel validates with snippet_data.clean_snippet_data,
whose rules (Brightback's field names, nested `custom` objects without arrays) a serializer would only
duplicate. schemathesis (tests/test_api_schema.py) checks the answers against what is written here.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from .snippet_data import MAX_ACCOUNT_VALUE, MAX_STRING

# The parser reads null as absent, so every optional field is nullable.
_string = {"type": "string", "maxLength": MAX_STRING, "nullable": True}
# subscription_id and the account's strings also take numbers (pages pass ids as numbers).
_id = {"oneOf": [{"type": "string", "maxLength": MAX_STRING}, {"type": "number"}], "nullable": True}
_column_id = {**_id, "oneOf": [{"type": "string", "maxLength": 255}, {"type": "number"}]}
_url = {"type": "string", "format": "uri", "maxLength": MAX_STRING, "nullable": True,
        "description": "absolute http(s) URL"}

SNIPPET_DATA = {
    "type": "object",
    "description": "What the page passes to Brightback.handleData(), with the snippet's context and timestamp. "
                   "offer_1_url … offer_99_url are accepted too. Either email or account.internal_id is required.",
    "required": ["app_id"],
    "properties": {
        "app_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
        "email": {"type": "string", "format": "email", "maxLength": 254, "nullable": True},
        "subscription_id": _column_id,
        "first_name": _string, "last_name": _string, "full_name": _string,
        "save_return_url": _url, "cancel_confirmation_url": _url, "offer_1_url": _url, "offer_2_url": _url,
        "account": {
            "type": "object", "nullable": True,
            "properties": {
                "internal_id": _column_id,
                "billing_id": _id, "company_name": _id, "company_domain": _id, "plan": _id,
                "plan_term": _id,
                "value": {"type": "number", "nullable": True, "minimum": -MAX_ACCOUNT_VALUE,
                          "maximum": MAX_ACCOUNT_VALUE},
                "created_at": {"type": "string", "description": "ISO 8601", "nullable": True},
                "country": {"type": "string", "pattern": "^[A-Za-z]{2}$", "nullable": True,
                            "description": "ISO 3166-1 alpha-2 (DE): the customer's country, for the App's "
                                           "compliance rules"},
                "region": {"type": "string", "pattern": "^[A-Za-z]{2}-[A-Za-z0-9]{1,3}$", "nullable": True,
                           "description": "ISO 3166-2 (US-CA): the customer's state or region, whose rules "
                                          "override the country's; must lie in account.country when both are "
                                          "given"},
            },
        },
        "custom": {"type": "object", "description": "nested objects of strings, numbers, booleans and ISO "
                                                    "dates; no arrays", "additionalProperties": True, "nullable": True},
        "context": {
            "type": "object", "nullable": True,
            "properties": {k: _string for k in ("locale", "timezone", "user_agent", "url", "referrer")},
        },
        "timestamp": _string,
        "auth": {
            "type": "object", "required": ["expires", "hash"], "nullable": True,
            "description": "Required in live mode (null or absent in test mode): hash = hex HMAC-SHA256(app secret, "
                           "\"{app_id}:{account.internal_id}:{expires}:{subscription_id}:{account.billing_id}:"
                           "{email}\") "
                           "when the data carries subscription_id, account.billing_id or email (an absent one as "
                           "\"\"), else of \"{app_id}:{account.internal_id}:{expires}\"",
            "properties": {"expires": {"type": "integer"}, "hash": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}},
        },
    },
}

ACCEPTED = {
    "type": "object", "required": ["valid", "url", "message"],
    "properties": {"valid": {"type": "boolean", "enum": [True]},
                   "url": {"type": "string", "format": "uri", "description": "the hosted cancel page"},
                   "message": {"type": "string", "description": "the same URL (Brightback sent either key)"}},
}
REFUSED = {
    "type": "object", "required": ["valid", "message"],
    "properties": {"valid": {"type": "boolean", "enum": [False]}, "message": {"type": "string"}},
}

PRECANCEL: dict[str, Any] = {
    "operation_id": "precancel",
    "summary": "Open a hosted cancel page for a customer",
    "request": {"application/json": SNIPPET_DATA},
    "parameters": [OpenApiParameter("Retry-After", int, OpenApiParameter.HEADER, response=[429],
                                    description="seconds to wait before trying again")],
    "responses": {
        200: OpenApiResponse(ACCEPTED, description="the hosted page's URL"),
        400: OpenApiResponse(REFUSED, description="malformed JSON, missing or wrong fields, an oversize body, "
                                                  "a return URL on a host the App does not allow, an "
                                                  "account.country or account.region that names no place"),
        403: OpenApiResponse(REFUSED, description="a missing, bad or expired auth block (live mode), or an "
                                                  "origin the App does not allow"),
        404: OpenApiResponse(REFUSED, description="no such app"),
        405: OpenApiResponse(REFUSED, description="only POST (and the CORS preflight) are allowed"),
        409: OpenApiResponse(REFUSED, description="the App has no active flow"),
        415: OpenApiResponse(REFUSED, description="an unsupported media type"),
        429: OpenApiResponse(REFUSED, description="too many requests from this address or for this App",
                             examples=[OpenApiExample("limited", value={
                                 "valid": False, "message": "too many requests: try again in 42 seconds"})]),
    },
    "examples": [OpenApiExample("minimal", request_only=True,
                                value={"app_id": "demo", "email": "jane@example.com"})],
}

HEALTH = {
    "type": "object", "required": ["status", "database", "broker", "secrets"],
    "properties": {"status": {"type": "string", "enum": ["ok", "degraded"]},
                   "database": {"type": "string", "enum": ["ok", "unavailable"]},
                   "broker": {"type": "string", "enum": ["ok", "unavailable"]},
                   "secrets": {"type": "string", "enum": ["ok", "unreadable"]}},
}
HEALTHZ: dict[str, Any] = {
    "operation_id": "healthz",
    "summary": "The database's, the broker's and the stored secrets' state, for load balancers",
    "responses": {200: OpenApiResponse(HEALTH, description="the database answers and the stored secrets decrypt"),
                  503: OpenApiResponse(HEALTH, description="the database does not answer, or a stored secret "
                                                           "does not decrypt under the configured keys")},
}
