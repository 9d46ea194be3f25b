"""The callables settings name by dotted path: the hooks flows asks of the channels (what billing does about an
event, whether a save still pays, whether the customer is emailed, a flow's content versions). flows never
imports a channel: it calls what settings name."""

from __future__ import annotations

from functools import lru_cache

from django.utils.module_loading import import_string


@lru_cache(maxsize=16)
def named(paths: tuple[str, ...]) -> list:
    return [import_string(path) for path in paths]
