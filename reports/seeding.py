"""Realistic sessions for the reports, in bulk: `manage.py seed_sessions N [--app APP_ID] [--days D]`.

Sessions spread over the last D days (busier on weekdays), with reasons, feedback, offers seen and
accepted, an experiment's variants (its control sees no offers and saves less), decisions, their events, the
page's steps (evidence: each page shown, Continue, Back and the deciding click) and save confirmations
for saves older than the watch window. They are written straight to the tables, in batches: PostgreSQL's
COPY (ids reserved from the sequences under a table lock), else bulk_create.

Rows are made for reports and benchmarks: they carry no webhook deliveries, alerts or billing actions,
and no VariantAssignment rows; variants are assigned by the product's own rule (flows.experiments: the
account's hash, by weight), so a returning customer (some are) lands in the same arm. About half the
undecided sessions were never opened (the snippet asks for a page as the account page loads).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from ulid import ULID

from audiences import facts
from audiences.rules import field_value
from compliance import rules as compliance_rules
from evidence.models import Step
from flows import experiments, ids
from flows.flow_document import document_import, document_loads
from flows.models import App, Audience, CancelSession, Decision, Event, Flow, Reason, Variant
from offers.models import Offer

BATCH = 20_000
SEED_DOCUMENT = Path(__file__).resolve().parent / "fixtures" / "seed-app.json"
PLANS = [("starter", "month", 19), ("pro", "month", 49), ("pro", "year", 490), ("team", "month", 149),
         ("team", "year", 1490), ("enterprise", "year", 12000)]
PLAN_WEIGHTS = [30, 30, 12, 15, 8, 5]
LOCALES = ["en-US", "en-GB", "fr-FR", "de-DE", "es-ES"]
FEEDBACK = ["Too expensive for what we use.", "We moved to a competitor with a cheaper plan.",
            "Missing an integration with our CRM.", "The team stopped using it after the project ended.",
            "Support took too long to answer.", "We only needed it for a season.",
            "Reports are too limited for us.", "Budget cuts this quarter."]


@dataclass
class Setup:
    app: App
    flows: list[Flow]
    reasons: dict[int, list[Reason]]
    offers: dict[int, list[Offer]]
    variants: dict[int, list[Variant]]
    audiences: list[Audience]


def seed_app() -> App:
    """The App the seeded sessions use when none is named: created (or reset) from reports/fixtures."""
    return document_import(document=document_loads(SEED_DOCUMENT.read_text("utf-8"))).app


def _setup(app: App) -> Setup:
    flows = list(Flow.objects.filter(app=app, is_active=True).order_by("priority", "id"))
    if not flows:
        raise ValueError(f"App {app.app_id} has no active flow to seed sessions for")
    ids = [flow.pk for flow in flows]
    reasons: dict[int, list[Reason]] = {pk: [] for pk in ids}
    for reason in Reason.objects.filter(flow_id__in=ids, is_active=True):
        reasons[reason.flow_id].append(reason)
    offers: dict[int, list[Offer]] = {pk: [] for pk in ids}
    for offer in Offer.objects.filter(flow_id__in=ids, is_active=True).prefetch_related("reasons"):
        offers[offer.flow_id].append(offer)
    variants: dict[int, list[Variant]] = {pk: [] for pk in ids}
    for variant in Variant.objects.filter(flow_id__in=ids, is_active=True).order_by("id"):
        variants[variant.flow_id].append(variant)
    audiences = list(Audience.objects.filter(app=app, is_active=True).order_by("position", "id"))
    return Setup(app=app, flows=flows, reasons=reasons, offers=offers, variants=variants, audiences=audiences)


def _fields(rule: Any) -> Iterator[str]:
    if isinstance(rule, dict):
        if "field" in rule:
            yield rule["field"]
        for key in ("all", "any"):
            for item in rule.get(key, []):
                yield from _fields(item)


class Generator:
    """Makes the rows of one batch: sessions, their decisions and events, as tuples in column order."""

    def __init__(self, setup: Setup, *, days: int, now: datetime, rng: random.Random) -> None:
        self.setup, self.days, self.now, self.rng = setup, days, now, rng
        self.first_pk = 0  # the first id of the run: returning customers are drawn from after it
        self.watch = timedelta(days=settings.SAVE_WATCH_DAYS)
        # Audiences are matched on the few fields their rules name, so equal values share one answer.
        self.fields = sorted({field for audience in setup.audiences for field in _fields(audience.rules)})
        self.audience_for: dict[tuple, Audience | None] = {}
        self.available: dict[tuple, list[Offer]] = {}
        self.offer_reasons = {offer.pk: {reason.pk for reason in offer.reasons.all()}
                              for offers in setup.offers.values() for offer in offers}

    def audience(self, data: dict, at: datetime) -> Audience | None:
        key = tuple(json.dumps(field_value(data, field, now=at), default=str) for field in self.fields)
        if key not in self.audience_for:
            self.audience_for[key] = next((a for a in self.setup.audiences if a.matches(data, now=at)), None)
        return self.audience_for[key]

    def offers(self, flow: Flow, variant: Variant | None, reason: Reason | None) -> list[Offer]:
        key = (flow.pk, variant.pk if variant else None, reason.pk if reason else None)
        if key not in self.available:
            wanted = set(variant.offer_code_list) if variant is not None else set()
            def shown(offer: Offer) -> bool:
                reasons = self.offer_reasons[offer.pk]
                return (not wanted or offer.code in wanted) and (
                    not reasons or (reason is not None and reason.pk in reasons))

            control = variant is not None and variant.is_control
            self.available[key] = [] if control else [offer for offer in self.setup.offers[flow.pk] if shown(offer)]
        return self.available[key]

    def moment(self) -> datetime:
        rng = self.rng
        while True:
            ago = rng.random() * self.days
            at = self.now - timedelta(days=ago)
            if at.weekday() < 5 or rng.random() < 0.6:  # weekends are quieter
                return at

    def session(self, pk: int, number: int) -> tuple[tuple, tuple | None, list[tuple], list[tuple]]:
        rng, setup = self.rng, self.setup
        at = self.moment()
        plan, term, value = rng.choices(PLANS, PLAN_WEIGHTS)[0]
        # Some customers come back: a later session of the same account (its last outcome is what counts).
        number = pk - rng.randint(1, 400) if rng.random() < 0.08 and pk > self.first_pk + 400 else pk
        account = {"internal_id": f"seed_{number}", "plan": plan, "plan_term": term, "value": value,
                   "created_at": (at - timedelta(days=rng.randint(10, 1500))).date().isoformat()}
        email, locale = f"customer{number}@example.com", rng.choice(LOCALES)
        data = {"app_id": setup.app.app_id, "email": email, "account": account,
                "custom": {"seats": rng.choice([1, 1, 2, 3, 5, 8, 20])}, "context": {"locale": locale}}
        audience = self.audience(data, at)
        flow = audience.flow if audience is not None and audience.flow in setup.flows else setup.flows[0]
        # The product's own assignment: the same account always lands in the same arm, by weight.
        key = experiments.account_key(internal_id=f"seed_{number}", email=email)
        variant = (experiments.pick(setup.variants[flow.pk], experiments.bucket(flow_id=flow.pk, key=key))
                   if setup.variants[flow.pk] else None)
        monthly = facts.monthly_value(account)
        decided = rng.random() < 0.8
        kind, reason, offer, shown, feedback = None, None, None, None, ""
        if decided:
            reasons = setup.reasons[flow.pk]
            reason = rng.choice(reasons) if reasons and rng.random() < 0.93 else None
            available = self.offers(flow, variant, reason)
            if reason is not None and available and rng.random() < 0.8:
                shown = [o.code for o in available]
            roll = rng.random()
            if shown and roll < 0.30:
                kind, offer = Decision.Kind.ACCEPT, rng.choice(available)
            elif roll < (0.42 if shown else 0.2):
                kind = Decision.Kind.NEVERMIND
            else:
                kind = Decision.Kind.CANCEL
            if reason is not None and (reason.wants_feedback or rng.random() < 0.15):
                feedback = rng.choice(FEEDBACK)
        # The snippet posts /precancel as the account page loads: many sessions are never opened at all.
        opened_at = at + timedelta(seconds=rng.randint(1, 30)) if decided or rng.random() < 0.4 else None
        status = CancelSession.Status.DECIDED if decided else (
            CancelSession.Status.OPEN if at >= self.now - timedelta(days=1) else
            CancelSession.Status.ABANDONED if opened_at else CancelSession.Status.EXPIRED)
        shown_at = at + timedelta(seconds=rng.randint(5, 90)) if shown else None
        row = (pk, f"ses_{ULID.from_datetime(at)}", ids.page_token(at.timestamp()), setup.app.pk, flow.pk,
               status, not setup.app.is_live, email, account["internal_id"], f"sub_{number}", key,
               locale, json.dumps(data), audience.pk if audience else None,
               variant.pk if variant else None, json.dumps([]) if variant is not None and variant.is_control else None,
               monthly, shown_at, json.dumps(shown) if shown else None, at, opened_at, at + timedelta(days=1),
               SEEDED_COMPLIANCE)
        # The page's evidence (evidence.Step), as the hosted page writes it: the page shown when opened, the
        # reasons' Continue (and now and then a Back) before the offers, then the button that decided.
        steps = [(pk, opened_at, "view", "page", "reasons", "", "", "", "[]", 200)] if opened_at else []
        if kind is None:
            return row, None, [], steps
        decided_at = (shown_at or at) + timedelta(seconds=rng.randint(5, 300))
        if opened_at is not None:
            clicked = opened_at
            if shown_at is not None:
                clicked = max(opened_at, shown_at - timedelta(seconds=1))
                if rng.random() < 0.1:
                    steps.append((pk, clicked, "click", "page", "", "back", "", "", "[]", 200))
                steps.append((pk, shown_at, "click", "page", "", "continue", reason.code if reason else "", "",
                              "[]", 200))
                steps.append((pk, shown_at, "view", "page", "offers", "", "", "", "[]", 200))
            steps.append((pk, max(decided_at, clicked), "click", "page", "", str(kind), reason.code if reason else "",
                          offer.code if offer else "", "[]", 303))
        decision = (pk, pk, kind, reason.pk if reason else None, reason.code if reason else "",
                    reason.label if reason else "", feedback, offer.pk if offer else None,
                    offer.code if offer else "", "", decided_at)
        event_type = {Decision.Kind.NEVERMIND: Event.Type.SESSION_NEVERMIND, Decision.Kind.CANCEL:
                      Event.Type.SESSION_CANCELED, Decision.Kind.ACCEPT: Event.Type.OFFER_ACCEPTED}[kind]
        events = [(f"evt_{ULID.from_datetime(decided_at)}", setup.app.pk, pk, event_type, "{}", decided_at)]
        if kind != Decision.Kind.CANCEL and decided_at < self.now - self.watch and rng.random() < 0.85:
            confirmed_at = decided_at + self.watch + timedelta(minutes=rng.randint(1, 120))
            events.append((f"evt_{ULID.from_datetime(confirmed_at)}", setup.app.pk, pk,
                           Event.Type.SAVE_CONFIRMED, "{}", confirmed_at))
        return row, decision, events, steps


# Seeded customers say nowhere where they live: the built-in rules applied to them.
SEEDED_COMPLIANCE = json.dumps({**compliance_rules.resolve(None), "cancel_effective": "period_end"})
SESSION_COLUMNS = ("id", "public_id", "token", "app_id", "flow_id", "status", "is_test", "email",
                   "account_internal_id", "subscription_id", "account_key", "locale", "data", "audience_id",
                   "variant_id",
                   "offer_codes", "monthly_value", "offers_shown_at", "offers_shown", "created_at", "opened_at",
                   "expires_at", "compliance")
DECISION_COLUMNS = ("session_id", "in_force_for_id", "kind", "reason_id", "reason_code", "reason_label", "feedback",
                    "offer_id", "offer_code", "redirect_url", "created_at")
EVENT_COLUMNS = ("id", "app_id", "session_id", "type", "data", "created_at")
STEP_COLUMNS = ("session_id", "at", "kind", "source", "name", "action", "reason_code", "offer_code", "controls",
                "status")


def _reserve_ids(table: str, count: int) -> int:
    """The first of `count` consecutive ids no one else will be given."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            sequence = cursor.fetchone()[0]
            cursor.execute("SELECT nextval(%s)", [sequence])
            first = cursor.fetchone()[0]
            cursor.execute("SELECT setval(%s, %s)", [sequence, first + count - 1])
            return first
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")
        return cursor.fetchone()[0]


def _copy(table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
    if not rows:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            raw: Any = cursor.cursor
            with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    placeholders = ", ".join(["%s"] * len(columns))
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})",
                           [tuple(_plain(value) for value in row) for row in rows])


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return str(value) if isinstance(value, Decimal) else value


def _batches(total: int) -> Iterator[int]:
    done = 0
    while done < total:
        size = min(BATCH, total - done)
        yield size
        done += size


def sessions_seed(*, app: App, count: int, days: int, progress: Callable[[int], None] | None = None,
                  seed: int | None = None, now: datetime | None = None) -> int:
    """Write `count` sessions for the App over the last `days` days; return how many were written."""
    generator = Generator(_setup(app), days=days, now=now or datetime.now(UTC), rng=random.Random(seed))
    written = 0
    for size in _batches(count):
        with transaction.atomic():
            first = _reserve_ids(CancelSession._meta.db_table, size)
            if not written:
                generator.first_pk = first
            sessions, decisions, events, steps = [], [], [], []
            for pk in range(first, first + size):
                row, decision, made, shown = generator.session(pk, written)
                sessions.append(row)
                if decision is not None:
                    decisions.append(decision)
                events.extend(made)
                steps.extend(shown)
            _copy(CancelSession._meta.db_table, SESSION_COLUMNS, sessions)
            _copy(Decision._meta.db_table, DECISION_COLUMNS, decisions)
            _copy(Event._meta.db_table, EVENT_COLUMNS, events)
            _copy(Step._meta.db_table, STEP_COLUMNS, steps)
        written += size
        if progress is not None:
            progress(written)
    return written
