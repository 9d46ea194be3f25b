"""Secrets encrypted at rest (brightback_site/fields.py): read back as written, under rotated keys too,
and refused once the key that wrote them is gone, even after this process has read them."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from flows.models import App

pytestmark = pytest.mark.django_db


def test_a_secret_reads_back_under_rotated_keys_and_not_once_its_key_is_gone(demo_app, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    App.objects.filter(pk=demo_app.pk).update(secret="s3cret-under-old")  # update() encrypts with `old`
    assert App.objects.get(pk=demo_app.pk).secret == "s3cret-under-old"
    assert App.objects.get(pk=demo_app.pk).secret == "s3cret-under-old"  # read again: the same

    settings.FIELD_ENCRYPTION_KEYS = [new, old]  # rotated: new first, old still listed
    assert App.objects.get(pk=demo_app.pk).secret == "s3cret-under-old"

    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key dropped too early
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        App.objects.get(pk=demo_app.pk)
