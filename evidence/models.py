"""What a business can show an auditor: every published version of a flow, and each session's steps.

A FlowVersion is the flow's whole published content (its part of the flow document, and the App's
`compliance` section when there is one) frozen when it changed, with who changed it and how; a session
names the version its page showed (CancelSession.flow + flow_version). A Step is one page shown or one
button pressed, written as it happened. Neither row is ever changed after it is written.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from flows.models import CancelSession, Flow


class FlowVersion(models.Model):
    """One published state of a flow, immutable. Numbered from 1 per flow; a new one only when the
    content's hash differs from the latest one's."""

    class Source(models.TextChoices):
        ADMIN = "admin", _("Edited in the admin")
        IMPORT = "import", _("Imported (flow_import, demo_setup)")
        RESTORE = "restore", _("Restored from an earlier version")
        DUPLICATE = "duplicate", _("Duplicated from another flow")
        INITIAL = "initial", _("The content when versions began (migrate)")

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="published_versions")
    number = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    # Kept as written: the author's username then (the user may be renamed or removed since), or the tool.
    author_name = models.CharField(max_length=150, blank=True)
    source = models.CharField(max_length=12, choices=Source.choices)
    restored_from = models.PositiveIntegerField(null=True, blank=True,
                                                help_text=_("The number of the version this one restored."))
    content = models.JSONField(help_text=_("The flow's published content: its part of the flow document."))
    content_hash = models.CharField(max_length=64, help_text=_("SHA-256 of the content's canonical JSON."))

    class Meta:
        ordering = ["flow", "-number"]
        constraints = [models.UniqueConstraint(fields=["flow", "number"], name="flow_version_number_once")]

    def __str__(self) -> str:
        return f"{self.flow.name} v{self.number}"


class Step(models.Model):
    """A page the customer was shown or a button they pressed, as it happened (flows.steps)."""

    # No foreign-key constraint in the database: a step is written on the hosted page's fast path, where the
    # constraint's check (a lock on the session's row) costs a quarter of the INSERT. Steps are written only
    # for a session just read, and go with their session through Django's cascade (an App's deletion).
    # No index of its own either: step_session_at (session, at) serves every lookup by session.
    session = models.ForeignKey(CancelSession, on_delete=models.CASCADE, related_name="steps", db_constraint=False,
                                db_index=False)
    at = models.DateTimeField()
    kind = models.CharField(max_length=8)     # view, click
    source = models.CharField(max_length=8)   # page, api
    name = models.CharField(max_length=32, blank=True)
    action = models.CharField(max_length=32, blank=True)
    reason_code = models.CharField(max_length=64, blank=True)
    offer_code = models.CharField(max_length=64, blank=True)
    # The controls on screen by their stable codes (reason:<code>, accept:<offer code>, cancel…): no text.
    controls = models.JSONField(default=list, blank=True)
    status = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["session", "at"], name="step_session_at"),
            # The reports' effort figures, from the newest Cancel back (evidence.selectors.cancel_effort):
            # only a Cancel that went through is in it, so the page's views and other clicks never write it.
            models.Index(fields=["-at"], name="step_cancel_at",
                         condition=models.Q(kind="click", action="cancel", status__lt=400)),
        ]

    def __str__(self) -> str:
        return f"{self.session_id} {self.kind} {self.name or self.action}"
