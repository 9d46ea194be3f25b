"""Encryption at rest for secrets (App secrets, endpoint secrets, billing keys, Slack webhook URLs).

Fernet (from `cryptography`) with a MultiFernet over FIELD_ENCRYPTION_KEYS, newest first, so a key can
be rotated: old values still decrypt, new values use the first key, and `manage.py
rotate_encryption_keys` rewrites every stored value with it. Without configured keys (DEBUG only: the
system check flows.E004 refuses to start otherwise), one is derived from SECRET_KEY so a development
install needs no extra setting. The derived key also stays last in line for reading, so values written
before FIELD_ENCRYPTION_KEYS was set still read until rotate_encryption_keys moves them to the first key.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


class SecretUnreadable(ImproperlyConfigured):
    """A stored secret does not decrypt under FIELD_ENCRYPTION_KEYS (nor SECRET_KEY's derived key)."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    derived = Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"field-encryption:" + secret_key.encode()).digest()))
    try:
        configured = [Fernet(key.encode()) for key in keys]
    except ValueError as exc:
        raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS holds an invalid Fernet key: {exc}") from None
    return MultiFernet([*configured, derived])


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
            raise SecretUnreadable(
                f"{self.model.__name__}.{self.name} cannot be decrypted: FIELD_ENCRYPTION_KEYS or "
                "SECRET_KEY changed without keeping the key that wrote it"
            ) from None

    def get_prep_value(self, value):  # noqa: ANN001
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return fernet().encrypt(value.encode()).decode()
