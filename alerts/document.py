"""The flow document's `alerts` section (DESIGN §8), registered in settings.BRIGHTBACK_DOCUMENT_SECTIONS:

    "alerts": [{"events": ["session.canceled"], "recipients": ["help@desk.example.com"],
                "slack_webhook_url": "", "live_only": false}]

The list is the App's whole set of rules, in order: an import updates the rules in place by position,
creates the ones the document adds and deletes the ones it no longer lists (their past deliveries
stay, with their own copy of the recipients).

A Slack webhook URL is a secret (whoever holds it posts to the team's channel), and documents are meant
for git: an export leaves it out, and an import that leaves it out keeps the rule's stored URL (a rule
the import creates has none). An import that gives it sets it; `""` removes it.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from flows.models import App

from .models import AlertRule

FIELDS = ("events", "recipients", "slack_webhook_url", "live_only")


def _type_problem(name: str, value: Any) -> str | None:
    if name in ("events", "recipients"):
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return "must be a list of strings"
    elif name == "slack_webhook_url":
        if not isinstance(value, str):
            return "must be a string"
    elif not isinstance(value, bool):
        return "must be true or false"
    return None


def _values(item: dict) -> dict[str, Any]:
    values = {"events": item["events"], "recipients": item.get("recipients", []),
              "live_only": item.get("live_only", False)}
    if "slack_webhook_url" in item:  # left out: the stored URL stays
        values["slack_webhook_url"] = item["slack_webhook_url"]
    return values


class AlertsSection:
    key = "alerts"

    def export(self, *, app: App) -> list[dict[str, Any]]:
        return [{"events": list(rule.events), "recipients": list(rule.recipients), "live_only": rule.live_only}
                for rule in AlertRule.objects.filter(app=app).order_by("position", "id")]

    def problems(self, value: Any, *, path: str, app_id: str) -> list[str]:
        if not isinstance(value, list):
            return [f"{path}: must be a list"]
        problems: list[str] = []
        stored = list(AlertRule.objects.filter(app__app_id=app_id).order_by("position", "id")
                      .values_list("slack_webhook_url", flat=True))
        for index, item in enumerate(value):
            where = f"{path}[{index}]"
            if not isinstance(item, dict):
                problems.append(f"{where}: must be an object")
                continue
            before = len(problems)
            problems.extend(f"{where}.{key}: unknown field" for key in item if key not in FIELDS)
            if "events" not in item:
                problems.append(f"{where}.events: required")
            for name in FIELDS:
                if name in item and (problem := _type_problem(name, item[name])):
                    problems.append(f"{where}.{name}: {problem}")
            if len(problems) > before:
                continue
            values = _values(item)
            if "slack_webhook_url" not in values and index < len(stored):
                values["slack_webhook_url"] = stored[index]  # what the import keeps
            try:
                AlertRule(**values).clean()
            except ValidationError as exc:
                for name, messages in exc.message_dict.items():
                    problems.extend(f"{where}.{name}: {message}" for message in messages)
        return problems

    def apply(self, value: list[dict[str, Any]], *, app: App) -> list[str]:
        existing = list(AlertRule.objects.filter(app=app).order_by("position", "id"))
        counts = {"created": 0, "updated": 0, "deleted": 0}
        for position, item in enumerate(value):
            values = _values(item)
            if position < len(existing):
                rule = existing[position]
                if all(getattr(rule, name) == values[name] for name in values) and rule.position == position:
                    continue
                for name, field_value in values.items():
                    setattr(rule, name, field_value)
                rule.position = position
                rule.save()
                counts["updated"] += 1
            else:
                AlertRule.objects.create(app=app, position=position, **values)
                counts["created"] += 1
        for rule in existing[len(value):]:
            rule.delete()
            counts["deleted"] += 1
        changed = ", ".join(f"{count} {what}" for what, count in counts.items() if count)
        return [f"alert rules: {changed}"] if changed else []
