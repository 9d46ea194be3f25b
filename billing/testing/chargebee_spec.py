"""What the local Chargebee (billing/testing/chargebee_server.py) accepts: `SPEC`, an explicit table of
the parameters Chargebee's API reference documents for each endpoint served there (names, required ones,
enum values, types), the routes, and Chargebee's own error bodies. Chargebee's OpenAPI description is too
large to ship, so this table stands in for it: an unknown parameter, a missing required one, a value of the
wrong type or outside its enum is answered 400 (`type=invalid_request`, `api_error_code=param_wrong_value`,
`param`), as the real API does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    kind: str  # "string", "boolean", "integer", "timestamp" (UTC seconds) or "enum"
    values: tuple[str, ...] = ()  # the enum's values
    required: bool = False
    indexed: bool = False  # sent as name[0], name[1]: a list, or one field of a list of objects


def enum(*values: str, indexed: bool = False) -> Param:
    return Param("enum", values, indexed=indexed)


STRING, BOOLEAN, INTEGER, TIMESTAMP = Param("string"), Param("boolean"), Param("integer"), Param("timestamp")
LIST_STRING, LIST_INTEGER = Param("string", indexed=True), Param("integer", indexed=True)

# Chargebee API reference, Product Catalog 2.0 (https://apidocs.chargebee.com/docs/api/subscriptions), checked
# against the parameter types of the `chargebee` SDK 3.29.0, which are generated from the same description.
# Nested objects the reference also accepts (card, billing_address, payment_intent, ...) are not served here
# and are refused as unknown.
SPEC: dict[str, dict[str, Param]] = {
    # "Configurations": GET /configurations, no parameters.
    "list_configurations": {},
    # "Customers > Retrieve a customer"; "List customers" with the email filter (email[is], ...).
    "retrieve_customer": {},
    "list_customers": {"limit": INTEGER, "offset": STRING, "email[is]": STRING, "email[is_not]": STRING,
                       "email[starts_with]": STRING, "include_deleted": BOOLEAN},
    # "Subscriptions > List subscriptions for a customer": limit 1-100, offset.
    "subscriptions_for_customer": {"limit": INTEGER, "offset": STRING},
    # "Subscriptions > Retrieve a subscription" and "Retrieve with scheduled changes".
    "retrieve_subscription": {},
    "retrieve_with_scheduled_changes": {},
    # "Coupons > Retrieve a coupon", "Item prices > Retrieve an item price".
    "retrieve_coupon": {},
    "retrieve_item_price": {},
    # "Subscriptions > Remove scheduled cancellation": billing_cycles (optional) for a non-renewing one.
    "remove_scheduled_cancellation": {"billing_cycles": INTEGER},
    # "Subscriptions > Cancel subscription for items".
    "cancel_for_items": {
        "cancel_option": enum("immediately", "end_of_term", "specific_date", "end_of_billing_term"),
        "end_of_term": BOOLEAN,
        "cancel_at": TIMESTAMP,
        "credit_option_for_current_term_charges": enum("none", "prorate", "full", "consumption_based"),
        "unbilled_charges_option": enum("invoice", "delete"),
        "account_receivables_handling": enum("no_action", "schedule_payment_collection", "write_off"),
        "refundable_credits_handling": enum("no_action", "schedule_refund"),
        "contract_term_cancel_option": enum("terminate_immediately", "end_of_contract_term", "specific_date",
                                            "end_of_subscription_billing_term"),
        "invoice_date": TIMESTAMP,
        "include_cancellation_day_in_billing": BOOLEAN,
        "cancel_reason_code": STRING,
        "decommissioned": BOOLEAN,
        "subscription_items[item_price_id]": LIST_STRING,
        "subscription_items[quantity]": LIST_INTEGER,
        "subscription_items[quantity_in_decimal]": LIST_STRING,
        "subscription_items[unit_price]": LIST_INTEGER,
        "subscription_items[unit_price_in_decimal]": LIST_STRING,
        "subscription_items[service_period_days]": LIST_INTEGER,
    },
    # "Subscriptions > Update subscription for items" (top-level fields and subscription_items[]).
    "update_for_items": {
        "mandatory_items_to_remove": LIST_STRING,
        "replace_items_list": BOOLEAN,
        "setup_fee": INTEGER,
        "net_term_days": INTEGER,
        "invoice_date": TIMESTAMP,
        "start_date": TIMESTAMP,
        "trial_end": TIMESTAMP,
        "billing_cycles": INTEGER,
        "coupon": STRING,
        "terms_to_charge": INTEGER,
        "reactivate_from": TIMESTAMP,
        "billing_alignment_mode": enum("immediate", "delayed"),
        "auto_collection": enum("on", "off"),
        "po_number": STRING,
        "coupon_ids": LIST_STRING,
        "replace_coupon_list": BOOLEAN,
        "prorate": BOOLEAN,
        "end_of_term": BOOLEAN,
        "force_term_reset": BOOLEAN,
        "reactivate": BOOLEAN,
        "token_id": STRING,
        "invoice_notes": STRING,
        "invoice_immediately": BOOLEAN,
        "override_relationship": BOOLEAN,
        "changes_scheduled_at": TIMESTAMP,
        "change_option": enum("immediately", "end_of_term", "specific_date"),
        "contract_term_billing_cycle_on_renewal": INTEGER,
        "free_period": INTEGER,
        "free_period_unit": enum("day", "week", "month", "year"),
        "create_pending_invoices": BOOLEAN,
        "auto_close_invoices": BOOLEAN,
        "trial_end_action": enum("site_default", "plan_default", "activate_subscription", "cancel_subscription"),
        "payment_initiator": enum("customer", "merchant"),
        "invoice_usages": BOOLEAN,
        "subscription_items[item_price_id]": LIST_STRING,  # required for each item given
        "subscription_items[quantity]": LIST_INTEGER,
        "subscription_items[quantity_in_decimal]": LIST_STRING,
        "subscription_items[unit_price]": LIST_INTEGER,
        "subscription_items[unit_price_in_decimal]": LIST_STRING,
        "subscription_items[billing_cycles]": LIST_INTEGER,
        "subscription_items[trial_end]": Param("timestamp", indexed=True),
        "subscription_items[service_period_days]": LIST_INTEGER,
        "subscription_items[charge_once]": Param("boolean", indexed=True),
        "subscription_items[item_type]": enum("plan", "addon", "charge", indexed=True),
        "subscription_items[proration_type]": enum("full_term", "partial_term", "none", indexed=True),
        "coupons[coupon_id]": LIST_STRING,
        "coupons[apply_till]": Param("timestamp", indexed=True),
    },
    # "Subscriptions > Pause a subscription".
    "pause": {
        "pause_option": enum("immediately", "end_of_term", "specific_date", "billing_cycles"),
        "pause_date": TIMESTAMP,
        "unbilled_charges_handling": enum("no_action", "invoice"),
        "invoice_dunning_handling": enum("continue", "stop"),
        "skip_billing_cycles": INTEGER,
        "resume_date": TIMESTAMP,
    },
    # "Invoices > List invoices": the filters the adapter uses (`[is]`, `[after]` operators, sort_by), paging.
    "list_invoices": {
        "limit": INTEGER, "offset": STRING, "subscription_id[is]": STRING, "customer_id[is]": STRING,
        "status[is]": enum("paid", "posted", "payment_due", "not_paid", "voided", "pending"),
        "paid_at[after]": TIMESTAMP, "paid_at[before]": TIMESTAMP, "sort_by[asc]": enum("date", "updated_at"),
        "sort_by[desc]": enum("date", "updated_at"),
    },
    # "Subscriptions > Change term end": term_ends_at is required.
    "change_term_end": {
        "term_ends_at": Param("timestamp", required=True),
        "prorate": BOOLEAN,
        "invoice_immediately": BOOLEAN,
    },
}

ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(rf"/api/v2/{pattern}"), name) for method, pattern, name in (
        ("GET", r"configurations", "list_configurations"),
        ("GET", r"customers", "list_customers"),
        ("GET", r"invoices", "list_invoices"),
        ("GET", r"customers/(?P<id>[^/]+)", "retrieve_customer"),
        ("GET", r"customers/(?P<id>[^/]+)/subscriptions", "subscriptions_for_customer"),
        ("GET", r"subscriptions/(?P<id>[^/]+)", "retrieve_subscription"),
        ("GET", r"subscriptions/(?P<id>[^/]+)/retrieve_with_scheduled_changes", "retrieve_with_scheduled_changes"),
        ("GET", r"coupons/(?P<id>[^/]+)", "retrieve_coupon"),
        ("GET", r"item_prices/(?P<id>[^/]+)", "retrieve_item_price"),
        ("POST", r"subscriptions/(?P<id>[^/]+)/cancel_for_items", "cancel_for_items"),
        ("POST", r"subscriptions/(?P<id>[^/]+)/update_for_items", "update_for_items"),
        ("POST", r"subscriptions/(?P<id>[^/]+)/pause", "pause"),
        ("POST", r"subscriptions/(?P<id>[^/]+)/change_term_end", "change_term_end"),
        ("POST", r"subscriptions/(?P<id>[^/]+)/remove_scheduled_cancellation", "remove_scheduled_cancellation"),
    )
)

# Chargebee's error body for each status a test may inject (see "Error handling" in the reference).
ERRORS: dict[int, tuple[str | None, str, str]] = {
    400: ("invalid_request", "invalid_request", "The request is invalid."),
    401: (None, "api_authentication_failed", "Sorry, authentication failed. Invalid api key"),
    403: (None, "api_authorization_failed", "Sorry, authorization failed. The key lacks the permission"),
    404: ("invalid_request", "resource_not_found", "Sorry, we couldn't find that resource"),
    409: ("invalid_request", "invalid_state_for_request", "The request is not allowed in the current state"),
    422: ("invalid_request", "invalid_request", "The request could not be processed"),
    429: (None, "api_request_limit_exceeded", "Sorry, access has been blocked temporarily: too many requests."),
    500: (None, "internal_error", "Sorry, something went wrong when trying to process the request."),
    503: (None, "internal_temporary_error", "Sorry, the server is currently unable to handle the request."),
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 type_: str | None = "invalid_request") -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.type = status, message, code, param, type_

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "api_error_code": self.code or ERRORS.get(self.status, (
            None, "internal_error", ""))[1], "http_status_code": self.status}
        if self.type:
            out["type"] = self.type
        if self.param:
            out["param"] = self.param
        return out


def wrong(param: str, message: str) -> ApiError:
    return ApiError(400, message, code="param_wrong_value", param=param)


def validate(endpoint: str, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Check a request's parameters against SPEC; return them typed, indexed ones as {index: value}."""
    allowed = SPEC[endpoint]
    out: dict[str, Any] = {}
    for key, value in pairs:
        found = re.fullmatch(r"(.+?)\[(\d+)\]", key)
        name, index = (found.group(1), int(found.group(2))) if found else (key, None)
        spec = allowed.get(name)
        if spec is None or spec.indexed != (index is not None):
            raise wrong(key, f"{key} : is not a recognised parameter for this operation")
        typed: Any = value
        if spec.kind == "boolean":
            if value not in ("true", "false"):
                raise wrong(key, f"{key} : invalid boolean value {value!r}")
            typed = value == "true"
        elif spec.kind in ("integer", "timestamp"):
            if not re.fullmatch(r"-?\d+", value):
                raise wrong(key, f"{key} : invalid {spec.kind} value {value!r}")
            typed = int(value)
        elif spec.kind == "enum" and value not in spec.values:
            raise wrong(key, f"{key} : invalid value {value!r}; expected one of {', '.join(spec.values)}")
        if index is None:
            if name in out:
                raise wrong(key, f"{key} : given more than once")
            out[name] = typed
        else:
            out.setdefault(name, {})[index] = typed
    for name, spec in allowed.items():
        if spec.required and name not in out:
            raise ApiError(400, f"{name} : cannot be blank", code="param_wrong_value", param=name)
    return out


def route(method: str, path: str) -> tuple[str, re.Match[str]]:
    for verb, pattern, name in ROUTES:
        found = pattern.fullmatch(path)
        if found and verb == method:
            return name, found
    raise ApiError(404, f"Sorry, we couldn't find {method} {path}", code="resource_not_found")
