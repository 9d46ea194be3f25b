"""Billing providers: one module per billing system under a documented base (see base.py)."""

from __future__ import annotations

from importlib import import_module

from .base import REGISTRY, BillingProvider, Credentials, ProviderError

# The modules register themselves on import; only each module imports its vendor's SDK.
PROVIDER_MODULES = ("stripe", "recurly", "chargebee")
CHOICES = (("stripe", "Stripe"), ("recurly", "Recurly"), ("chargebee", "Chargebee"))


def provider_class(slug: str) -> type[BillingProvider]:
    if slug not in PROVIDER_MODULES:
        raise ValueError(f"unknown billing provider {slug!r}")
    if slug not in REGISTRY:
        import_module(f"{__name__}.{slug}")
    return REGISTRY[slug]


def provider_for(slug: str, credentials: Credentials) -> BillingProvider:
    return provider_class(slug)(credentials)


__all__ = ["CHOICES", "PROVIDER_MODULES", "BillingProvider", "Credentials", "ProviderError", "provider_class",
           "provider_for"]
