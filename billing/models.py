from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from brightback_site.fields import EncryptedTextField
from brightback_site.outbox import OutboxRow
from flows import ids
from flows.models import App, CancelSession, Decision, Event, Reason

from .providers import CHOICES as PROVIDER_CHOICES
from .providers.base import Credentials


class BillingConnection(models.Model):
    """An App's billing system, its keys (encrypted, never shown again) and what each decision does."""

    class CancelTiming(models.TextChoices):
        PERIOD_END = "period_end", _("At the end of the billing period")
        IMMEDIATELY = "immediately", _("Immediately")

    class CancelScope(models.TextChoices):
        NAMED = "named", _("Only the subscription the page named (or the customer's only one)")
        ALL = "all", _("All of the customer's active subscriptions")

    app = models.OneToOneField(App, on_delete=models.CASCADE, related_name="billing_connection")
    provider = models.CharField(max_length=20, choices=PROVIDER_CHOICES)
    test_api_key = EncryptedTextField(blank=True, default="", editable=False)
    live_api_key = EncryptedTextField(blank=True, default="", editable=False)
    site = models.CharField(_("live site"), max_length=100, blank=True, help_text=_(
        "Chargebee only: the live site's name (acme in acme.chargebee.com), used once the App is live."))
    test_site = models.CharField(_("test site"), max_length=100, blank=True, help_text=_(
        "Chargebee only: the test site's name (acme-test in acme-test.chargebee.com), used while the App is in "
        "test mode. Chargebee's test and live sites are separate, as their keys are."))
    stripe_account = models.CharField(
        _("Stripe Connect account"), max_length=64, blank=True,
        validators=[RegexValidator(r"^acct_[A-Za-z0-9]{1,59}$",
                                   _("A Stripe account id: acct_ and letters or digits."))],
        help_text=_("Stripe only, for platforms: the connected account (acct_…) the customers belong to; every call "
                    "is made on it (the Stripe-Account header). Blank: the key's own account."))
    region = models.CharField(
        max_length=2, choices=[("us", "US (v3.recurly.com)"), ("eu", "EU (v3.eu.recurly.com)")], default="us",
        help_text=_("Recurly only: the region the Recurly site is hosted in."))
    api_base = models.URLField(
        _("API address"), blank=True,
        help_text=_("Blank: the provider's own service. Another address (a provider's test server, a local "
                    "fake) for testing only."))
    dry_run = models.BooleanField(
        default=False, help_text=_("Record what would be sent to the billing system and send nothing."))
    cancel_timing = models.CharField(max_length=12, choices=CancelTiming.choices, default=CancelTiming.PERIOD_END)
    cancel_prorate = models.BooleanField(
        _("prorate an immediate cancel"), default=False,
        help_text=_("Immediate cancels only. Stripe: the unused time is credited to the customer's balance. "
                    "Chargebee: a credit note for the unused time. Recurly: no effect (its cancel has no "
                    "credit; see refund)."))
    cancel_refund = models.BooleanField(
        _("refund unused time"), default=False,
        help_text=_("Immediate cancels only. Recurly: the unused part of the period is refunded in money "
                    "(refund=partial). Off: nothing is refunded. Stripe and Chargebee never refund here."))
    cancel_invoice_now = models.BooleanField(
        _("invoice outstanding charges"), default=False,
        help_text=_("Bill outstanding usage and charges now (immediate cancels only)."))
    cancel_scope = models.CharField(max_length=8, choices=CancelScope.choices, default=CancelScope.NAMED)
    cancel_reason_codes = models.JSONField(
        _("cancel reason codes"), default=dict, blank=True,
        help_text=_("Chargebee only: the site's cancel reason code for each reason category, e.g. "
                    "{\"too_expensive\": \"Too Expensive\"} (Settings > Reason Codes > Subscription "
                    "Cancellation). A category left out sends no code."))
    checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    check_result = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["app"]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} for {self.app.name}"

    @property
    def api_key(self) -> str:
        """The key of the App's mode: test keys for a test App, live keys for a live one."""
        return self.live_api_key if self.app.is_live else self.test_api_key

    @property
    def mode_site(self) -> str:
        """Chargebee's site of the App's mode, chosen as the key is: the test site for a test App."""
        return self.site if self.app.is_live else self.test_site

    def credentials(self, *, timeout: float) -> Credentials:
        return Credentials(api_key=self.api_key, site=self.mode_site, api_base=self.api_base, timeout=timeout,
                           region=self.region, stripe_account=self.stripe_account if self.provider == "stripe" else "")

    def clean(self) -> None:
        """Refused at save: an API address billing may not send a key to (billing.addresses), a key of
        the other mode where the provider's key format tells, and dry run off with no key for the App's
        mode (every action would fail)."""
        from .addresses import AddressRefused, api_base_check, site_problem
        from .providers import provider_class

        errors: dict[str, str] = {}
        if not self.provider:
            return
        for name in ("site", "test_site"):
            problem = site_problem(self.provider, getattr(self, name))
            if problem:
                errors[name] = problem
        if not errors:
            # Each site makes its own host (https://SITE.chargebee.com); an explicit API address stands for
            # the site of the App's mode, the one its key goes to (checked again before every call).
            sites = [self.mode_site] if self.api_base.strip() and self.app_id else [self.test_site, self.site]
            try:
                for site in dict.fromkeys(sites):
                    api_base_check(self.provider, self.api_base, site=site)
            except AddressRefused as exc:
                errors["api_base"] = str(exc)
        if self.stripe_account and self.provider != "stripe":
            errors["stripe_account"] = "A Stripe Connect account is for Stripe connections only."
        provider = provider_class(self.provider)
        wrong = [mode for mode, key in ((App.Mode.TEST, self.test_api_key), (App.Mode.LIVE, self.live_api_key))
                 if key and provider.key_mode(key) not in (None, mode)]
        if wrong:
            errors[NON_FIELD_ERRORS] = " ".join(
                f"The {mode} key is a {provider.key_mode(key)} key of {provider.name}; set a {mode} key there."
                for mode, key in ((App.Mode.TEST, self.test_api_key), (App.Mode.LIVE, self.live_api_key))
                if mode in wrong)
        problem = reason_codes_problem(self.cancel_reason_codes)
        if problem:
            errors["cancel_reason_codes"] = problem
        if not self.dry_run and not self.api_key and self.app_id is not None:
            errors["dry_run"] = (f"The App is in {self.app.mode} mode and no {self.app.mode} key is set: set the "
                                 f"{self.app.mode} key, or turn dry run on until you have one.")
        if errors:
            raise ValidationError(errors)


REASON_CODE_MAX = 100  # Chargebee's cancel_reason_code is a string of at most 100 characters


def reason_codes_problem(codes: object) -> str:
    """What is wrong with a category -> reason code map, or "" (the admin and the flow document share it)."""
    if not isinstance(codes, dict):
        return "must be an object mapping reason categories to the billing system's reason codes"
    for category, code in codes.items():
        if category not in Reason.Category.values:
            return f"{category!r} is not a reason category (one of {', '.join(Reason.Category.values)})"
        if not isinstance(code, str) or not code.strip() or len(code) > REASON_CODE_MAX:
            return f"the code for {category} must be a non-empty string of at most {REASON_CODE_MAX} characters"
    return ""


class BillingAction(OutboxRow):
    """One decision carried out in the billing system: the outbox row, written in the event's transaction.

    `request` is frozen when the row is written (what to do, with the offer's terms and the App's
    choices of that moment), so a retry asks the provider for exactly the same change.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped (dry run)")

    class Kind(models.TextChoices):
        CANCEL = "cancel", _("Cancel")
        COUPON = "coupon", _("Apply coupon")
        PAUSE = "pause", _("Pause")
        PLAN_CHANGE = "plan_change", _("Change plan")
        TRIAL_EXTENSION = "trial_extension", _("Extend trial")
        REACTIVATE = "reactivate", _("Keep (remove a scheduled cancel)")
        SKIP_RENEWAL = "skip_renewal", _("Skip renewals")

    CLAIMED = Status.RUNNING

    public_id = models.CharField(max_length=40, unique=True, default=ids.billing_action_id, editable=False)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="billing_actions")
    session = models.ForeignKey(CancelSession, on_delete=models.CASCADE, related_name="billing_actions")
    decision = models.ForeignKey(Decision, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="billing_actions")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="billing_actions")
    provider = models.CharField(max_length=20, choices=PROVIDER_CHOICES)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    request = models.JSONField(default=dict, help_text=_("What was asked of the billing system."))
    subscription_ids = models.JSONField(default=list, blank=True,
                                        help_text=_("The subscriptions the action found and acted on."))
    result = models.JSONField(default=dict, blank=True, help_text=_("The provider's answer, per subscription."))
    summary = models.TextField(blank=True)
    log = models.JSONField(default=list, blank=True, help_text=_("Each attempt: when, and what happened."))
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error_detail = models.TextField(blank=True, help_text=_("The billing system's own words about the last "
                                                            "failure, behind the plain summary."))
    # Attempts the provider answered with an error: each starts a new idempotency key (see services).
    answered_failures = models.PositiveSmallIntegerField(default=0, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "kind"], name="billing_action_once_per_event_kind"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="billing_action_status_due")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.public_id})"

    @property
    def is_final(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED, self.Status.SKIPPED)


class SavePayment(models.Model):
    """What a saved customer paid over the watch window, read from the billing system's paid invoices when
    the save was checked after the window (billing/payments.py): one row per currency, and one row of 0 in
    the App's currency when nothing was paid (a pause, a trial). No row: the provider did not say."""

    session = models.ForeignKey(CancelSession, on_delete=models.CASCADE, related_name="+")
    currency = models.CharField(max_length=3)  # ISO 4217
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    invoices = models.PositiveIntegerField(default=0)
    window_end = models.DateTimeField(help_text=_("Invoices paid from the save until then count."))
    read_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "currency"], name="save_payment_per_currency")]

    def __str__(self) -> str:
        return f"{self.session_id}: {self.amount} {self.currency}"
