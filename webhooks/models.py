from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from brightback_site import ssrf
from brightback_site.fields import EncryptedTextField
from brightback_site.outbox import OutboxRow
from flows.models import App, Event

from . import signing


class Endpoint(models.Model):
    """A URL of the App's own that receives its events, signed with the endpoint's secret."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(_("URL"), max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(
        default=list, blank=True, help_text=_("The event types sent here. None ticked: every type."))
    is_active = models.BooleanField(
        _("active"), default=True,
        help_text=_("Untick to stop sending. Endpoints that only fail for days are unticked automatically."))
    send_hub_signature = models.BooleanField(
        _("send X-Hub-Signature"), default=False,
        help_text=_("Also sign with Brightback's legacy X-Hub-Signature header (HMAC-SHA1 of the body)."))
    secret = EncryptedTextField(default=signing.secret_new, editable=False)
    previous_secret = EncryptedTextField(blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    secret_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    failing_since = models.DateTimeField(
        null=True, blank=True, editable=False, help_text=_("Start of the current run of failed attempts."))
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.TextField(blank=True, editable=False)
    # A wake-up for this endpoint is queued: new deliveries need not publish another (services.endpoints_wake),
    # for WEBHOOK_PUBLISH_GRACE_SECONDS after `wake_requested_at` (a Redis restarted empty loses the message
    # and leaves the flag set; the next event after that wakes the endpoint again, without the sweeper).
    wake_requested = models.BooleanField(default=False, editable=False)
    wake_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    # One run at a time per endpoint (services.endpoint_deliver_due): held until this time by the run
    # sending to it, so a receiver that hangs holds one worker slot at most, never all of them.
    run_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    # An endpoint in trouble (no answer, 5xx, 429) backs off as a whole: nothing is sent to it before
    # this time. `troubled_runs` counts the runs in a row that ended in trouble (the backoff doubles).
    backoff_until = models.DateTimeField(null=True, blank=True, editable=False)
    troubled_runs = models.PositiveSmallIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["app", "id"]

    def __str__(self) -> str:
        return self.url

    def clean(self) -> None:
        if not self.url.lower().startswith(("https://", "http://")):
            raise ValidationError({"url": _("Use an http:// or https:// URL.")})
        try:
            ssrf.check_url(self.url)
        except ssrf.UnsafeAddress as exc:
            raise ValidationError({"url": str(exc)}) from None
        unknown = set(self.event_types or []) - set(Event.Type.values)
        if unknown:
            raise ValidationError({"event_types": _("Unknown event types: %s") % ", ".join(sorted(unknown))})

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def signing_secrets(self, *, now: datetime | None = None) -> list[str]:
        """The current secret, and the previous one while the rotation overlap lasts."""
        now = now or timezone.now()
        secrets = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and now < self.previous_secret_expires_at:
            secrets.append(self.previous_secret)
        return secrets

    @property
    def state(self) -> str:
        """active, failing, paused (unticked by a person) or disabled (by failures or a 410)."""
        if self.disabled_at is not None:
            return "disabled"
        if not self.is_active:
            return "paused"
        if self.failing_since is not None:
            return "failing"
        return "active"


class Delivery(OutboxRow):
    """One event for one endpoint: the outbox row, written in the transaction of the event.

    The webhook-id sent is `message_id` (the event id) on every attempt and redelivery, so
    receivers can drop duplicates: delivery is at least once.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="webhook_deliveries")
    message_id = models.CharField(_("webhook-id"), max_length=40, db_index=True)
    event_type = models.CharField(max_length=40)
    payload = models.JSONField(help_text=_("The JSON body sent, the same on every attempt."))
    is_test = models.BooleanField(default=False)
    CLAIMED = Status.SENDING
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # Written by every claim: true when a run of the endpoint claimed it (services._drain), false for a
    # single send. While it is sending, a run that holds the endpoint knows a run-claimed row is no
    # longer anyone's (one run per endpoint at a time) and takes it over without waiting for its lease.
    claimed_in_run = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], condition=models.Q(event__isnull=False),
                                    name="delivery_once_per_endpoint_event"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_status_due")]

    def __str__(self) -> str:
        return f"{self.message_id} → {self.endpoint_id}"


class DeliveryAttempt(models.Model):
    """One POST. Written before the request goes out and completed after, so a worker killed
    mid-attempt leaves a visible, unfinished row."""

    class Outcome(models.TextChoices):
        IN_PROGRESS = "in_progress", _("In progress")
        SUCCEEDED = "succeeded", _("Succeeded")
        RETRYING = "retrying", _("Failed, will retry")
        FAILED = "failed", _("Failed")
        INTERRUPTED = "interrupted", _("Interrupted (worker lost)")

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    url = models.URLField(max_length=2000)
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text=_("The first KB of the answer."))
    error = models.TextField(blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.IN_PROGRESS)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
