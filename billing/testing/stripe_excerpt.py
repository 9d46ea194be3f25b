"""Write `specs/stripe-<version>-excerpt.json`: the request parameters of the Stripe operations our adapter
calls, for the API version the pinned `stripe` SDK sends, in the OpenAPI shape `stripe_spec` reads.

Run it again after upgrading the SDK (`python -m billing.testing.stripe_excerpt`), and commit the file.

Where it comes from. Stripe publishes its OpenAPI description in github.com/stripe/openapi; the SDK's
request parameter types (`stripe/params/*.py`, "File generated from our OpenAPI spec") are generated from
that description for exactly the version the SDK pins (`stripe.api_version`). The description files are
too large for this repository and the published snapshots lag the SDK, so the excerpt is taken from the
SDK's types: the operations below, every parameter with its type, enum values and required fields, as the
description states them. One reading is stricter than the SDK's type: an enum the SDK also types as any
string (`Literal['void', ...]|str`, kept open for values newer than the SDK) is checked as the enum.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import typing
from pathlib import Path
from typing import Any

import stripe
from stripe._request_options import RequestOptions

# (method, path as in Stripe's description) -> the SDK's parameter type of that operation
OPERATIONS: dict[tuple[str, str], str] = {
    ("get", "/v1/account"): "_account_retrieve_current_params:AccountRetrieveCurrentParams",
    ("get", "/v1/customers"): "_customer_list_params:CustomerListParams",
    ("get", "/v1/customers/{customer}"): "_customer_retrieve_params:CustomerRetrieveParams",
    ("get", "/v1/coupons/{coupon}"): "_coupon_retrieve_params:CouponRetrieveParams",
    ("get", "/v1/invoices"): "_invoice_list_params:InvoiceListParams",
    ("get", "/v1/prices/{price}"): "_price_retrieve_params:PriceRetrieveParams",
    ("get", "/v1/subscriptions"): "_subscription_list_params:SubscriptionListParams",
    ("post", "/v1/subscriptions"): "_subscription_create_params:SubscriptionCreateParams",
    ("get", "/v1/subscriptions/{subscription_exposed_id}"): "_subscription_retrieve_params:SubscriptionRetrieveParams",
    ("post", "/v1/subscriptions/{subscription_exposed_id}"): "_subscription_update_params:SubscriptionUpdateParams",
    ("delete", "/v1/subscriptions/{subscription_exposed_id}"): "_subscription_cancel_params:SubscriptionCancelParams",
    ("post", "/v1/subscription_schedules"): "_subscription_schedule_create_params:SubscriptionScheduleCreateParams",
    ("get", "/v1/subscription_schedules/{schedule}"):
        "_subscription_schedule_retrieve_params:SubscriptionScheduleRetrieveParams",
    ("post", "/v1/subscription_schedules/{schedule}"):
        "_subscription_schedule_update_params:SubscriptionScheduleUpdateParams",
    ("post", "/v1/subscription_schedules/{schedule}/release"):
        "_subscription_schedule_release_params:SubscriptionScheduleReleaseParams",
}
OPTIONS = set(RequestOptions.__annotations__)  # how to send a request, not its parameters


def path_for(version: str) -> Path:
    return Path(__file__).parent / "specs" / f"stripe-{version}-excerpt.json"


def _schema(hint: Any, namespace: dict[str, Any]) -> dict[str, Any]:
    if isinstance(hint, str):
        hint = eval(hint, namespace)  # noqa: S307 - the SDK's own annotation strings
    if isinstance(hint, typing.ForwardRef):
        hint = eval(hint.__forward_arg__, namespace)  # noqa: S307
    origin = typing.get_origin(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        literals = [v for a in options if typing.get_origin(a) is typing.Literal for v in typing.get_args(a)]
        if any(v != "" for v in literals):  # an enum (kept open in the SDK with |str): the enum's values
            options = [a for a in options if a is not str]
        rest = [a for a in options if typing.get_origin(a) is not typing.Literal]
        branches = ([{"type": "string", "enum": literals}] if literals else []) + [_schema(a, namespace) for a in rest]
        return branches[0] if len(branches) == 1 else {"anyOf": branches}
    if origin is typing.Literal:
        return {"type": "string", "enum": list(typing.get_args(hint))}
    if origin in (list, typing.List):  # noqa: UP006
        return {"type": "array", "items": _schema(typing.get_args(hint)[0], namespace)}
    if origin in (dict, typing.Dict):  # noqa: UP006
        return {"type": "object", "additionalProperties": _schema(typing.get_args(hint)[1], namespace)}
    if getattr(origin, "__name__", "") == "UntypedStripeObject":  # a hash of any keys (metadata)
        return {"type": "object", "additionalProperties": _schema(typing.get_args(hint)[0], namespace)}
    if hint is str:
        return {"type": "string"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float or getattr(hint, "__name__", "") == "Decimal":  # sent as a decimal string
        return {"type": "number"}
    if isinstance(hint, type) and hasattr(hint, "__annotations__"):  # a TypedDict
        return _object(hint, namespace)
    raise TypeError(f"no schema for {hint!r}")


def _object(cls: type, namespace: dict[str, Any], *, skip: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    module = sys.modules[cls.__module__]
    scope = {**vars(typing), **namespace, **vars(module)}
    hints = {}
    for klass in reversed(cls.__mro__):
        hints.update(getattr(klass, "__annotations__", {}))
    properties = {}
    for name, hint in sorted(hints.items()):
        if name in skip:
            continue
        text = hint if isinstance(hint, str) else getattr(hint, "__forward_arg__", None)
        if text is None and typing.get_origin(hint) in (typing.NotRequired, typing.Required):
            hint = typing.get_args(hint)[0]
        elif text is not None:
            inner = re.fullmatch(r"(?:NotRequired|Required)\[(.*)\]", text.strip(), re.S)
            hint = inner.group(1) if inner else text
        if typing.get_origin(hint) in (typing.NotRequired, typing.Required):
            hint = typing.get_args(hint)[0]
        properties[name] = _schema(hint, scope)
    required = sorted(k for k in getattr(cls, "__required_keys__", ()) if k not in skip)
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    return out


def excerpt() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for (method, template), target in OPERATIONS.items():
        module_name, _, name = target.partition(":")
        module = importlib.import_module(f"stripe.params.{module_name}")
        schema = _object(getattr(module, name), {}, skip=OPTIONS)
        if method in ("get", "delete"):  # the SDK sends these parameters in the query string
            operation = {"parameters": [{"in": "query", "name": key, "schema": value}
                                        for key, value in schema["properties"].items()]}
        else:
            operation = {"requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": schema}}}}
        paths.setdefault(template, {})[method] = operation
    return {"openapi": "3.0.0",
            "info": {"title": "Stripe API (excerpt: the operations billing calls)", "version": stripe.api_version,
                     "x-source": f"stripe-python {stripe.VERSION} request parameter types, generated by Stripe "
                                 f"from its OpenAPI description for API version {stripe.api_version}"},
            "paths": paths}


if __name__ == "__main__":
    target = path_for(stripe.api_version)
    target.write_text(json.dumps(excerpt(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {target}")
