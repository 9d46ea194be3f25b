from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext


class Offer(models.Model):
    """A retention offer shown on a Flow's page, for all reasons or only for some."""

    class Kind(models.TextChoices):
        DISCOUNT = "discount", _("Discount")
        PAUSE = "pause", _("Pause")
        PLAN_CHANGE = "plan_change", _("Plan change")
        TRIAL_EXTENSION = "trial_extension", _("Trial extension")
        SKIP_RENEWAL = "skip_renewal", _("Skip renewals")
        CONTACT_SUPPORT = "contact_support", _("Talk to support (email)")
        CUSTOM_LINK = "custom_link", _("Custom link")

    flow = models.ForeignKey("flows.Flow", on_delete=models.CASCADE, related_name="offers")
    code = models.SlugField(max_length=64, help_text=_("Stable code, sent in webhooks and on the page."))
    kind = models.CharField(max_length=20, choices=Kind.choices)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    accept_label = models.CharField(max_length=100, blank=True, help_text=_("Blank: a label for the kind."))
    reasons = models.ManyToManyField(
        "flows.Reason", blank=True, related_name="offers",
        help_text=_("Show only for these reasons. None: show for every reason."),
    )
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    snippet_url_slot = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(99)],
        help_text=_("N: accepting goes to the snippet's offer_N_url when the page passed one."),
    )
    return_url = models.URLField(blank=True, max_length=2000,
                                 help_text=_("Where accepting goes without offer_N_url (blank: save_return_url)."))
    # Kind-specific terms; which ones apply is checked in clean().
    coupon = models.CharField(max_length=200, blank=True, help_text=_("Billing coupon id (discount)."))
    discount_percent = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(100)])
    discount_months = models.PositiveSmallIntegerField(null=True, blank=True)
    pause_months = models.PositiveSmallIntegerField(null=True, blank=True,
                                                    validators=[MinValueValidator(1), MaxValueValidator(24)])
    plan = models.CharField(max_length=200, blank=True, help_text=_("Target plan or price id (plan change)."))
    plan_change_timing = models.CharField(
        max_length=10, blank=True, choices=[("now", _("Now")), ("renewal", _("At the next renewal"))],
        help_text=_("Plan change: when the billing system moves the plan (blank: now)."))
    trial_days = models.PositiveSmallIntegerField(null=True, blank=True,
                                                  validators=[MinValueValidator(1), MaxValueValidator(365)])
    skip_renewals = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(12)],
        help_text=_("Skip renewals: how many renewals in a row the customer is not charged for (1-12; blank: 1)."))
    support_email = models.EmailField(blank=True, help_text=_("Contact support: blank uses the App's."))
    link_url = models.URLField(blank=True, max_length=2000, help_text=_("Custom link: where it goes."))
    # Rules: who may see the offer. Checked once, when the session starts (offers/eligibility.py).
    audiences = models.ManyToManyField(
        "flows.Audience", blank=True, related_name="offers",
        help_text=_("Show only to customers in one of these audiences. None: everyone."))
    cap_days = models.PositiveSmallIntegerField(
        _("once per customer within (days)"), null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("Hide it from a customer who accepted an offer with this code in the last N days."))
    hide_during_trial = models.BooleanField(
        default=False, help_text=_("Hide it while the customer is trialing (account.trial_ends_at ahead, or "
                                   "account.status “trialing”)."))
    min_monthly_value = models.DecimalField(
        null=True, blank=True, max_digits=12, decimal_places=2, validators=[MinValueValidator(0)],
        help_text=_("Hide it below this monthly plan value (account.value by plan_term); hidden too when the "
                    "value is unknown."))

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["flow", "code"], name="offer_unique_code_per_flow")]

    # The term fields of each kind, and which of them must be set.
    TERMS: dict[str, tuple[str, ...]] = {
        Kind.DISCOUNT: ("coupon", "discount_percent", "discount_months"),
        Kind.PAUSE: ("pause_months",),
        Kind.PLAN_CHANGE: ("plan", "plan_change_timing"),
        Kind.TRIAL_EXTENSION: ("trial_days",),
        Kind.SKIP_RENEWAL: ("skip_renewals",),
        Kind.CONTACT_SUPPORT: ("support_email",),
        Kind.CUSTOM_LINK: ("link_url",),
    }
    REQUIRED_TERMS: dict[str, tuple[str, ...]] = {
        Kind.DISCOUNT: ("discount_percent",),
        Kind.PAUSE: ("pause_months",),
        Kind.PLAN_CHANGE: ("plan",),
        Kind.TRIAL_EXTENSION: ("trial_days",),
        Kind.SKIP_RENEWAL: (),
        Kind.CUSTOM_LINK: ("link_url",),
        Kind.CONTACT_SUPPORT: (),
    }

    # A term left blank that has a value all the same (DESIGN §8: a skip is of one renewal unless told).
    TERM_DEFAULTS: dict[str, int] = {"skip_renewals": 1}

    def __str__(self) -> str:
        return f"{self.title} ({self.code})"

    def clean(self) -> None:
        missing = {
            name: _("Required for a %(kind)s offer.") % {"kind": self.get_kind_display()}
            for name in self.REQUIRED_TERMS.get(self.kind, ())
            if getattr(self, name) in (None, "")
        }
        if missing:
            raise ValidationError(missing)

    @property
    def skip_summary(self) -> str:
        """A skip's promise in the active language: the hosted page and the embeds' API say the same."""
        renewals = self.terms().get("skip_renewals") or 1
        return ngettext("Keep your subscription and pay nothing for %(count)s renewal.",
                        "Keep your subscription and pay nothing for the next %(count)s renewals.",
                        renewals) % {"count": renewals}

    @property
    def discount_fraction(self) -> float:
        """The share of the price given away: what revenue-saved reports net off."""
        return (self.discount_percent or 0) / 100 if self.kind == self.Kind.DISCOUNT else 0.0

    def terms(self) -> dict:
        """The kind-specific terms, for webhooks and billing actions."""
        found = {name: getattr(self, name) for name in self.TERMS[self.kind]}
        found = {name: self.TERM_DEFAULTS.get(name) if value in (None, "") else value for name, value in found.items()}
        return {name: value for name, value in found.items() if value not in (None, "")}
