"""The audience form: rules built from rows (field, comparison, value) in up to three groups, each
group AND or OR and the groups combined AND or OR, with the raw JSON still accepted.

The rows read and write the same JSON (audiences/rules.py): `{"all"|"any": [conditions]}` for one group,
`{"all"|"any": [{"all"|"any": [conditions]}, ...]}` for several.
A rule deeper than that, or written by hand in another shape, stays in the JSON box, where it is kept as
written. Whichever of the two staff changed is the rule (rows and JSON both changed, differently, is
refused with a question rather than guessed).
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from flows.models import Audience

from . import rules

ROWS = 8
GROUPS = 3
_COMBINE = [("all", _("all of (AND)")), ("any", _("any of (OR)"))]
_OPS = [("", "—")] + [(op, op.replace("_", " ")) for op in rules.OPS]
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def _scalar(text: str) -> Any:
    text = text.strip()
    if _NUMBER.match(text):
        return float(text) if "." in text else int(text)
    return text


def _value(op: str, text: str) -> Any:
    """The row's value typed as the comparison wants it (rules.rule_problems then checks it)."""
    if op in rules.LIST_OPS or op in ("between", "date_between"):
        items = [item.strip() for item in text.split(",") if item.strip()]
        return [item if op == "date_between" else _scalar(item) for item in items]
    if op in rules.NUMBER_OPS:
        return _scalar(text)
    if op == "exists":
        return text.strip().lower() not in ("false", "no", "0")
    return text.strip() if op in rules.DATE_OPS or op == "contains" else _scalar(text)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def rows_of(rule: Any) -> tuple[str, list[str], list[dict]] | None:
    """The rule as (combine, group combines, rows), or None when the rows cannot show it."""
    if not isinstance(rule, dict) or not rule:
        return None
    top = next((key for key in ("all", "any") if key in rule and len(rule) == 1), None)
    if top is None or not isinstance(rule[top], list):
        return None
    if all(isinstance(item, dict) and "field" in item for item in rule[top]):  # one group: {"all": [conditions]}
        found = [{"group": 1, **condition} for condition in rule[top]]
        return (top, [top] + ["all"] * (GROUPS - 1), found) if len(found) <= ROWS else None
    groups, found = [], []
    for group in rule[top]:
        inner = next((key for key in ("all", "any") if isinstance(group, dict) and key in group and len(group) == 1),
                     None)
        conditions = group[inner] if inner else [group]
        if not isinstance(conditions, list) or any(not isinstance(c, dict) or "field" not in c for c in conditions):
            return None
        groups.append(inner or "all")
        found += [{"group": len(groups), **condition} for condition in conditions]
    if len(groups) > GROUPS or len(found) > ROWS:
        return None
    return top, groups + ["all"] * (GROUPS - len(groups)), found


def _row_fields() -> dict[str, forms.Field]:
    fields: dict[str, forms.Field] = {
        "combine": forms.ChoiceField(label=_("Customers match"), choices=_COMBINE, initial="all", required=False,
                                     help_text=_("How the groups below combine."))}
    for group in range(1, GROUPS + 1):
        fields[f"group_{group}"] = forms.ChoiceField(
            label=_("Group %(n)s matches") % {"n": group}, choices=_COMBINE, initial="all", required=False)
    for row in range(ROWS):
        fields[f"row_{row}_group"] = forms.TypedChoiceField(
            label=_("Group"), choices=[(g, g) for g in range(1, GROUPS + 1)], coerce=int, initial=1,
            required=False, empty_value=1)
        fields[f"row_{row}_field"] = forms.CharField(label=_("Field"), required=False, max_length=200,
                                                     help_text=_("e.g. account.plan, custom.seats"))
        fields[f"row_{row}_op"] = forms.ChoiceField(label=_("Comparison"), choices=_OPS, required=False)
        fields[f"row_{row}_value"] = forms.CharField(
            label=_("Value"), required=False, max_length=1000,
            help_text=_("Lists and ranges: comma-separated (pro, team; 10, 50)."))
    return fields


# Declared on a class, as the admin requires of every field its fieldsets name.
_Rows = type("_Rows", (forms.Form,), _row_fields())


class AudienceForm(_Rows, forms.ModelForm):  # type: ignore[misc, valid-type]
    class Meta:
        model = Audience
        fields = ("app", "name", "position", "rules", "flow", "is_active")
        widgets = {"rules": forms.Textarea(attrs={"rows": 6, "cols": 80})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["rules"].required = False
        self.fields["rules"].label = _("Rules as JSON")
        self.fields["rules"].help_text = _("Used when no row above is filled; rules the rows cannot show stay here.")
        shown = rows_of(self.instance.rules) if self.instance.pk else None
        if shown is not None:
            combine, groups, found = shown
            self.initial["combine"] = combine
            for group, value in enumerate(groups, start=1):
                self.initial[f"group_{group}"] = value
            for row, condition in enumerate(found):
                self.initial.update({f"row_{row}_group": condition["group"], f"row_{row}_field": condition["field"],
                                     f"row_{row}_op": condition["op"], f"row_{row}_value": _text(condition["value"])})

    def clean(self) -> dict:
        data = super().clean()
        groups: dict[int, list[dict]] = {}
        for row in range(ROWS):
            field, op = data.get(f"row_{row}_field", ""), data.get(f"row_{row}_op", "")
            if not field and not op:
                continue
            if not field or not op:
                self.add_error(f"row_{row}_field" if not field else f"row_{row}_op",
                               _("A row needs a field and a comparison."))
                continue
            condition = {"field": field.strip(), "op": op, "value": _value(op, data.get(f"row_{row}_value", ""))}
            for problem in rules.rule_problems(condition, path=f"row {row + 1}"):
                self.add_error(f"row_{row}_value" if ".value" in problem else f"row_{row}_field", problem)
            groups.setdefault(data.get(f"row_{row}_group") or 1, []).append(condition)
        if len(groups) == 1:  # one group needs no outer one
            [(group, conditions)] = groups.items()
            built: dict | None = {data.get(f"group_{group}") or "all": conditions}
        elif groups:
            built = {data.get("combine") or "all": [
                {data.get(f"group_{group}") or "all": conditions} for group, conditions in sorted(groups.items())]}
        else:
            built = None
        written = data.get("rules") if data.get("rules") not in (None, "") else {}
        before = self.instance.rules if self.instance.pk else {}
        # Whichever of the two staff changed is the rule; both changed differently is a question.
        if built is not None and not written:  # an empty JSON box says nothing
            data["rules"] = built
        elif built is not None and built != before and written != before and written != built:
            self.add_error("rules", _("The rows and the JSON say different things: clear one of them."))
        elif built is not None and (written == before or written == built):
            data["rules"] = built
        else:
            data["rules"] = written
        return data
