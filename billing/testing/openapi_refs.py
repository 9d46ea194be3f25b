"""Reading an OpenAPI description as the local billing servers check requests against it: a `$ref` followed
to what it names, and every property a schema declares (its own and its `allOf` parts'), so an undeclared
query parameter or body field can be refused instead of silently ignored."""

from __future__ import annotations

from typing import Any


def resolve(raw: dict, node: dict) -> dict:
    while "$ref" in node:
        target: Any = raw
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def properties(raw: dict, schema: dict) -> set[str]:
    schema = resolve(raw, schema)
    names = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        names |= properties(raw, part)
    return names
