from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, validate_email
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from brightback_site import ssrf
from brightback_site.fields import EncryptedTextField
from brightback_site.outbox import OutboxRow
from flows.models import App, Event

# Events a rule may ask for: every event type of DESIGN §4.
EVENT_TYPES = tuple(Event.Type.values)


def recipient_problems(recipients: list[str]) -> list[str]:
    problems = []
    for address in recipients:
        try:
            validate_email(address)
        except ValidationError:
            problems.append(gettext("%(address)s is not an email address.") % {"address": address})
    return problems


def slack_url_problem(url: str) -> str | None:
    if not url:
        return None
    if not url.lower().startswith(("https://", "http://")):
        return gettext("Use the https:// URL Slack gives an incoming webhook.")
    try:
        ssrf.check_url(url)
    except ssrf.UnsafeAddress as exc:
        return str(exc)
    return None


class AlertRule(models.Model):
    """Who hears about which events of an App: email recipients (a person, a team list or a help
    desk's inbox) and/or a Slack incoming webhook."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="alert_rules")
    events = models.JSONField(default=list, help_text=_("The event types that trigger this alert."))
    recipients = models.JSONField(
        default=list, blank=True,
        help_text=_("Email addresses, e.g. your help desk's inbox (Zendesk, Help Scout, Freshdesk)."))
    slack_webhook_url = EncryptedTextField(
        _("Slack webhook URL"), blank=True, default="",
        help_text=_("An incoming-webhook URL (https://hooks.slack.com/services/…). Blank: no Slack message."))
    live_only = models.BooleanField(
        _("live sessions only"), default=False,
        help_text=_("Skip sessions of an App in test mode, so test clicks do not open tickets."))
    position = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["app", "position", "id"]

    def __str__(self) -> str:
        targets = list(self.recipients) + (["Slack"] if self.slack_webhook_url else [])
        return f"{', '.join(self.events) or 'no events'} → {', '.join(targets) or 'nobody'}"

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if not isinstance(self.events, list) or not self.events:
            errors["events"] = [gettext("Choose at least one event type.")]
        else:
            unknown = sorted(set(self.events) - set(EVENT_TYPES))
            if unknown:
                errors["events"] = [gettext("Unknown event types: %s") % ", ".join(unknown)]
        if not isinstance(self.recipients, list) or not all(isinstance(r, str) for r in self.recipients):
            errors["recipients"] = [gettext("A list of email addresses.")]
        elif problems := recipient_problems(self.recipients):
            errors["recipients"] = problems
        if problem := slack_url_problem(self.slack_webhook_url):
            errors["slack_webhook_url"] = [problem]
        if not errors and not self.recipients and not self.slack_webhook_url:
            errors["recipients"] = [gettext("Give at least one recipient or a Slack webhook URL.")]
        if errors:
            raise ValidationError(errors)

    def wants(self, *, event_type: str, is_test: bool) -> bool:
        return event_type in self.events and not (self.live_only and is_test)


class AlertSettings(models.Model):
    """Per-App choices of the alerts channel: what the team promises and what customers receive."""

    app = models.OneToOneField(App, on_delete=models.CASCADE, related_name="alert_settings")
    response_business_days = models.PositiveSmallIntegerField(
        _("promised response time (business days)"), default=1, validators=[MaxValueValidator(30)],
        help_text=_("How soon the team answers a customer who asked to talk to support; alerts state the "
                    "date, and the customer's acknowledgement promises it. 0: the same day."))
    customer_acknowledgement = models.BooleanField(
        _("acknowledge contact requests"), default=False,
        help_text=_("Email the customer after they ask to talk to support, saying when to expect an answer."))
    cancellation_receipt = models.BooleanField(
        _("send cancellation receipts"), default=False,
        help_text=_("Email the customer what was canceled and when it takes effect."))
    cancellation_effective = models.CharField(
        _("when a cancellation takes effect"), max_length=200, blank=True,
        help_text=_("Stated in the receipt, e.g. “at the end of your current billing period”. Blank: that "
                    "phrase, translated."))

    class Meta:
        verbose_name = "alert settings"
        verbose_name_plural = "alert settings"

    def __str__(self) -> str:
        return f"alert settings of {self.app}"


class AlertDelivery(OutboxRow):
    """One message to one destination (a rule's email recipients, its Slack channel, or the customer):
    the outbox row, written in the transaction of its event, sent by a worker and retried until done.

    The facts rendered are frozen on the row (`event_type`, `data`, `occurred_at`), so a retry or a
    re-send says the same thing, and a test alert needs no event.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SUCCEEDED = "succeeded", _("Sent")
        FAILED = "failed", _("Failed")

    class Kind(models.TextChoices):
        TEAM_EMAIL = "team_email", _("Email to the team")
        SLACK = "slack", _("Slack message")
        ACKNOWLEDGEMENT = "acknowledgement", _("Acknowledgement to the customer")
        RECEIPT = "receipt", _("Cancellation receipt to the customer")

    CLAIMED = Status.SENDING
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="alert_deliveries")
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries")
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_deliveries")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    event_type = models.CharField(max_length=40)
    data = models.JSONField(help_text=_("The event's data, as rendered on every attempt."))
    occurred_at = models.DateTimeField()
    recipients = models.JSONField(default=list, blank=True)
    slack_webhook_url = EncryptedTextField(blank=True, default="")
    language = models.CharField(max_length=12, blank=True, help_text=_("Customer messages: their language."))
    is_test = models.BooleanField(default=False, help_text=_("Sent from the admin; tried once."))
    last_answer = models.TextField(blank=True, help_text=_("What the mail server or Slack last said."))
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "alert deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "rule", "kind"],
                                    condition=models.Q(event__isnull=False, rule__isnull=False),
                                    name="alert_once_per_event_rule_kind"),
            models.UniqueConstraint(fields=["event", "kind"],
                                    condition=models.Q(event__isnull=False, rule__isnull=True,
                                                       kind__in=["acknowledgement", "receipt"]),
                                    name="customer_alert_once_per_event"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="alert_status_due")]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.destination}"

    @property
    def destination(self) -> str:
        if self.kind == self.Kind.SLACK:
            return "Slack"
        return ", ".join(self.recipients)
