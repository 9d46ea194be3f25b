"""Recurly's own OpenAPI description (specs/recurly-v2021-02-25.yaml, MIT, unchanged) as the local Recurly
(billing/testing/recurly_server.py) applies it: every request is checked before it is acted on (openapi-core
checks path, query and body types, enums, formats and required fields; on top of that an undeclared query
parameter or body attribute is refused, so a misspelt name fails instead of being ignored), and every answer
is checked against the response schema before it leaves. A refusal is a `SpecError`, which the server
answers as Recurly does.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from billing.testing.openapi_refs import properties, resolve

SPEC_PATH = Path(__file__).with_name("specs") / "recurly-v2021-02-25.yaml"
API_VERSION = "v2021-02-25"
HOST_URL = "https://v3.recurly.com"  # the spec's server: openapi-core matches requests against it
ERROR_TYPES = {400: "bad_request", 401: "unauthorized", 402: "transaction", 403: "invalid_permissions",
               404: "not_found", 406: "invalid_api_version", 422: "validation", 429: "rate_limited",
               500: "internal_server_error", 502: "internal_server_error", 503: "service_not_available",
               504: "service_not_available"}


class SpecError(Exception):
    """A request (or one of our answers) that Recurly's description rules out."""

    def __init__(self, status: int, message: str, params: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.params = status, message, params or []


@cache
def load_spec() -> tuple[Any, dict]:
    """Recurly's OpenAPI document, parsed once per process (it is 1 MB). Two quirks of the document are
    handled in memory, never in the file: its own self-check is skipped (it carries a `default` outside
    its enum, invoice `state`), and its `pattern`s, written as JavaScript literals (`/^[a-z0-9_+-]+$/i`),
    become the regular expressions they mean (`(?i)^[a-z0-9_+-]+$`)."""
    import yaml
    from openapi_core import Config, OpenAPI

    with SPEC_PATH.open("rb") as handle:
        raw = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    _fix_patterns(raw)
    return OpenAPI.from_dict(raw, config=Config(spec_validator_cls=None)), raw


def _fix_patterns(node: Any) -> None:
    if isinstance(node, dict):
        pattern = node.get("pattern")
        if isinstance(pattern, str) and (literal := re.fullmatch(r"/(.*)/([a-z]*)", pattern)):
            node["pattern"] = ("(?i)" if "i" in literal[2] else "") + literal[1]
        for value in node.values():
            _fix_patterns(value)
    elif isinstance(node, list):
        for value in node:
            _fix_patterns(value)


def check_request(method: str, template: str, path: str, query: dict[str, str], body: bytes,
                   headers: dict[str, str]) -> None:
    """Raise SpecError when the request breaks Recurly's description."""
    from openapi_core.testing import MockRequest

    api, raw = load_spec()
    operation = raw["paths"][template][method]
    declared = {resolve(raw, p)["name"] for p in operation.get("parameters", [])
                if resolve(raw, p)["in"] == "query"}
    unknown = sorted(set(query) - declared)
    if unknown:
        raise SpecError(422, f"Unknown parameters: {', '.join(unknown)}", [{"param": n} for n in unknown])
    if body:
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise SpecError(400, f"The body is not valid JSON: {exc}") from exc
        schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            raise SpecError(400, f"{method.upper()} {template} takes no body")
        if isinstance(payload, dict):
            extra = sorted(set(payload) - properties(raw, schema))
            if extra:
                raise SpecError(422, f"Unknown attributes: {', '.join(extra)}", [{"param": n} for n in extra])
    request = MockRequest(HOST_URL, method, path, args=query, headers=headers, data=body or None)
    try:
        api.validate_request(request)
    except Exception as exc:  # openapi-core raises one class per kind of violation
        cause = exc.__cause__ or exc
        detail = "; ".join(str(e.message) for e in getattr(cause, "schema_errors", ())) or str(cause)
        raise SpecError(422, f"{str(exc).split(': Value ')[0]}: {detail}") from exc


def check_response(method: str, path: str, query: dict[str, str], status: int, body: bytes) -> None:
    from openapi_core.testing import MockRequest, MockResponse

    api, _ = load_spec()
    request = MockRequest(HOST_URL, method, path, args=query)
    response = MockResponse(body, status_code=status, content_type="application/json")
    try:
        api.validate_response(request, response)
    except Exception as exc:
        cause = exc.__cause__ or exc
        detail = "; ".join(str(e.message) for e in getattr(cause, "schema_errors", ())) or str(cause)
        raise SpecError(500, f"the local Recurly's answer breaks the spec: {str(exc).split(': Value ')[0]}: {detail}") \
            from exc
