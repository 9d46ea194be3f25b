"""Where a billing connection may send its API key.

An App's billing calls carry a secret key (a live one moves real money), so the address they go to is
not free text: it is the provider's own service, or a URL under one of the prefixes the operator listed
in settings.BILLING_ALLOWED_API_BASES (a provider's test server, a local fake, a proxy of one's own).
Anything else is refused, and so is a provider host that resolves to a loopback, private, link-local or
reserved address (brightback_site.ssrf, the webhooks' guard). The check runs when a connection is saved
and again every time a provider client is made (billing.providers.provider_for), so a stored address
that a changed setting no longer allows, or one written to the database by other means, sends nothing.

A listed prefix is the operator's explicit trust: it may name a private address (a fake on 127.0.0.1,
a server on the compose network). An entry matches an address with the same scheme, host and port
whose path starts with the entry's path at a `/` boundary.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

from brightback_site import ssrf

# The providers' own API hosts (https, port 443). Chargebee's is the site's own subdomain.
PROVIDER_HOSTS: dict[str, tuple[str, ...]] = {
    "stripe": ("api.stripe.com",),
    "recurly": ("v3.recurly.com", "v3.eu.recurly.com"),
    "chargebee": (),  # {site}.chargebee.com, see _provider_host
    "paddle": ("api.paddle.com", "sandbox-api.paddle.com"),
}
CHARGEBEE_SITE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class AddressRefused(ValueError):
    """The API address (or the site that makes one) is not one billing may send a key to."""


def _port(url: SplitResult) -> int:
    try:
        port = url.port
    except ValueError as exc:
        raise AddressRefused(f"{url.geturl()!r} has an invalid port") from exc
    return port if port is not None else (443 if url.scheme == "https" else 80)


def _parsed(address: str) -> SplitResult:
    url = urlsplit(address.strip())
    if url.scheme not in ("http", "https") or not url.hostname:
        raise AddressRefused(f"{address!r} is not an http(s) URL with a host")
    if url.username is not None or url.password is not None:
        raise AddressRefused(f"{address!r} carries a user name or password; billing sends its own key")
    if url.query or url.fragment:
        raise AddressRefused(f"{address!r} has a query or fragment; an API address is scheme, host, port and path")
    _port(url)
    return url


def _under(url: SplitResult, prefix: SplitResult) -> bool:
    if (url.scheme, url.hostname, _port(url)) != (prefix.scheme, prefix.hostname, _port(prefix)):
        return False
    base = prefix.path.rstrip("/")
    return url.path == base or url.path.startswith(base + "/") or not base


def allowed_prefixes() -> list[str]:
    return [p for p in getattr(settings, "BILLING_ALLOWED_API_BASES", []) if p.strip()]


def site_problem(provider: str, site: str) -> str | None:
    if provider == "chargebee" and site and not CHARGEBEE_SITE.match(site):
        return (f"{site!r} is not a Chargebee site name: use the name alone (acme in acme.chargebee.com), "
                "lowercase letters, digits and hyphens")
    return None


def api_base_check(provider: str, api_base: str, *, site: str = "") -> None:
    """Raise AddressRefused unless billing may send `provider`'s key to `api_base` (blank: the provider's
    own service) and, for Chargebee, `site` is a plain site name."""
    problem = site_problem(provider, site)
    if problem:
        raise AddressRefused(problem)
    if not api_base.strip():
        if provider == "chargebee" and site:
            try:
                ssrf.check_url(f"https://{site}.chargebee.com/")
            except ssrf.UnsafeAddress as exc:
                raise AddressRefused(f"{site}.chargebee.com resolves to an address billing refuses: {exc}") from exc
        return
    url = _parsed(api_base)
    for prefix in allowed_prefixes():
        if _under(url, _parsed(prefix)):
            return
    own = PROVIDER_HOSTS.get(provider, ())
    if provider == "chargebee" and site:
        own = (f"{site}.chargebee.com",)
    if url.scheme == "https" and _port(url) == 443 and url.hostname in own:
        try:
            ssrf.check_url(api_base)
        except ssrf.UnsafeAddress as exc:
            raise AddressRefused(f"{url.hostname} resolves to an address billing refuses: {exc}") from exc
        return
    hosts = ", ".join(f"https://{h}" for h in own) or "the provider's own service (leave it blank)"
    raise AddressRefused(
        f"{url.scheme}://{url.netloc} is neither the provider's own API ({hosts}) nor under an address listed "
        "in BILLING_ALLOWED_API_BASES; billing never sends its key there")


def settings_problems(prefixes: list[str]) -> list[str]:
    """What is wrong with the setting's entries (settings.py refuses to start with any)."""
    problems = []
    for prefix in prefixes:
        try:
            _parsed(prefix)
        except AddressRefused as exc:
            problems.append(str(exc))
    return problems
