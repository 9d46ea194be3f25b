"""Check a request against Stripe's description of the API version the pinned SDK sends, as Stripe's API
does before acting on it.

The description is `specs/stripe-<stripe.api_version>-excerpt.json` (2026-10-28.endive with stripe 16.1):
the operations our adapter calls, written by billing/testing/stripe_excerpt.py from the SDK's request
parameter types, which Stripe generates from its OpenAPI description for that version (see there). So
`coupon` on a subscription update (removed in 2025-03-31.basil) is `parameter_unknown`, `discounts`,
`pause_collection` and `items[][price]` are known, and every enum is the version's own. Upgrading the
SDK without writing the excerpt of its version fails here, by name, rather than checking against an
older API.

Form bodies and query strings arrive unflattened (`items[0][price]=pro` becomes {"items": [{"price":
"pro"}]}), every leaf a string, so scalar types are checked as Stripe parses them: integers as digits,
booleans as true/false. A request that breaks the description gets Stripe's 400 `invalid_request_error`
body; one to an operation the excerpt lacks, Stripe's `url_invalid`.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import stripe

SPEC_PATH = Path(__file__).parent / "specs" / f"stripe-{stripe.api_version}-excerpt.json"


class SpecViolation(Exception):
    """The request breaks the description: `param` names the offending parameter as Stripe does."""

    def __init__(self, message: str, *, param: str, code: str = "parameter_invalid") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"type": "invalid_request_error", "code": self.code, "param": self.param,
                          "message": self.message,
                          "doc_url": f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"}}


class Operation:
    def __init__(self, method: str, template: str, operation: dict[str, Any]) -> None:
        self.method = method
        self.template = template
        params: dict[str, Any] = {}
        for parameter in operation.get("parameters", []):
            if parameter.get("in") == "query":
                params[parameter["name"]] = parameter.get("schema", {})
        body = operation.get("requestBody", {}).get("content", {})
        form = body.get("application/x-www-form-urlencoded", {}).get("schema", {})
        params.update(form.get("properties", {}))
        self.params = params
        self.required = tuple(form.get("required", ()))

    def check(self, data: dict[str, Any]) -> None:
        for name, value in data.items():
            if name not in self.params:
                raise SpecViolation(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")
            _check(self.params[name], value, name)
        for name in self.required:
            if name not in data:
                raise SpecViolation(f"Missing required param: {name}.", param=name, code="parameter_missing")


class StripeSpec:
    """The operations of the description, found by method and concrete path."""

    def __init__(self, spec: dict[str, Any]) -> None:
        routes = []
        for template, operations in spec["paths"].items():
            pattern = re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$")
            for method, operation in operations.items():
                routes.append((template.count("{"), method, pattern, Operation(method, template, operation)))
        # A literal segment wins over a placeholder (/v1/subscriptions/search before /{id}).
        routes.sort(key=lambda route: route[0])
        self._routes = [(method, pattern, op) for _, method, pattern, op in routes]

    def operation(self, method: str, path: str) -> Operation | None:
        for route_method, pattern, op in self._routes:
            if route_method == method.lower() and pattern.match(path):
                return op
        return None

    def check(self, method: str, path: str, data: dict[str, Any]) -> Operation:
        op = self.operation(method, path)
        if op is None:
            raise SpecViolation(f"Unrecognized request URL ({method.upper()}: {path}).", param="",
                                code="url_invalid")
        op.check(data)
        return op


@cache
def stripe_spec() -> StripeSpec:
    if not SPEC_PATH.exists():
        raise RuntimeError(f"no description of Stripe API version {stripe.api_version}, the version the SDK sends: "
                           "write it with `python -m billing.testing.stripe_excerpt`")
    described = json.loads(SPEC_PATH.read_text())
    if described["info"]["version"] != stripe.api_version:
        raise RuntimeError(f"{SPEC_PATH.name} describes {described['info']['version']}, not {stripe.api_version}")
    return StripeSpec(described)


def _shape(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    return kind if kind in ("object", "array") else "scalar"


def _check(schema: dict[str, Any], value: Any, where: str) -> None:
    if "anyOf" in schema:
        shape = "object" if isinstance(value, dict) else "array" if isinstance(value, list) else "scalar"
        problems = []
        for option in schema["anyOf"]:
            try:
                _check(option, value, where)
                return
            except SpecViolation as problem:
                if _shape(option) == shape:  # the branch the caller meant says what is wrong
                    problems.append(problem)
        raise problems[0] if len(problems) == 1 else SpecViolation(f"Invalid value for {where}.", param=where)
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            raise SpecViolation(f"Invalid object: {where} must be a hash.", param=where)
        known = schema.get("properties")
        for key, item in value.items():
            inner = f"{where}[{key}]"
            if known is not None and key in known:
                _check(known[key], item, inner)
            elif isinstance(schema.get("additionalProperties"), dict):
                _check(schema["additionalProperties"], item, inner)
            elif known is not None or schema.get("additionalProperties") is False:
                raise SpecViolation(f"Received unknown parameter: {inner}", param=inner, code="parameter_unknown")
        for key in schema.get("required", ()):
            if key not in value:
                raise SpecViolation(f"Missing required param: {where}[{key}].", param=f"{where}[{key}]",
                                    code="parameter_missing")
        return
    if kind == "array":
        if not isinstance(value, list):
            raise SpecViolation(f"Invalid array: {where} must be an array.", param=where)
        for index, item in enumerate(value):
            _check(schema.get("items", {}), item, f"{where}[{index}]")
        return
    if isinstance(value, (dict, list)):
        raise SpecViolation(f"Invalid {kind or 'value'}: {where} must be a single value.", param=where)
    text = str(value)
    if kind == "integer" and not re.fullmatch(r"-?\d+", text):
        raise SpecViolation(f"Invalid integer: {text}", param=where)
    if kind == "number" and not re.fullmatch(r"-?\d+(\.\d+)?", text):
        raise SpecViolation(f"Invalid decimal: {text}", param=where)
    if kind == "boolean" and text not in ("true", "false"):
        raise SpecViolation(f"Invalid boolean: {text}", param=where)
    if "enum" in schema and text not in schema["enum"]:
        choices = ", ".join(str(choice) for choice in schema["enum"])
        raise SpecViolation(f"Invalid {where}: must be one of {choices}", param=where)
    if "maxLength" in schema and len(text) > schema["maxLength"]:
        raise SpecViolation(f"Invalid string: {where} is longer than {schema['maxLength']} characters.",
                            param=where)
