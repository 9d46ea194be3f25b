from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from brightback_site.outbox import OutboxRow
from flows.models import App, CancelSession, Event


class ReceiptSettings(models.Model):
    """Per-App choices of the receipts channel: what a receipt says when the billing system does not
    say it (no connection, a dry run, a failure), and how customers reach support."""

    class Takes(models.TextChoices):
        PERIOD_END = "period_end", _("At the end of the billing period")
        IMMEDIATELY = "immediately", _("Immediately")

    app = models.OneToOneField(App, on_delete=models.CASCADE, related_name="receipt_settings")
    enabled = models.BooleanField(
        _("send receipts"), default=True,
        help_text=_("Email the customer a receipt when they cancel or an offer is applied (when their email is "
                    "known and the flow's compliance rules do not turn receipts off)."))
    cancel_takes_effect = models.CharField(
        _("a cancel takes effect"), max_length=12, choices=Takes.choices, default=Takes.PERIOD_END,
        help_text=_("Stated in cancel receipts when the billing system gives no date (not connected, dry run, "
                    "failed). With billing connected, its own answer is stated."))
    effective_text = models.CharField(
        _("when a cancel takes effect, in words"), max_length=200, blank=True,
        help_text=_("Replaces the standard words when billing gives no date, e.g. “on the 1st of next month”. "
                    "Blank: the standard words, translated."))
    way_back_days = models.PositiveSmallIntegerField(
        _("way back open for (days)"), default=30, validators=[MinValueValidator(1), MaxValueValidator(366)],
        help_text=_("When billing gives no date for a cancel at the end of the period: how long the receipt's "
                    "link to keep the subscription works."))
    support_url = models.URLField(
        _("support page"), blank=True,
        help_text=_("Where receipts and the way-back page send customers for help (with the App's support email)."))

    class Meta:
        verbose_name = "receipt settings"
        verbose_name_plural = "receipt settings"

    def __str__(self) -> str:
        return f"receipt settings of {self.app}"


class Receipt(OutboxRow):
    """One receipt to the customer about one event (a cancel, an applied offer): the outbox row, written
    in the transaction of its event, sent by a worker and retried until done. What it stated is kept
    (when the change takes effect, where that came from, until when its way back works), with the
    Message-ID and the time the mail server accepted it: the proof a durable medium asks for."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SUCCEEDED = "succeeded", _("Sent")
        FAILED = "failed", _("Failed")

    class Kind(models.TextChoices):
        CANCEL = "cancel", _("Cancel receipt")
        OFFER = "offer", _("Offer receipt")

    class Source(models.TextChoices):
        BILLING = "billing", _("the billing system's answer")
        SETTINGS = "settings", _("the App's receipt settings")

    CLAIMED = Status.SENDING
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="receipts")
    session = models.ForeignKey(CancelSession, on_delete=models.CASCADE, related_name="receipts")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="receipts")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    recipient = models.CharField(max_length=254, help_text=_("The customer's address."))
    language = models.CharField(max_length=12)
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text=_("When the mail server accepted it."))
    effective_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the change takes effect, as the receipt states it (none: in words)."))
    effective_source = models.CharField(max_length=8, choices=Source.choices, blank=True)
    way_back_until = models.DateTimeField(
        null=True, blank=True, help_text=_("Until when the cancel receipt's link keeps the subscription."))
    last_answer = models.TextField(blank=True, help_text=_("What the mail server last said."))

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["event", "kind"], name="receipt_once_per_event")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="receipt_status_due")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.session_id}"
