"""An App's whole setup as one JSON document (DESIGN §6): export, validation and import.

`flow_export` and `flow_import` are thin wrappers around `document_export` and `document_import`;
`demo_setup` loads the demo through the same import. The format is described in docs/flow-format.md.

Validation runs over the whole document before anything is written, and names each problem by its path
(`flows[0].offers[2].kind: must be one of ...`). It checks JSON types first (a model field would turn
`"title": 5` into "5" without complaint), then runs the models' own `full_clean()` so the importer and
the admin refuse the same things.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol, cast

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models, transaction
from django.db.models import Prefetch
from django.utils.module_loading import import_string

from brightback_site.text import unstorable
from offers.models import Offer

from .currencies import currency_problem
from .models import App, Flow, Reason

FORMAT_VERSION = 1

# Parts of DESIGN §6 owned by apps that register a DocumentSection (see below). Until one does, a
# document carrying the section is refused rather than half-imported.
RESERVED_SECTIONS = ("webhooks",)

# Which Offer columns hold the terms of each kind; they travel under the offer's "terms" object.
TERMS = Offer.TERMS
TERM_FIELDS = tuple(dict.fromkeys(name for names in TERMS.values() for name in names))


UNKNOWN_FIELD_HINTS = {
    "app.secret": "a document never carries the secret (a new app gets a fresh one; rotate it in admin)",
}


class DocumentInvalid(ValueError):
    """The document cannot be imported; `problems` lists every reason, each starting with its path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class DocumentSection(Protocol):
    """A top-level part of the document owned by another app (its routing, alerts, webhooks, billing).

    Listed by dotted path in settings.BRIGHTBACK_DOCUMENT_SECTIONS, so flows never imports those apps.
    `problems` must not write; `apply` runs inside the import's transaction, after the App and its flows
    are saved, and returns lines for the operator (a new endpoint's secret, shown once). A document
    without the section leaves that part of the setup unchanged; `export` returns None when there is
    nothing to write, and the section is left out.
    """

    key: str

    def export(self, *, app: App) -> Any: ...

    def problems(self, value: Any, *, path: str, app_id: str) -> list[str]: ...

    def apply(self, value: Any, *, app: App) -> list[str]: ...


@lru_cache(maxsize=1)
def _load_sections(paths: tuple[str, ...]) -> tuple[DocumentSection, ...]:
    return tuple(import_string(path)() for path in paths)


def sections() -> tuple[DocumentSection, ...]:
    return _load_sections(tuple(getattr(settings, "BRIGHTBACK_DOCUMENT_SECTIONS", ())))


# --- the shape of each object ---------------------------------------------------------------------

Check = Callable[[Any], str | None]


def _string(value: Any) -> str | None:
    return unstorable(value) if isinstance(value, str) else "must be a string"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _integer(value: Any) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) else "must be a whole number"


def _integer_or_null(value: Any) -> str | None:
    return None if value is None else _integer(value)


def _number_or_null(value: Any) -> str | None:
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return None
    return "must be a number or null"


def _strings(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return "must be a list of strings"
    return next((problem for problem in map(unstorable, value) if problem), None)


def _lines(value: Any) -> str | None:
    """Hosts and origins are stored one per line (commas also separate), so neither may appear inside."""
    problem = _strings(value)
    if problem is None and any(not item.strip() or any(c in item for c in ",\n\r") for item in value):
        return "each entry must be a non-empty string without commas or line breaks"
    return problem


def _one_of(values: Iterable[str]) -> Check:
    values = tuple(values)

    def check(value: Any) -> str | None:
        return None if value in values else f"must be one of {', '.join(values)}"

    return check


@dataclass(frozen=True)
class Spec:
    """One object type: its scalar fields (name -> (check, required)) and its nested lists."""

    fields: dict[str, tuple[Check, bool]]
    nested: tuple[str, ...] = ()

    @property
    def keys(self) -> set[str]:
        return set(self.fields) | set(self.nested)


APP_SPEC = Spec({
    "app_id": (_string, True),
    "name": (_string, True),
    "mode": (_one_of(App.Mode.values), False),
    "allowed_return_hosts": (_lines, False),
    "allowed_origins": (_lines, False),
    "support_email": (_string, False),
    "offer_blocklist": (_lines, False),
    "currency": (currency_problem, False),
})
FLOW_SPEC = Spec({
    "name": (_string, True),
    "is_active": (_boolean, False),
    "priority": (_integer, False),
    "languages": (_lines, False),
    "title": (_string, False),
    "intro": (_string, False),
    "reasons_prompt": (_string, False),
    "logo_url": (_string, False),
    "brand_color": (_string, False),
    "background_color": (_string, False),
    "nevermind_label": (_string, False),
    "cancel_label": (_string, False),
    "cancel_note": (_string, False),
}, nested=("reasons", "offers", "variants"))
REASON_SPEC = Spec({
    "code": (_string, True),
    "label": (_string, True),
    "position": (_integer, False),
    "wants_feedback": (_boolean, False),
    "is_active": (_boolean, False),
    "category": (_one_of(Reason.Category.values), False),
})
OFFER_SPEC = Spec({
    "code": (_string, True),
    "kind": (_one_of(Offer.Kind.values), True),
    "title": (_string, True),
    "description": (_string, False),
    "accept_label": (_string, False),
    "position": (_integer, False),
    "is_active": (_boolean, False),
    "snippet_url_slot": (_integer_or_null, False),
    "return_url": (_string, False),
    "reasons": (_strings, False),
    "audiences": (_strings, False),
    "cap_days": (_integer_or_null, False),
    "hide_during_trial": (_boolean, False),
    "min_monthly_value": (_number_or_null, False),
}, nested=("terms",))


def _term_check(name: str) -> Check:
    column = Offer._meta.get_field(name)
    return _string if isinstance(column, models.CharField) else _integer


# --- validation -----------------------------------------------------------------------------------

def _check_object(value: Any, spec: Spec, path: str, problems: list[str]) -> bool:
    """Type-check one object's own fields; True when it is sound enough to build a model from."""
    if not isinstance(value, dict):
        problems.append(f"{path}: must be an object")
        return False
    before = len(problems)
    for key in value:
        if key not in spec.keys:
            problems.append(f"{path}.{key}: {UNKNOWN_FIELD_HINTS.get(f'{path}.{key}', 'unknown field')}")
    for name, (check, required) in spec.fields.items():
        if name not in value:
            if required:
                problems.append(f"{path}.{name}: required")
            continue
        problem = check(value[name])
        if problem:
            problems.append(f"{path}.{name}: {problem}")
    return len(problems) == before


def _list(value: dict, key: str, path: str, problems: list[str], *, required: bool = False) -> list:
    if key not in value:
        if required:
            problems.append(f"{path}{key}: required")
        return []
    items = value[key]
    if not isinstance(items, list):
        problems.append(f"{path}{key}: must be a list")
        return []
    return items


def _duplicates(items: list, key: str, path: str, problems: list[str]) -> None:
    first: dict[Any, int] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get(key), str):
            continue
        value = item[key]
        if value in first:
            problems.append(f"{path}[{index}].{key}: duplicate {key} {json.dumps(value, ensure_ascii=False)} "
                            f"(also at {path}[{first[value]}])")
        else:
            first[value] = index


def _model_problems(instance: models.Model, path: str, problems: list[str], *,
                    exclude: Iterable[str] = (), field_paths: dict[str, str] | None = None,
                    unique: bool = False) -> None:
    """Run the model's own validation (field validators and clean()) and report by document path."""
    try:
        instance.full_clean(exclude=list(exclude), validate_unique=unique, validate_constraints=unique)
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            where = path if name == NON_FIELD_ERRORS else (field_paths or {}).get(name, f"{path}.{name}")
            problems.extend(f"{where}: {message}" for message in messages)


def _validate_offer(offer: Any, path: str, reason_codes: set[str], problems: list[str]) -> None:
    sound = _check_object(offer, OFFER_SPEC, path, problems)
    if not isinstance(offer, dict):
        return
    codes = offer.get("reasons", [])
    if _strings(codes) is None:
        for index, code in enumerate(codes):
            if code not in reason_codes:
                problems.append(f"{path}.reasons[{index}]: no reason with code {json.dumps(code)} "
                                "in this flow")
    if _check_terms_shape(offer, path, problems) and sound:
        term_paths = {name: f"{path}.terms.{name}" for name in TERM_FIELDS}
        _model_problems(_offer_instance(offer, position=0), path, problems, exclude=["flow"],
                        field_paths=term_paths)


def _check_terms_shape(offer: dict, path: str, problems: list[str]) -> bool:
    terms = offer.get("terms", {})
    if not isinstance(terms, dict):
        problems.append(f"{path}.terms: must be an object")
        return False
    kind = offer.get("kind")
    if kind not in TERMS:
        return False  # the kind itself was reported; its terms cannot be judged
    before = len(problems)
    allowed = TERMS[kind]
    for name, value in terms.items():
        if name not in allowed:
            listed = ", ".join(allowed) or "none"
            problems.append(f"{path}.terms.{name}: not a term of a {kind} offer (its terms: {listed})")
            continue
        problem = _term_check(name)(value)
        if problem:
            problems.append(f"{path}.terms.{name}: {problem}")
    return len(problems) == before


def _validate_flow(flow: dict, path: str, problems: list[str]) -> None:
    from .document_routing import variants_problems

    sound = _check_object(flow, FLOW_SPEC, path, problems)
    if not isinstance(flow, dict):
        return
    reasons = _list(flow, "reasons", f"{path}.", problems)
    offers = _list(flow, "offers", f"{path}.", problems)
    if sound:
        _model_problems(_assign(Flow(), FLOW_SPEC, flow), path, problems, exclude=["app"])
    for index, reason in enumerate(reasons):
        where = f"{path}.reasons[{index}]"
        if _check_object(reason, REASON_SPEC, where, problems):
            _model_problems(_assign(Reason(), REASON_SPEC, reason, position=index), where, problems,
                            exclude=["flow"])
    _duplicates(reasons, "code", f"{path}.reasons", problems)
    reason_codes = {r["code"] for r in reasons if isinstance(r, dict) and isinstance(r.get("code"), str)}
    for index, offer in enumerate(offers):
        _validate_offer(offer, f"{path}.offers[{index}]", reason_codes, problems)
    _duplicates(offers, "code", f"{path}.offers", problems)
    variants_problems(flow, path, problems)


def document_problems(document: Any) -> list[str]:
    """Every problem with the document, each naming its path; empty when it can be imported."""
    from .document_routing import routing_problems

    if not isinstance(document, dict):
        return ["document: must be a JSON object"]
    problems: list[str] = []
    registered = {section.key: section for section in sections()}
    for key in document:
        if key in {"format_version", "app", "flows", "routing"} | set(registered):
            continue
        if key in RESERVED_SECTIONS:
            problems.append(f"{key}: this server cannot import {key} yet; remove the section")
        else:
            problems.append(f"{key}: unknown field")

    if "format_version" not in document:
        problems.append("format_version: required")
    elif type(document["format_version"]) is not int or document["format_version"] != FORMAT_VERSION:
        problems.append(f"format_version: must be {FORMAT_VERSION}")

    app_id = ""
    if "app" not in document:
        problems.append("app: required")
    elif _check_object(document["app"], APP_SPEC, "app", problems):
        app_id = document["app"]["app_id"]
        existing = App.objects.filter(app_id=app_id).first()
        # Validate against the stored row (if any) so unique checks exclude the App being updated.
        instance = _assign(existing or App(), APP_SPEC, document["app"])
        _model_problems(instance, "app", problems, unique=True)

    flows = _list(document, "flows", "", problems, required=True)
    for index, flow in enumerate(flows):
        _validate_flow(flow, f"flows[{index}]", problems)
    _duplicates(flows, "name", "flows", problems)
    routing_problems(document, app_id, problems)

    for key, section in registered.items():
        if key in document:
            problems.extend(section.problems(document[key], path=key, app_id=app_id))
    return problems


# --- between documents and rows -------------------------------------------------------------------

# Fields stored as separated text and written as lists in the document, with their separator.
LIST_FIELDS = {"allowed_return_hosts": "\n", "allowed_origins": "\n", "languages": ", ", "offer_blocklist": "\n"}
# Relations listed by code or name in the document, set after saving by the caller.
RELATION_FIELDS = ("reasons", "audiences")


def _split_lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


def _assign(instance: models.Model, spec: Spec, values: dict, *, position: int | None = None) -> Any:
    """Set every field the spec names: from the document, else the model's default.

    The document is the whole setup, so a field left out means "the default", not "leave it".
    A left-out position defaults to the item's place in its list.
    """
    for name in spec.fields:
        if name in RELATION_FIELDS:
            continue  # an offer's reasons and audiences are relations, set after saving
        column = cast(models.Field, instance._meta.get_field(name))
        if name in values:
            value = values[name]
        elif name == "position" and position is not None:
            value = position
        else:
            value = column.get_default()
        if name in LIST_FIELDS:
            value = LIST_FIELDS[name].join(value or [])
        setattr(instance, name, value)
    return instance


def _offer_instance(values: dict, *, position: int, instance: Offer | None = None) -> Offer:
    offer = _assign(instance or Offer(), OFFER_SPEC, values, position=position)
    terms = values.get("terms", {})
    for name in TERM_FIELDS:
        setattr(offer, name, terms.get(name, cast(models.Field, Offer._meta.get_field(name)).get_default()))
    return offer


def _export_fields(instance: models.Model, spec: Spec) -> dict:
    exported = {}
    for name in spec.fields:
        if name in RELATION_FIELDS:
            continue  # an offer's reasons and audiences are listed by code and name, by the caller
        value = getattr(instance, name)
        if name in LIST_FIELDS:
            value = _split_lines(value)
        elif isinstance(value, Decimal):
            value = float(value)
        exported[name] = value
    return exported


def document_export(*, app: App) -> dict:
    """The App's whole setup (never its secret), in the order the page shows it."""
    from .document_routing import offer_audiences_export, offers_prefetch, routing_export, variants_export

    offers = Offer.objects.prefetch_related("reasons", offers_prefetch())
    flows = (Flow.objects.filter(app=app).order_by("priority", "id")
             .prefetch_related("reasons", "variants", Prefetch("offers", queryset=offers)))
    document: dict[str, Any] = {"format_version": FORMAT_VERSION, "app": _export_fields(app, APP_SPEC),
                                "flows": []}
    for flow in flows:
        exported = _export_fields(flow, FLOW_SPEC)
        exported["reasons"] = [_export_fields(reason, REASON_SPEC) for reason in flow.reasons.all()]
        exported["offers"] = []
        for offer in flow.offers.all():
            values = _export_fields(offer, OFFER_SPEC)
            values["reasons"] = [reason.code for reason in offer.reasons.all()]
            values["audiences"] = offer_audiences_export(offer)
            values["terms"] = offer.terms()
            exported["offers"].append(values)
        exported["variants"] = variants_export(flow)
        document["flows"].append(exported)
    document["routing"] = routing_export(app=app)
    for section in sections():
        value = section.export(app=app)
        if value is not None:  # nothing set up: no section, which an import reads as "leave it alone"
            document[section.key] = value
    return document


# --- import ---------------------------------------------------------------------------------------

@dataclass
class ImportResult:
    app: App
    created: bool
    # The new App's secret: set only when the import created the App, to be shown once.
    secret: str | None = None
    changes: dict[str, Counter] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    def count(self, kind: str, what: str) -> None:
        self.changes.setdefault(kind, Counter())[what] += 1

    @property
    def changed_anything(self) -> bool:
        return any(what != "unchanged" for counter in self.changes.values() for what in counter)


def _snapshot(instance: models.Model, spec: Spec) -> dict:
    values = _export_fields(instance, spec)
    if isinstance(instance, Offer):
        values["terms"] = instance.terms()
    return values


def _save(instance: Any, spec: Spec, values: dict, *, position: int | None = None) -> str:
    """Write the document's values to the row if they change it; say whether it was created, updated
    or left unchanged (an unchanged row is not written, so its updated_at keeps its meaning)."""
    before = _snapshot(instance, spec) if instance.pk else None
    if isinstance(instance, Offer):
        _offer_instance(values, position=position or 0, instance=instance)
    else:
        _assign(instance, spec, values, position=position)
    if before is None:
        instance.save()
        return "created"
    if _snapshot(instance, spec) == before:
        return "unchanged"
    instance.save()
    return "updated"


def _upsert_reasons(flow: Flow, items: list[dict], result: ImportResult) -> dict[str, Reason]:
    existing = {reason.code: reason for reason in Reason.objects.filter(flow=flow)}
    saved = {}
    for index, values in enumerate(items):
        reason = existing.get(values["code"]) or Reason(flow=flow)
        result.count("reasons", _save(reason, REASON_SPEC, values, position=index))
        saved[reason.code] = reason
    _deactivate(Reason.objects.filter(flow=flow, is_active=True).exclude(code__in=saved), "reasons", result)
    return saved


def _upsert_offers(flow: Flow, items: list[dict], reasons: dict[str, Reason], result: ImportResult) -> None:
    existing = {offer.code: offer for offer in Offer.objects.filter(flow=flow).prefetch_related("reasons")}
    codes = []
    for index, values in enumerate(items):
        offer = existing.get(values["code"]) or Offer(flow=flow)
        linked = {reason.code for reason in offer.reasons.all()} if offer.pk else set()
        what = _save(offer, OFFER_SPEC, values, position=index)
        wanted = values.get("reasons", [])
        if set(wanted) != linked:
            offer.reasons.set([reasons[code] for code in wanted])
            what = "updated" if what == "unchanged" else what
        result.count("offers", what)
        codes.append(offer.code)
    _deactivate(Offer.objects.filter(flow=flow, is_active=True).exclude(code__in=codes), "offers", result)


def _deactivate(queryset: models.QuerySet, kind: str, result: ImportResult) -> None:
    # Deactivated, never deleted: past sessions and decisions still point at these rows.
    count = queryset.update(is_active=False)
    if count:
        result.changes.setdefault(kind, Counter())["deactivated"] += count


@transaction.atomic
def document_import(*, document: Any) -> ImportResult:
    """Create or update the App the document describes, all of it or (on any problem) nothing.

    Flows are matched by name, reasons and offers by code. Flows, reasons and offers the document no
    longer lists are deactivated. A new App gets a fresh secret, returned once in the result.
    """
    from .document_routing import routing_apply, variants_apply

    values = document.get("app") if isinstance(document, dict) else None
    app_id = values.get("app_id") if isinstance(values, dict) else None
    if isinstance(app_id, str):
        # Serialise imports of the same App; a first import of it has no row to lock yet.
        App.objects.select_for_update().filter(app_id=app_id).first()
    problems = document_problems(document)
    if problems:
        raise DocumentInvalid(problems)

    app = App.objects.filter(app_id=app_id).first()
    result = ImportResult(app=app or App(), created=app is None)
    result.count("app", _save(result.app, APP_SPEC, document["app"]))
    if result.created:
        result.secret = result.app.secret

    existing = {flow.name: flow for flow in Flow.objects.filter(app=result.app)}
    names = []
    for values in document["flows"]:
        flow = existing.get(values["name"]) or Flow(app=result.app)
        result.count("flows", _save(flow, FLOW_SPEC, values))
        reasons = _upsert_reasons(flow, values.get("reasons", []), result)
        _upsert_offers(flow, values.get("offers", []), reasons, result)
        variants_apply(flow, values.get("variants", []), result)
        names.append(flow.name)
    _deactivate(Flow.objects.filter(app=result.app, is_active=True).exclude(name__in=names), "flows", result)
    routing_apply(document, result.app, result)

    for section in sections():
        if section.key in document:
            result.notices.extend(section.apply(document[section.key], app=result.app))
    from .services import flow_content_changed, flow_content_published

    flow_ids = list(Flow.objects.filter(app=result.app).values_list("pk", flat=True))
    if result.changed_anything:
        flow_content_changed(flow_ids=flow_ids, source="import")
    else:
        # A section another app owns (compliance) may have changed what the page shows: a version is
        # made only where the published content differs from the latest one.
        flow_content_published(flow_ids=flow_ids, source="import")
    return result


def document_loads(text: str) -> Any:
    """Parse a document's JSON, refusing a key repeated in one object (a hand edit would lose one)."""

    def no_repeats(pairs: list[tuple[str, Any]]) -> dict:
        keys = [key for key, _ in pairs]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise DocumentInvalid([f"document: key {json.dumps(repeated[0])} appears twice in one object"])
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=no_repeats)
    except json.JSONDecodeError as exc:
        raise DocumentInvalid([f"document: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                               f"{exc.msg})"]) from None


def document_dumps(document: dict) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
