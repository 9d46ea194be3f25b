from __future__ import annotations

import re
from typing import ClassVar
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from brightback_site.fields import EncryptedTextField

from . import ids
from .currencies import validate_currency

LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
hex_color = RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Use a colour like #1f6feb."))


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


class App(models.Model):
    """A tenant: one subscription business (or one of its products) embedding the snippet."""

    class Mode(models.TextChoices):
        TEST = "test", _("Test (unsigned snippet data accepted)")
        LIVE = "live", _("Live (snippet data must carry a signed auth block)")

    app_id = models.CharField(
        _("app id"), max_length=64, unique=True, default=ids.app_public_id,
        validators=[RegexValidator(r"^[A-Za-z0-9_-]+$", _("Letters, digits, - and _ only."))],
        help_text=_("The public id pages pass to the snippet as app_id."),
    )
    name = models.CharField(max_length=200)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.TEST)
    secret = EncryptedTextField(default=ids.app_secret, editable=False)
    allowed_return_hosts = models.TextField(
        _("allowed return-URL hosts"), blank=True,
        help_text=_("One host per line (app.example.com, or *.example.com for its subdomains). "
                    "Return URLs on other hosts are refused."),
    )
    allowed_origins = models.TextField(
        _("allowed snippet origins"), blank=True,
        help_text=_("One origin per line (https://app.example.com): the pages allowed to call /precancel "
                    "from a browser."),
    )
    support_email = models.EmailField(blank=True, help_text=_("Where contact-support offers send customers."))
    currency = models.CharField(
        max_length=3, default="USD", validators=[validate_currency],
        help_text=_("ISO 4217 code (USD, EUR, GBP…) of the account values the snippet sends: reports show money "
                    "in it, and never add different currencies together."))
    offer_blocklist = models.TextField(
        _("accounts that never see offers"), blank=True,
        help_text=_("One account internal_id or email per line: these customers go straight to the choice "
                    "between staying and canceling."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.app_id})"

    @property
    def is_live(self) -> bool:
        return self.mode == self.Mode.LIVE

    @property
    def return_hosts(self) -> list[str]:
        return [h.lower() for h in _lines(self.allowed_return_hosts)]

    @property
    def origins(self) -> list[str]:
        return [o.rstrip("/").lower() for o in _lines(self.allowed_origins)]

    def blocks_offers_for(self, *, internal_id: str, email: str) -> bool:
        blocked = {entry.lower() for entry in _lines(self.offer_blocklist)}
        return bool(blocked) and (internal_id.lower() in blocked or (bool(email) and email.lower() in blocked))

    def allows_return_url(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        host = parts.hostname.lower()
        for allowed in self.return_hosts:
            if allowed.startswith("*."):
                if host.endswith(allowed[1:]):
                    return True
            elif host == allowed:
                return True
        return False


class Flow(models.Model):
    """The hosted page's configuration: copy, branding, and (through Reason and Offer) its content."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="flows")
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)
    priority = models.PositiveIntegerField(default=100, help_text=_("Lower numbers are tried first."))
    languages = models.CharField(
        max_length=200, blank=True,
        help_text=_("The languages this flow's copy is written in, e.g. “fr” or “de, de-at”: customers whose "
                    "snippet locale matches get it. Blank: any language (the fallback)."),
    )
    title = models.CharField(max_length=200, blank=True, help_text=_("Blank: “Before you go…”, translated."))
    intro = models.TextField(blank=True, help_text=_("A short paragraph under the title."))
    reasons_prompt = models.CharField(max_length=200, blank=True,
                                      help_text=_("Blank: “Why are you canceling?”, translated."))
    logo_url = models.URLField(blank=True)
    brand_color = models.CharField(max_length=7, default="#1f6feb", validators=[hex_color])
    background_color = models.CharField(max_length=7, default="#f6f8fa", validators=[hex_color])
    nevermind_label = models.CharField(max_length=100, blank=True)
    cancel_label = models.CharField(max_length=100, blank=True)
    cancel_note = models.TextField(
        blank=True, help_text=_("Shown beside the cancel button, e.g. when access ends."))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The number of the flow's latest published version (evidence.FlowVersion, written with it by
    # services.flow_version_published): a session notes the one its page showed. 0: none recorded yet.
    version = models.PositiveIntegerField(
        default=0, editable=False, help_text=_("The number of this flow's latest published version."))

    class Meta:
        ordering = ["app", "priority", "id"]
        constraints = [models.UniqueConstraint(fields=["app", "name"], name="flow_unique_name_per_app")]

    def __str__(self) -> str:
        return self.name

    @property
    def language_list(self) -> list[str]:
        return [language.lower() for language in _lines(self.languages)]

    def clean(self) -> None:
        bad = [language for language in self.language_list if not LANGUAGE_TAG.match(language)]
        if bad:
            raise ValidationError({"languages": _("Not a language tag: %(tags)s (use fr, de-at, …).")
                                   % {"tags": ", ".join(bad)}})


class Audience(models.Model):
    """A group of customers described by rules over their snippet data (audiences/rules.py).

    Routing tries an App's audiences in order: the first whose rules match is the session's audience
    and, when it names one, picks its Flow. Offers can be limited to audiences too.
    """

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="audiences")
    name = models.CharField(max_length=200)
    position = models.PositiveIntegerField(default=0, help_text=_("Lower numbers are tried first."))
    rules = models.JSONField(
        default=dict, blank=True,
        help_text=_('JSON, e.g. {"all": [{"field": "account.plan", "op": "in", "value": ["pro", "team"]}]}. '
                    "See docs/flow-format.md for the fields and comparisons."),
    )
    flow = models.ForeignKey(
        Flow, null=True, blank=True, on_delete=models.SET_NULL, related_name="audiences",
        help_text=_("The flow these customers get. Blank: the usual routing by priority and language."),
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["app", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["app", "name"], name="audience_unique_name_per_app")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from audiences.rules import rule_problems

        problems = rule_problems(self.rules if self.rules != {} else {"all": []})
        if problems:
            raise ValidationError({"rules": problems})
        if self.flow is not None and self.app_id is not None and self.flow.app_id != self.app_id:
            raise ValidationError({"flow": _("Choose a flow of this audience's own app.")})

    def matches(self, data: dict, *, now) -> bool:  # noqa: ANN001
        from audiences.rules import matches

        return matches(self.rules or {"all": []}, data, now=now)


class Variant(models.Model):
    """One arm of a Flow's experiment: its share of traffic, its offers and its copy.

    A Flow with active variants splits its customers between them by weight; a control variant shows
    no offers at all, so the report can tell what the flow's offers are worth.
    """

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="variants")
    code = models.SlugField(max_length=64, help_text=_("Stable code, in reports and webhooks."))
    name = models.CharField(max_length=200, blank=True)
    weight = models.PositiveIntegerField(
        default=1, help_text=_("Share of new customers, relative to the other variants' weights."))
    is_control = models.BooleanField(
        _("control"), default=False, help_text=_("Shows no offers: the baseline every variant is measured against."))
    offer_codes = models.CharField(
        _("offers"), max_length=2000, blank=True,
        help_text=_("Codes of the flow's offers this variant shows, comma-separated. Blank: all of them."))
    title = models.CharField(max_length=200, blank=True, help_text=_("Blank: the flow's title."))
    intro = models.TextField(blank=True, help_text=_("Blank: the flow's intro."))
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["flow", "id"]
        constraints = [
            models.UniqueConstraint(fields=["flow", "code"], name="variant_unique_code_per_flow"),
            models.UniqueConstraint(fields=["flow"], condition=models.Q(is_control=True, is_active=True),
                                    name="variant_one_active_control_per_flow"),
        ]

    def __str__(self) -> str:
        return self.name or self.code

    @property
    def offer_code_list(self) -> list[str]:
        return _lines(self.offer_codes)

    def clean(self) -> None:
        if self.is_control and self.offer_codes.strip():
            raise ValidationError({"offer_codes": _("A control shows no offers: leave this blank.")})
        if self.flow_id is not None and self.offer_code_list:
            from offers.models import Offer

            known = set(Offer.objects.filter(flow_id=self.flow_id).values_list("code", flat=True))
            unknown = [code for code in self.offer_code_list if code not in known]
            if unknown:
                raise ValidationError({"offer_codes": _("No offer with code %(codes)s in this flow.")
                                       % {"codes": ", ".join(unknown)}})


class VariantAssignment(models.Model):
    """Which variant of a Flow a customer got, once and for good: later visits get the same one, however
    the weights change."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="assignments")
    account_key = models.CharField(max_length=300)
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="assignments")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["flow", "account_key"], name="assignment_once_per_account")]

    def __str__(self) -> str:
        return f"{self.account_key} → {self.variant_id}"


class Reason(models.Model):
    class Category(models.TextChoices):
        """Stripe's cancellation feedback values (DESIGN §8): what billing systems are told of a cancel."""

        TOO_EXPENSIVE = "too_expensive", _("It's too expensive")
        UNUSED = "unused", _("I don't use it enough")
        MISSING_FEATURES = "missing_features", _("Some features are missing")
        SWITCHED_SERVICE = "switched_service", _("I'm switching to a different service")
        CUSTOMER_SERVICE = "customer_service", _("Customer service was less than expected")
        TOO_COMPLEX = "too_complex", _("Ease of use was less than expected")
        LOW_QUALITY = "low_quality", _("Quality was less than expected")
        OTHER = "other", _("Other reason")

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="reasons")
    code = models.SlugField(max_length=64, help_text=_("Stable code sent in webhooks and reports."))
    label = models.CharField(max_length=200)
    position = models.PositiveIntegerField(default=0)
    wants_feedback = models.BooleanField(
        default=False, help_text=_("Invite free text when chosen (use it for “Other”)."))
    is_active = models.BooleanField(default=True)
    category = models.CharField(
        max_length=20, choices=Category.choices, default=Category.OTHER,
        help_text=_("What the billing system is told when a customer cancels for this reason (Stripe's "
                    "cancellation feedback; Chargebee's reason code mapped from it)."))

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["flow", "code"], name="reason_unique_code_per_flow")]

    def __str__(self) -> str:
        return self.label


class CancelSession(models.Model):
    """One customer's visit to the hosted page, from /precancel to a decision (or expiry)."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DECIDED = "decided", _("Decided")
        ABANDONED = "abandoned", _("Abandoned")
        # Expired without its page ever being opened (the snippet posts /precancel when the account page
        # loads, not when the customer clicks Cancel): no event, in no report.
        EXPIRED = "expired", _("Expired unopened")

    # Unique by the constraints below, not unique=True: on PostgreSQL that also builds a second index of each
    # for LIKE queries, which nothing makes, and every /precancel and decision paid for them.
    public_id = models.CharField(max_length=40, default=ids.session_id, editable=False)
    token = models.CharField(max_length=64, default=ids.page_token, editable=False)
    # No index of its own: the indexes below that start with the App serve every lookup by App.
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="sessions", db_index=False)
    flow = models.ForeignKey(Flow, on_delete=models.PROTECT, related_name="sessions")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    is_test = models.BooleanField(default=False)
    email = models.CharField(max_length=254, blank=True)
    account_internal_id = models.CharField(max_length=255, blank=True)
    subscription_id = models.CharField(max_length=255, blank=True)
    # The customer as experiments and reports count them (experiments.account_key): repeat sessions of one
    # account collapse to its last outcome.
    account_key = models.CharField(max_length=300, blank=True)
    locale = models.CharField(max_length=35, blank=True)
    data = models.JSONField(help_text=_("The snippet's data as received (without auth)."))
    # What routing decided when the session started, kept for the page and for reports.
    # Indexed only where set (session_audience, session_variant below): most sessions have neither.
    audience = models.ForeignKey(Audience, null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions",
                                 db_index=False)
    variant = models.ForeignKey(Variant, null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions",
                                db_index=False)
    offer_codes = models.JSONField(
        null=True, blank=True,
        help_text=_("The offers this customer may see (variant, audiences and offer rules applied). "
                    "Null: all of the flow's."))
    monthly_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True,
                                        help_text=_("account.value per month (by plan_term)."))
    offers_shown_at = models.DateTimeField(null=True, blank=True, help_text=_("When the customer first saw offers."))
    offers_shown = models.JSONField(null=True, blank=True, help_text=_("The codes of every offer the customer saw."))
    created_at = models.DateTimeField(default=timezone.now)
    opened_at = models.DateTimeField(
        null=True, blank=True,
        help_text=_("When the customer first opened the page (or an embed of it): the session started then. "
                    "Never opened: not counted anywhere, and it expires without an event."))
    expires_at = models.DateTimeField()
    # The compliance rules that applied to this customer (the flow document's `compliance` section, the
    # region's rules over its country's over the default), resolved when the session started:
    # {"region": "US-CA" | "DE" | "", "cancel_button": ..., "offers": ..., "receipt": ...}, and what the page
    # said Cancel would do ("cancel_effective": "immediately" | "period_end"; see compliance/rules.py and
    # flows/cancel_terms.py). Empty: a session from before the rules.
    compliance = models.JSONField(
        default=dict, blank=True,
        help_text=_("The compliance rules applied to this session (region, cancel button, offers, receipt)."))
    # The flow's published version (Flow.version) when the customer first opened the page, or decided
    # without it: with `flow`, it names the evidence.FlowVersion the customer was shown.
    flow_version = models.PositiveIntegerField(
        null=True, blank=True, editable=False,
        help_text=_("The number of the flow version the customer was shown (set when the page is first opened)."))
    erased_at = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text=_("When the customer's personal data was erased (customer_erase, or SESSION_RETENTION_DAYS): "
                    "the counts stay, who it was does not."))

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="session_status_expiry"),
            # Reports and the CSV export read sessions by App and time.
            models.Index(fields=["app", "created_at"], name="session_app_created"),
            models.Index(fields=["created_at"], name="session_created"),
            # Offer caps and save confirmation look a customer's earlier sessions up.
            models.Index(fields=["app", "account_internal_id"], name="session_app_account"),
            # Reports find an account's later decisions (its last outcome).
            models.Index(fields=["app", "account_key", "created_at"], name="session_app_key_created"),
            # A session's audience and variant, where it has one: `= x` (reports' filters, the SET NULL when one
            # is deleted) implies NOT NULL, so these serve every lookup the full indexes did, and a session
            # routed by neither (most) writes no entry to them, at /precancel nor at each UPDATE of its row.
            models.Index(fields=["audience"], name="session_audience", condition=models.Q(audience__isnull=False)),
            models.Index(fields=["variant"], name="session_variant", condition=models.Q(variant__isnull=False)),
        ]
        constraints = [
            models.UniqueConstraint(fields=["public_id"], name="session_public_id_unique"),
            # The hosted page's and the decision's lookup (flows.selectors.session_by_token).
            models.UniqueConstraint(fields=["token"], name="session_token_unique"),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN and not self.is_expired

    @property
    def takes_a_later_cancel(self) -> bool:
        """A customer who chose to stay (Nevermind, an offer) may still cancel from this page until it
        expires: the cancel supersedes the save (see Decision)."""
        decision = getattr(self, "decision", None)
        return decision is not None and decision.is_save and not self.is_expired and self.erased_at is None

    @property
    def was_opened(self) -> bool:
        return self.opened_at is not None

    def shows_offer(self, code: str) -> bool:
        return self.offer_codes is None or code in self.offer_codes

    @property
    def title(self) -> str:
        return (self.variant.title if self.variant_id and self.variant else "") or self.flow.title

    @property
    def intro(self) -> str:
        return (self.variant.intro if self.variant_id and self.variant else "") or self.flow.intro

    def return_url(self, key: str) -> str:
        value = self.data.get(key)
        return value if isinstance(value, str) else ""

    @property
    def account(self) -> dict:
        account = self.data.get("account")
        return account if isinstance(account, dict) else {}


class Decision(models.Model):
    """What the customer chose. Each kind at most once per session (the unique key makes a decision recorded
    once); `session.decision` is the one in force.

    A session has one decision, but for a later Cancel: a customer who chose Nevermind or accepted an offer
    may still cancel from the same page, and that cancel supersedes the save. The save stays (what was
    offered and chosen is evidence), no longer in force; reports, webhooks and billing follow the cancel.
    """

    class Kind(models.TextChoices):
        NEVERMIND = "nevermind", _("Nevermind")
        ACCEPT = "accept", _("Accepted an offer")
        CANCEL = "cancel", _("Canceled")

    # Kind.values builds its list anew on every read (Django's enum): every decision POST checks its action here.
    KINDS: ClassVar[frozenset[str]] = frozenset(Kind.values)

    # No index of its own: decision_once_per_session_kind (session, kind) serves every lookup by session.
    session = models.ForeignKey(CancelSession, on_delete=models.CASCADE, related_name="decisions", db_index=False)
    # Set on the decision in force, cleared when a later Cancel supersedes it: `session.decision`.
    in_force_for = models.OneToOneField(CancelSession, null=True, blank=True, on_delete=models.CASCADE,
                                        related_name="decision", editable=False)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    reason = models.ForeignKey(Reason, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason_code = models.CharField(max_length=64, blank=True)
    reason_label = models.CharField(max_length=200, blank=True)
    feedback = models.TextField(blank=True)
    # Indexed only where set (decision_offer below): only an accepted offer has one.
    offer = models.ForeignKey("offers.Offer", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="decisions", db_index=False)
    offer_code = models.CharField(max_length=64, blank=True)
    redirect_url = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["session", "kind"], name="decision_once_per_session_kind"),
            models.CheckConstraint(
                condition=models.Q(in_force_for__isnull=True) | models.Q(in_force_for=models.F("session")),
                name="decision_in_force_for_its_own_session"),
        ]
        indexes = [
            # The offer cap reads decisions by kind and time; reports read the latest saves and notes.
            models.Index(fields=["kind", "created_at"], name="decision_kind_created"),
            models.Index(fields=["-created_at"], name="decision_saves_latest",
                         condition=models.Q(kind__in=["nevermind", "accept"])),
            models.Index(fields=["-created_at"], name="decision_feedback_latest", condition=~models.Q(feedback="")),
            models.Index(fields=["offer"], name="decision_offer", condition=models.Q(offer__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.session.public_id}: {self.kind}"

    @property
    def is_in_force(self) -> bool:
        return self.in_force_for_id is not None

    @property
    def is_save(self) -> bool:
        return self.kind in (self.Kind.NEVERMIND, self.Kind.ACCEPT)


class Event(models.Model):
    """An immutable fact (DESIGN §4), written in the transaction of what caused it.

    Channels (webhooks, alerts, billing) turn each event into their own outbox rows inside that same
    transaction (see BRIGHTBACK_EVENT_HANDLERS), so nothing is published that was not committed and
    nothing committed goes unpublished.
    """

    class Type(models.TextChoices):
        SESSION_NEVERMIND = "session.nevermind"
        OFFER_ACCEPTED = "offer.accepted"
        OFFER_EMAIL_REQUESTED = "offer.email_requested"
        SESSION_CANCELED = "session.canceled"
        SESSION_ABANDONED = "session.abandoned"
        SAVE_CONFIRMED = "save.confirmed"
        BILLING_ACTION_FAILED = "billing.action_failed"
        # A customer who canceled came back through their receipt's link and kept the subscription.
        SESSION_REACTIVATED = "session.reactivated"

    id = models.CharField(primary_key=True, max_length=32, default=ids.event_id, editable=False)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="events")
    # No index of its own: event_once_per_session_type (session, type) serves every lookup by session.
    session = models.ForeignKey(CancelSession, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="events", db_index=False)
    type = models.CharField(max_length=40, choices=Type.choices, db_index=True)
    data = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A session yields each type of event once, whatever replays or sweeps happen.
            models.UniqueConstraint(fields=["session", "type"], name="event_once_per_session_type"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"


class AppAccess(models.Model):
    """A staff member's access to one App: reading its rows (viewer) or also changing them (editor).

    Superusers see every App. Any other staff user sees only the Apps granted here, and changes only
    those where they are an editor, and then only what their Django permissions allow: the role is a
    ceiling on the permissions, never a grant of more.
    """

    class Role(models.TextChoices):
        VIEWER = "viewer", _("viewer (reads only)")
        EDITOR = "editor", _("editor (changes what their permissions allow)")

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="staff_access")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="app_access")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["app", "user"]
        verbose_name = _("staff access")
        verbose_name_plural = _("staff access")
        constraints = [models.UniqueConstraint(fields=["app", "user"], name="app_access_once_per_user")]

    def __str__(self) -> str:
        return f"{self.user} {self.role} of {self.app}"


def readable_text_on(hex_colour: str) -> str:
    """Black or white, whichever reads better on the colour (WCAG relative luminance)."""
    try:
        channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    except (ValueError, IndexError):
        return "#ffffff"
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "#000000" if luminance > 0.179 else "#ffffff"
