"""Encryption at rest for secrets (App secrets, endpoint secrets, billing keys).

Fernet (from `cryptography`) with a MultiFernet over FIELD_ENCRYPTION_KEYS, newest first, so a key can
be rotated: old values still decrypt, new values use the first key. Without configured keys, one is
derived from SECRET_KEY so a development install needs no extra setting.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if keys:
        try:
            return MultiFernet([Fernet(key.encode()) for key in keys])
        except ValueError as exc:
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS holds an invalid Fernet key: {exc}") from None
    derived = base64.urlsafe_b64encode(hashlib.sha256(b"field-encryption:" + secret_key.encode()).digest())
    return MultiFernet([Fernet(derived)])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS), settings.SECRET_KEY)


@lru_cache(maxsize=4096)
def _decrypted(token: str, keys: tuple[str, ...], secret_key: str) -> str:
    # A token always decrypts to the same text under the same keys (no TTL is checked), and the hosted
    # page reads its App's secret on every view: each process decrypts a token once. A failure is not kept.
    return _fernet(keys, secret_key).decrypt(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """A text column stored as a Fernet token; reads give back the plain text."""

    def from_db_value(self, value, expression, connection):  # noqa: ANN001
        if value is None or value == "":
            return value
        try:
            return _decrypted(value, tuple(settings.FIELD_ENCRYPTION_KEYS), settings.SECRET_KEY)
        except InvalidToken:
            raise ImproperlyConfigured(
                f"{self.model.__name__}.{self.name} cannot be decrypted: FIELD_ENCRYPTION_KEYS or "
                "SECRET_KEY changed without keeping the old key"
            ) from None

    def get_prep_value(self, value):  # noqa: ANN001
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return fernet().encrypt(value.encode()).decode()
