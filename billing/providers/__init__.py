"""Billing providers: one module per billing system under a documented base (see base.py)."""

from __future__ import annotations

from importlib import import_module

from .base import REGISTRY, BillingProvider, Credentials, ProviderError

# The modules register themselves on import; only each module imports its vendor's SDK.
PROVIDER_MODULES = ("stripe", "recurly", "chargebee", "paddle")
CHOICES = (("stripe", "Stripe"), ("recurly", "Recurly"), ("chargebee", "Chargebee"), ("paddle", "Paddle"))
# The systems whose cancel keeps the customer's own words (each class's takes_cancel_comment), known without
# importing their modules: the web process reads it for every cancel and imports no SDK (Chargebee's takes
# half a second to import, Paddle's a third); only the workers call the billing systems.
CANCEL_COMMENT_KEPT = frozenset({"stripe"})


def provider_class(slug: str) -> type[BillingProvider]:
    if slug not in PROVIDER_MODULES:
        raise ValueError(f"unknown billing provider {slug!r}")
    if slug not in REGISTRY:
        import_module(f"{__name__}.{slug}")
    return REGISTRY[slug]


def provider_for(slug: str, credentials: Credentials) -> BillingProvider:
    """A client for one billing system. Its address is checked again here, before any request, so a key
    goes nowhere billing.addresses does not allow, whatever the stored connection says."""
    from billing.addresses import AddressRefused, api_base_check

    cls = provider_class(slug)
    try:
        api_base_check(slug, credentials.api_base, site=credentials.site)
    except AddressRefused as exc:
        raise ProviderError(f"{cls.name} was not called: {exc}", retryable=False) from None
    return cls(credentials)


__all__ = ["CANCEL_COMMENT_KEPT", "CHOICES", "PROVIDER_MODULES", "BillingProvider", "Credentials", "ProviderError",
           "provider_class", "provider_for"]
