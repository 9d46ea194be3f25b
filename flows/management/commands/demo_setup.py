"""Create (or refresh) the demo App used by /demo/ and by `make run`."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from flows.demo import DEMO_APP_ID
from flows.models import App, Flow, Reason
from offers.models import Offer

REASONS = [
    ("too-expensive", "It’s too expensive", False),
    ("not-using", "I’m not using it enough", False),
    ("missing-feature", "It’s missing a feature I need", True),
    ("switching", "I’m switching to another product", True),
    ("other", "Other", True),
]


class Command(BaseCommand):
    help = "Create or refresh the demo App, its Flow, Reasons and Offers."

    @transaction.atomic
    def handle(self, *args, **options) -> None:  # noqa: ANN002, ANN003
        app, created = App.objects.get_or_create(
            app_id=DEMO_APP_ID,
            defaults={"name": "Demo (Acme Analytics)", "mode": App.Mode.TEST,
                      "allowed_return_hosts": "127.0.0.1\nlocalhost", "support_email": "support@example.com"},
        )
        flow, _ = Flow.objects.get_or_create(
            app=app, name="Default",
            defaults={"title": "", "intro": "We’d hate to see you go. Tell us why, and we may be able to help.",
                      "cancel_note": "Canceling ends your plan at the end of the current billing period."},
        )
        reasons = {}
        for position, (code, label, wants_feedback) in enumerate(REASONS):
            reasons[code], _ = Reason.objects.update_or_create(
                flow=flow, code=code,
                defaults={"label": label, "position": position, "wants_feedback": wants_feedback})
        offers = [
            dict(code="discount-30", kind=Offer.Kind.DISCOUNT, title="30% off for the next 3 months",
                 description="Keep everything you have, for less.", discount_percent=30, discount_months=3,
                 coupon="SAVE30", snippet_url_slot=1, reasons=["too-expensive"]),
            dict(code="pause-2", kind=Offer.Kind.PAUSE, title="Pause for 2 months",
                 description="Take a break: no charges, and your data stays put.", pause_months=2,
                 snippet_url_slot=1, reasons=["not-using", "too-expensive"]),
            dict(code="talk-to-us", kind=Offer.Kind.CONTACT_SUPPORT, title="Talk to our team",
                 description="Tell us what’s missing: we often have a workaround.",
                 reasons=["missing-feature", "switching", "other"]),
        ]
        for position, spec in enumerate(offers):
            codes = spec.pop("reasons")
            offer, _ = Offer.objects.update_or_create(flow=flow, code=spec.pop("code"),
                                                      defaults={**spec, "position": position})
            offer.reasons.set([reasons[c] for c in codes])
        verb = "Created" if created else "Refreshed"
        self.stdout.write(f"{verb} demo app {app.app_id!r}: open /demo/ to try the cancel flow.")
