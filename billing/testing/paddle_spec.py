"""Paddle's own OpenAPI description as the local Paddle (billing/testing/paddle_server.py) applies it: an
excerpt of PaddleHQ/paddle-openapi `v1/openapi.yaml`, kept verbatim in specs/paddle-openapi-excerpt.yaml.
Every request is checked before it is acted on (openapi-core checks path, query and body types, enums,
formats and required fields; on top of that an undeclared query parameter or body field is refused, so a
misspelt name fails instead of being ignored). A refusal is a `SpecError`, which the server answers as
Paddle does.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from billing.testing.openapi_refs import properties, resolve

SPEC_PATH = Path(__file__).with_name("specs") / "paddle-openapi-excerpt.yaml"
HOST_URL = "https://api.paddle.com"  # the description's server: openapi-core matches requests against it


class SpecError(Exception):
    """A request that Paddle's description (or Paddle's documented rules) rules out."""

    def __init__(self, status: int, code: str, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.errors = status, code, detail, errors or []


@cache
def load_spec() -> tuple[Any, dict]:
    import yaml
    from openapi_core import OpenAPI

    with SPEC_PATH.open("rb") as handle:
        raw = yaml.safe_load(handle)
    return OpenAPI.from_dict(raw), raw


def check_request(method: str, template: str, path: str, query: dict[str, str], body: bytes,
                   headers: dict[str, str]) -> None:
    """Raise SpecError when the request breaks Paddle's description."""
    from openapi_core.testing import MockRequest

    api, raw = load_spec()
    item = raw["paths"].get(template, {})
    if method not in item:
        return  # not in the excerpt: the handlers' own checks apply
    operation = item[method]
    parameters = [resolve(raw, p) for p in [*item.get("parameters", []), *operation.get("parameters", [])]]
    unknown = sorted(set(query) - {p["name"] for p in parameters if p["in"] == "query"})
    if unknown:
        raise SpecError(400, "bad_request", f"Unknown query parameters: {', '.join(unknown)}",
                        [{"field": n, "message": "unknown"} for n in unknown])
    if body:
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise SpecError(400, "bad_request", f"Invalid request body: {exc}") from exc
        schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            raise SpecError(400, "bad_request", f"{method.upper()} {template} takes no body")
        if isinstance(payload, dict):
            extra = sorted(set(payload) - properties(raw, schema))
            if extra:
                raise SpecError(400, "bad_request", f"Unknown fields: {', '.join(extra)}",
                                [{"field": n, "message": "unknown"} for n in extra])
    request = MockRequest(HOST_URL, method, path, args=query, headers=headers, data=body or None,
                          content_type="application/json")
    try:
        api.validate_request(request)
    except Exception as exc:  # openapi-core raises one class per kind of violation
        cause = exc.__cause__ or exc
        detail = "; ".join(str(e.message) for e in getattr(cause, "schema_errors", ())) or str(cause)
        raise SpecError(400, "bad_request", f"{str(exc).split(': Value ')[0]}: {detail}") from exc


def check_field(component: str, value: Any, name: str) -> None:
    """Check one field against a schema of the excerpt (for operations whose own text it does not hold)."""
    from openapi_schema_validator import OAS31Validator

    _, raw = load_spec()
    schema = raw["components"]["schemas"][component]  # these hold no references
    validator = OAS31Validator(schema, format_checker=OAS31Validator.FORMAT_CHECKER)
    errors = [e.message for e in validator.iter_errors(value)]
    if errors:
        raise SpecError(400, "bad_request", f"Invalid field {name}: {'; '.join(errors)}",
                        [{"field": name, "message": errors[0]}])
