from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from brightback_site.fields import EncryptedTextField

from . import ids

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


class Reason(models.Model):
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="reasons")
    code = models.SlugField(max_length=64, help_text=_("Stable code sent in webhooks and reports."))
    label = models.CharField(max_length=200)
    position = models.PositiveIntegerField(default=0)
    wants_feedback = models.BooleanField(
        default=False, help_text=_("Invite free text when chosen (use it for “Other”)."))
    is_active = models.BooleanField(default=True)

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

    public_id = models.CharField(max_length=40, unique=True, default=ids.session_id, editable=False)
    token = models.CharField(max_length=64, unique=True, default=ids.page_token, editable=False)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="sessions")
    flow = models.ForeignKey(Flow, on_delete=models.PROTECT, related_name="sessions")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    is_test = models.BooleanField(default=False)
    email = models.CharField(max_length=254, blank=True)
    account_internal_id = models.CharField(max_length=255, blank=True)
    subscription_id = models.CharField(max_length=255, blank=True)
    locale = models.CharField(max_length=35, blank=True)
    data = models.JSONField(help_text=_("The snippet's data as received (without auth)."))
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "expires_at"], name="session_status_expiry")]

    def __str__(self) -> str:
        return self.public_id

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN and not self.is_expired

    def return_url(self, key: str) -> str:
        value = self.data.get(key)
        return value if isinstance(value, str) else ""

    @property
    def account(self) -> dict:
        account = self.data.get("account")
        return account if isinstance(account, dict) else {}


class Decision(models.Model):
    """What the customer chose. One per session: the unique key makes a decision recorded once."""

    class Kind(models.TextChoices):
        NEVERMIND = "nevermind", _("Nevermind")
        ACCEPT = "accept", _("Accepted an offer")
        CANCEL = "cancel", _("Canceled")

    session = models.OneToOneField(CancelSession, on_delete=models.CASCADE, related_name="decision")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    reason = models.ForeignKey(Reason, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason_code = models.CharField(max_length=64, blank=True)
    reason_label = models.CharField(max_length=200, blank=True)
    feedback = models.TextField(blank=True)
    offer = models.ForeignKey("offers.Offer", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="decisions")
    offer_code = models.CharField(max_length=64, blank=True)
    redirect_url = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.session.public_id}: {self.kind}"


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

    id = models.CharField(primary_key=True, max_length=32, default=ids.event_id, editable=False)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="events")
    session = models.ForeignKey(CancelSession, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="events")
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


def readable_text_on(hex_colour: str) -> str:
    """Black or white, whichever reads better on the colour (WCAG relative luminance)."""
    try:
        channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    except (ValueError, IndexError):
        return "#ffffff"
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "#000000" if luminance > 0.179 else "#ffffff"
