"""Every secret stored encrypted (brightback_site/fields.py), wherever it lives: whether they all still
decrypt (/healthz), and rewriting them under the first FIELD_ENCRYPTION_KEYS key (key rotation).

The columns are found by their field type, so a secret a new model adds is covered without a line here.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.db import models, transaction

from .fields import EncryptedTextField, SecretUnreadable

# /healthz is probed every few seconds by every load balancer: the verdict is kept this long per process.
STATE_TTL_SECONDS = 30.0
ROTATE_BATCH = 500
SAMPLE_WINDOW = 1000


def encrypted_columns() -> list[tuple[type[models.Model], str]]:
    """(model, field name) of every encrypted column of every installed model."""
    return [(model, field.name) for model in apps.get_models() for field in model._meta.concrete_fields
            if isinstance(field, EncryptedTextField)]


def _label(model: type[models.Model], field: str) -> str:
    return f"{model._meta.label}.{field}"


def _unreadable_sample(model: type[models.Model], field: str) -> bool:
    # One value per column, the newest among the last SAMPLE_WINDOW rows (a bounded scan of a large
    # table): rotate_encryption_keys rewrites whole columns, so a key that reads the newest value and
    # not the others is not a state this service leaves behind.
    manager = model._base_manager
    recent = manager.order_by("-pk").values("pk")[:SAMPLE_WINDOW]
    try:
        list(manager.filter(pk__in=models.Subquery(recent)).exclude(**{field: ""}).order_by("-pk")
             .values_list(field, flat=True)[:1])
    except SecretUnreadable:
        return True
    return False


_state_lock = threading.Lock()
_state: dict[tuple, tuple[float, list[str]]] = {}


def unreadable_columns() -> list[str]:
    """The encrypted columns whose newest value does not decrypt under the configured keys, e.g.
    ["flows.App.secret"]; kept STATE_TTL_SECONDS per process and per key configuration."""
    key = (tuple(settings.FIELD_ENCRYPTION_KEYS), settings.SECRET_KEY)
    now = time.monotonic()
    with _state_lock:
        cached = _state.get(key)
    if cached is not None and now - cached[0] < STATE_TTL_SECONDS:
        return cached[1]
    verdict = [_label(model, field) for model, field in encrypted_columns() if _unreadable_sample(model, field)]
    with _state_lock:
        _state.clear()
        _state[key] = (now, verdict)
    return verdict


def forget_state() -> None:
    with _state_lock:
        _state.clear()


@dataclass(frozen=True)
class Rotation:
    column: str
    rewritten: int
    unreadable: list[int]


def secrets_reencrypt(*, dry_run: bool = False) -> list[Rotation]:
    """Rewrite every stored secret under the first FIELD_ENCRYPTION_KEYS key (the older keys, and
    SECRET_KEY's derived key, still read them). A value no key reads is left as it is and reported by
    primary key; the others are rewritten, a batch per transaction under row locks, so a secret staff
    change meanwhile is never overwritten with its old value."""
    results = []
    for model, field in encrypted_columns():
        manager = model._base_manager
        pks = list(manager.exclude(**{field: ""}).order_by("pk").values_list("pk", flat=True))
        rewritten, unreadable = 0, []
        for start in range(0, len(pks), ROTATE_BATCH):
            batch = pks[start:start + ROTATE_BATCH]
            with transaction.atomic():
                locked = list(manager.select_for_update().filter(pk__in=batch).order_by("pk")
                              .values_list("pk", flat=True))
                for pk in locked:
                    try:
                        value = manager.filter(pk=pk).values_list(field, flat=True).get()
                    except SecretUnreadable:
                        unreadable.append(pk)
                        continue
                    if value and not dry_run:
                        manager.filter(pk=pk).update(**{field: value})  # get_prep_value: the first key
                    rewritten += 1 if value else 0
        results.append(Rotation(column=_label(model, field), rewritten=rewritten, unreadable=unreadable))
    forget_state()
    return results
