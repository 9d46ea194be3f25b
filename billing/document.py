"""The flow document's `billing` section (docs/flow-format.md): the provider and the App's choices,
never a key. Registered in settings.BRIGHTBACK_DOCUMENT_SECTIONS.

    "billing": {"provider": "stripe", "site": "", "test_site": "" (Chargebee only), "region": "us" (Recurly only),
                "stripe_account": "acct_…" (Stripe Connect, when set), "dry_run": false,
                "cancel": {"timing": "period_end", "prorate": false, "refund": false, "invoice_now": false,
                           "scope": "named"},
                "cancel_reason_codes": {"too_expensive": "Too Expensive"} (Chargebee only)}

`null` means "not connected" (an import removes the connection); a document without the section leaves
the connection as it is. Keys are set with `manage.py billing_connect` or in the admin, so a document
can live in git.
"""

from __future__ import annotations

import re
from typing import Any

from flows.models import App

from . import services
from .models import BillingConnection, reason_codes_problem
from .providers import PROVIDER_MODULES

CANCEL_FIELDS = {
    "timing": ("cancel_timing", BillingConnection.CancelTiming.values),
    "prorate": ("cancel_prorate", None),
    "refund": ("cancel_refund", None),
    "invoice_now": ("cancel_invoice_now", None),
    "scope": ("cancel_scope", BillingConnection.CancelScope.values),
}
TOP_FIELDS = {"provider", "site", "test_site", "region", "stripe_account", "dry_run", "cancel", "cancel_reason_codes"}
SECRET_WORDS = ("key", "secret", "token", "password")
STRIPE_ACCOUNT = re.compile(r"^acct_[A-Za-z0-9]{1,59}$")


class BillingSection:
    key = "billing"

    def export(self, *, app: App) -> dict | None:
        connection = BillingConnection.objects.filter(app=app).first()
        if connection is None:
            return None
        return {
            "provider": connection.provider,
            "site": connection.site,
            **({"test_site": connection.test_site} if connection.provider == "chargebee" else {}),
            **({"region": connection.region} if connection.provider == "recurly" else {}),
            **({"stripe_account": connection.stripe_account} if connection.stripe_account else {}),
            "dry_run": connection.dry_run,
            "cancel": {name: getattr(connection, column) for name, (column, _) in CANCEL_FIELDS.items()},
            **({"cancel_reason_codes": connection.cancel_reason_codes} if connection.provider == "chargebee" else {}),
        }

    def problems(self, value: Any, *, path: str, app_id: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, dict):
            return [f"{path}: must be an object, or null for no billing connection"]
        problems = []
        for name in value:
            if any(word in name.lower() for word in SECRET_WORDS):
                problems.append(f"{path}.{name}: a document never carries billing keys; set them with "
                                "`manage.py billing_connect` or in the admin")
            elif name not in TOP_FIELDS:
                problems.append(f"{path}.{name}: unknown field")
        provider = value.get("provider")
        if provider not in PROVIDER_MODULES:
            problems.append(f"{path}.provider: must be one of {', '.join(PROVIDER_MODULES)}")
        for name in ("site", "test_site", "stripe_account"):
            if not isinstance(value.get(name, ""), str):
                problems.append(f"{path}.{name}: must be a string")
        live = App.objects.filter(app_id=app_id, mode=App.Mode.LIVE).exists()
        needed = "site" if live else "test_site"  # the site of the App's mode, as its key
        if provider == "chargebee" and not value.get(needed) and not _connected_site(app_id, needed):
            problems.append(f"{path}.{needed}: Chargebee needs the {'live' if live else 'test'} site's name (acme"
                            f"{'' if live else '-test'} in acme{'' if live else '-test'}.chargebee.com)")
        address = _stored_address_problem(app_id, provider)
        if address:
            problems.append(f"{path}.api_base: {address}")
        account = value.get("stripe_account", "")
        if account and (provider != "stripe" or not isinstance(account, str) or not STRIPE_ACCOUNT.match(account)):
            problems.append(f"{path}.stripe_account: a Stripe connection's connected account id (acct_…)")
        if value.get("region", "us") not in ("us", "eu"):
            problems.append(f"{path}.region: must be us or eu (Recurly's regions)")
        if not isinstance(value.get("dry_run", False), bool):
            problems.append(f"{path}.dry_run: must be true or false")
        elif not _dry_run(value, app_id) and not _has_key(app_id, provider):
            problems.append(f"{path}.dry_run: false needs the App's API key for its mode first; set it with "
                            f"`manage.py billing_connect {app_id} {provider} --api-key-env VAR`, or import with "
                            "\"dry_run\": true until then")
        codes = value.get("cancel_reason_codes", {})
        problem = reason_codes_problem(codes)
        if problem:
            problems.append(f"{path}.cancel_reason_codes: {problem}")
        elif codes and provider != "chargebee":
            problems.append(f"{path}.cancel_reason_codes: only Chargebee takes the site's reason codes; {provider} "
                            "is told the reason's category itself, or nothing (see the README)")
        cancel = value.get("cancel", {})
        if not isinstance(cancel, dict):
            problems.append(f"{path}.cancel: must be an object")
            return problems
        for name, item in cancel.items():
            where = f"{path}.cancel.{name}"
            if name not in CANCEL_FIELDS:
                problems.append(f"{where}: unknown field")
                continue
            allowed = CANCEL_FIELDS[name][1]
            if allowed is None and not isinstance(item, bool):
                problems.append(f"{where}: must be true or false")
            elif allowed is not None and item not in allowed:
                problems.append(f"{where}: must be one of {', '.join(allowed)}")
        return problems

    def apply(self, value: Any, *, app: App) -> list[str]:
        if value is None:
            deleted, _ = BillingConnection.objects.filter(app=app).delete()
            return ["billing: connection removed"] if deleted else []
        choices = {column: value["cancel"][name] for name, (column, _) in CANCEL_FIELDS.items()
                   if name in value.get("cancel", {})}
        if "dry_run" in value:
            choices["dry_run"] = value["dry_run"]
        for name in ("region", "test_site", "stripe_account", "cancel_reason_codes"):
            if name in value:
                choices[name] = value[name]
        connection = services.connection_save(app=app, provider=value["provider"],
                                              site=value.get("site") if "site" in value else None, **choices)
        if not connection.api_key:
            return [f"billing: {connection.get_provider_display()} has no {app.mode} key yet; set it with "
                    f"`manage.py billing_connect {app.app_id} {connection.provider} --api-key-env VAR`"]
        return []


def _dry_run(value: dict, app_id: str) -> bool:
    """What the connection's dry run will be after the import: the document's, else the stored one, else
    off (a new connection's default)."""
    if "dry_run" in value:
        return bool(value["dry_run"])
    stored = BillingConnection.objects.filter(app__app_id=app_id).values_list("dry_run", flat=True).first()
    return bool(stored)


def _has_key(app_id: str, provider: Any) -> bool:
    connection = BillingConnection.objects.select_related("app").filter(app__app_id=app_id).first()
    return connection is not None and connection.provider == provider and bool(connection.api_key)


def _stored_address_problem(app_id: str, provider: Any) -> str | None:
    """The import keeps the connection's stored API address (a document never names it): say so when this
    server may no longer send a key there (BILLING_ALLOWED_API_BASES changed since it was saved), instead of
    failing at save."""
    from .addresses import AddressRefused, api_base_check

    connection = BillingConnection.objects.select_related("app").filter(app__app_id=app_id).first()
    if connection is None or connection.provider != provider or not connection.api_base.strip():
        return None
    try:
        api_base_check(connection.provider, connection.api_base, site=connection.mode_site)
    except AddressRefused as exc:
        return (f"{exc} (the connection's stored address: list it in BILLING_ALLOWED_API_BASES, or change it "
                f"with `manage.py billing_connect {app_id} {connection.provider} --api-base URL`)")
    return None


def _connected_site(app_id: str, field: str) -> str:
    return (BillingConnection.objects.filter(app__app_id=app_id).values_list(field, flat=True).first() or "")
