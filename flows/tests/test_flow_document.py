from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from flows import services
from flows.flow_document import TERMS, document_export, document_import
from flows.models import App, Decision, Flow, Reason
from offers.models import Offer

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "demo-flow.json"


def export(app_id: str) -> dict:
    out = io.StringIO()
    call_command("flow_export", app_id, stdout=out)
    return json.loads(out.getvalue())


def import_text(text: str, *args: str) -> str:
    out = io.StringIO()
    call_command("flow_import", "-", *args, stdin=io.StringIO(text), stdout=out)
    return out.getvalue()


def import_document(document: dict, *args: str) -> str:
    return import_text(json.dumps(document), *args)


def table_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in (App, Flow, Reason, Offer)}


@pytest.fixture
def rich_document() -> dict:
    """The demo plus a second flow using every offer kind, inactive rows and both host lists."""
    document = json.loads(FIXTURE.read_text("utf-8"))
    document["app"].update(app_id="acme", name="Acme <Analytics>", mode="live",
                           allowed_return_hosts=["app.acme.test", "*.acme.test"],
                           allowed_origins=["https://app.acme.test"])
    document["flows"].append({
        "name": "Enterprise", "is_active": False, "priority": 10, "languages": ["de", "de-at"],
        "title": "Wait!", "intro": "",
        "reasons_prompt": "What went wrong?", "logo_url": "https://cdn.acme.test/logo.png",
        "brand_color": "#112233", "background_color": "#ffffff", "nevermind_label": "Stay",
        "cancel_label": "Leave", "cancel_note": "",
        "reasons": [
            {"code": "price", "label": "Price", "position": 0, "wants_feedback": False, "is_active": True,
             "category": "too_expensive"},
            {"code": "old", "label": "Old reason", "position": 1, "wants_feedback": True, "is_active": False},
        ],
        "offers": [
            {"code": "plan", "kind": "plan_change", "title": "Switch to Lite", "description": "",
             "accept_label": "Switch", "position": 0, "is_active": True, "snippet_url_slot": 2,
             "return_url": "https://app.acme.test/plan", "reasons": ["price"], "terms": {"plan": "lite"}},
            {"code": "trial", "kind": "trial_extension", "title": "Two more weeks", "description": "",
             "accept_label": "", "position": 1, "is_active": False, "snippet_url_slot": None,
             "return_url": "", "reasons": [], "terms": {"trial_days": 14}},
            {"code": "call", "kind": "contact_support", "title": "Call us", "description": "",
             "accept_label": "", "position": 2, "is_active": True, "snippet_url_slot": None,
             "return_url": "", "reasons": ["price", "old"], "terms": {"support_email": "vip@acme.test"}},
            {"code": "docs", "kind": "custom_link", "title": "Read the guide", "description": "Tips",
             "accept_label": "", "position": 3, "is_active": True, "snippet_url_slot": None,
             "return_url": "", "reasons": [], "terms": {"link_url": "https://acme.test/guide"}},
            {"code": "skip", "kind": "skip_renewal", "title": "Next two months free", "description": "",
             "accept_label": "", "position": 4, "is_active": True, "snippet_url_slot": None,
             "return_url": "", "reasons": ["price"], "terms": {"skip_renewals": 2}},
        ],
    })
    return document


# --- export and import --------------------------------------------------------------------------

@pytest.mark.django_db
def test_export_then_import_into_an_empty_database_gives_the_same_document(rich_document: dict) -> None:
    import_document(rich_document)
    exported = export("acme")
    old_secret = App.objects.get(app_id="acme").secret
    App.objects.all().delete()  # cascades to flows, reasons and offers: the tables are empty again
    assert table_counts() == {"App": 0, "Flow": 0, "Reason": 0, "Offer": 0}

    output = import_text(json.dumps(exported))

    assert export("acme") == exported
    assert exported["flows"][0]["name"] == "Enterprise"  # flows come out by priority
    new_secret = App.objects.get(app_id="acme").secret
    assert new_secret != old_secret
    assert new_secret in output


@pytest.mark.django_db
def test_export_never_contains_the_secret(demo_app: App) -> None:
    out = io.StringIO()
    call_command("flow_export", "demo", stdout=out)

    assert demo_app.secret not in out.getvalue()
    assert "secret" not in json.loads(out.getvalue())["app"]


@pytest.mark.django_db
def test_export_of_an_unknown_app_fails() -> None:
    with pytest.raises(CommandError, match="No such app: nope"):
        call_command("flow_export", "nope", stdout=io.StringIO())


@pytest.mark.django_db
def test_import_from_a_file_creates_the_app_and_prints_its_secret_once(tmp_path: Path,
                                                                       rich_document: dict) -> None:
    path = tmp_path / "acme.json"
    path.write_text(json.dumps(rich_document), "utf-8")
    out = io.StringIO()

    call_command("flow_import", str(path), stdout=out)

    app = App.objects.get(app_id="acme")
    assert "Created app 'acme'" in out.getvalue()
    assert app.secret in out.getvalue()
    assert app.mode == App.Mode.LIVE
    assert app.allows_return_url("https://eu.acme.test/x") and not app.allows_return_url("https://evil.test/")
    enterprise = Flow.objects.get(app=app, name="Enterprise")
    call = Offer.objects.get(flow=enterprise, code="call")
    assert sorted(call.reasons.values_list("code", flat=True)) == ["old", "price"]
    assert call.terms() == {"support_email": "vip@acme.test"}


@pytest.mark.django_db
def test_reimporting_an_existing_app_keeps_its_secret_and_does_not_print_it(demo_app: App) -> None:
    secret = demo_app.secret

    output = import_text(FIXTURE.read_text("utf-8"))

    demo_app.refresh_from_db()
    assert demo_app.secret == secret
    assert secret not in output
    assert "already matches the document; nothing changed" in output


@pytest.mark.django_db
def test_import_updates_rows_in_place_and_clears_terms_of_a_changed_kind(demo_app: App) -> None:
    document = export("demo")
    offer_id = Offer.objects.get(flow__app=demo_app, code="discount-30").pk
    offer = document["flows"][0]["offers"][0]
    offer.update(kind="pause", title="Take a break", terms={"pause_months": 3})

    output = import_document(document)

    changed = Offer.objects.get(pk=offer_id)
    assert (changed.kind, changed.title, changed.pause_months) == ("pause", "Take a break", 3)
    assert (changed.coupon, changed.discount_percent, changed.discount_months) == ("", None, None)
    assert "offers 1 updated" in output


@pytest.mark.django_db
def test_items_left_out_are_deactivated_and_past_decisions_keep_them(demo_app: App, snippet_data,  # noqa: ANN001
                                                                     settings) -> None:  # noqa: ANN001
    settings.BRIGHTBACK_EVENT_HANDLERS = []  # the decision is only setup here; no channel is under test
    session = services.session_start(app=demo_app, data=snippet_data())
    services.decision_record(session=session, kind="cancel", reason_code="other")
    document = export("demo")
    flow = document["flows"][0]
    flow["reasons"] = [r for r in flow["reasons"] if r["code"] != "other"]
    flow["offers"] = [o for o in flow["offers"] if o["code"] != "talk-to-us"]
    document["flows"].append({"name": "Winter", "reasons": [{"code": "cold", "label": "Too cold"}]})

    output = import_document(document)

    assert "reasons 1 created, 1 deactivated" in output
    assert not Reason.objects.get(flow__app=demo_app, code="other").is_active
    assert not Offer.objects.get(flow__app=demo_app, code="talk-to-us").is_active
    assert Decision.objects.get(session=session).reason.code == "other"
    winter = Flow.objects.get(app=demo_app, name="Winter")
    assert winter.reasons.get().position == 0  # a left-out position is the item's place in its list

    document["flows"] = [f for f in document["flows"] if f["name"] != "Default"]
    import_document(document)

    assert not Flow.objects.get(app=demo_app, name="Default").is_active
    assert Flow.objects.get(app=demo_app, name="Winter").is_active


@pytest.mark.django_db
def test_check_validates_without_changing_anything(rich_document: dict) -> None:
    assert import_document(rich_document, "--check").strip() == "The document is valid."
    assert not App.objects.filter(app_id="acme").exists()


@pytest.mark.django_db
def test_demo_setup_loads_the_demo_document_and_resets_it(django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    out = io.StringIO()
    call_command("demo_setup", stdout=out)
    assert out.getvalue() == "Created demo app 'demo': open /demo/ to try the cancel flow.\n"

    app = App.objects.get(app_id="demo")
    assert (app.name, app.mode, app.return_hosts, app.support_email) == (
        "Demo (Acme Analytics)", "test", ["127.0.0.1", "localhost"], "support@example.com")
    flow = Flow.objects.get(app=app)
    assert list(flow.reasons.values_list("code", "wants_feedback")) == [
        ("too-expensive", False), ("not-using", False), ("missing-feature", True), ("switching", True),
        ("other", True)]
    offers = {o.code: o for o in Offer.objects.filter(flow=flow).prefetch_related("reasons")}
    assert offers["discount-30"].terms() == {"coupon": "SAVE30", "discount_percent": 30, "discount_months": 3}
    assert offers["pause-2"].snippet_url_slot == 1
    assert {r.code for r in offers["talk-to-us"].reasons.all()} == {"missing-feature", "switching", "other"}
    assert document_export(app=app) == json.loads(FIXTURE.read_text("utf-8"))

    out = io.StringIO()
    call_command("demo_setup", "--reset", stdout=out)
    assert out.getvalue().startswith("Restored demo app 'demo'")
    assert table_counts() == {"App": 1, "Flow": 1, "Reason": 5, "Offer": 3}


# --- invalid documents --------------------------------------------------------------------------

def _offer(document: dict, index: int) -> dict:
    return document["flows"][0]["offers"][index]


INVALID = [
    ("bad kind", lambda d: _offer(d, 2).update(kind="refund"),
     "flows[0].offers[2].kind: must be one of discount, pause, plan_change, trial_extension, "
     "skip_renewal, contact_support, custom_link"),
    ("bad reason category", lambda d: d["flows"][0]["reasons"][0].update(category="pricey"),
     "flows[0].reasons[0].category: must be one of too_expensive, unused, missing_features, switched_service, "
     "customer_service, too_complex, low_quality, other"),
    ("skip of more than 12 renewals (the model's rule)",
     lambda d: _offer(d, 2).update(kind="skip_renewal", terms={"skip_renewals": 13}),
     "flows[0].offers[2].terms.skip_renewals: Ensure this value is less than or equal to 12."),
    ("skip renewals as text", lambda d: _offer(d, 2).update(kind="skip_renewal", terms={"skip_renewals": "2"}),
     "flows[0].offers[2].terms.skip_renewals: must be a whole number"),
    ("unknown reason in an offer", lambda d: _offer(d, 1)["reasons"].append("bored"),
     'flows[0].offers[1].reasons[2]: no reason with code "bored" in this flow'),
    ("duplicate reason code", lambda d: d["flows"][0]["reasons"][3].update(code="other"),
     'flows[0].reasons[4].code: duplicate code "other" (also at flows[0].reasons[3])'),
    ("duplicate offer code", lambda d: _offer(d, 1).update(code="discount-30"),
     'flows[0].offers[1].code: duplicate code "discount-30" (also at flows[0].offers[0])'),
    ("duplicate flow name", lambda d: d["flows"].append(copy.deepcopy(d["flows"][0])),
     'flows[1].name: duplicate name "Default" (also at flows[0])'),
    ("position as a string", lambda d: d["flows"][0]["reasons"][0].update(position="1"),
     "flows[0].reasons[0].position: must be a whole number"),
    ("boolean as a string", lambda d: d["flows"][0].update(is_active="yes"),
     "flows[0].is_active: must be true or false"),
    ("title as a number", lambda d: _offer(d, 0).update(title=5), "flows[0].offers[0].title: must be a string"),
    ("reasons not a list", lambda d: d["flows"][0].update(reasons={"code": "x"}),
     "flows[0].reasons: must be a list"),
    ("hosts as text", lambda d: d["app"].update(allowed_return_hosts="localhost"),
     "app.allowed_return_hosts: must be a list of strings"),
    ("missing app name", lambda d: d["app"].pop("name"), "app.name: required"),
    ("missing offer title", lambda d: _offer(d, 1).pop("title"), "flows[0].offers[1].title: required"),
    ("missing format version", lambda d: d.pop("format_version"), "format_version: required"),
    ("future format version", lambda d: d.update(format_version=2), "format_version: must be 1"),
    ("unknown field", lambda d: _offer(d, 0).update(titel="x"), "flows[0].offers[0].titel: unknown field"),
    ("a secret", lambda d: d["app"].update(secret="sk_x"), "app.secret: a document never carries the secret"),
    ("a section this server lacks", lambda d: d.update(webhooks=[]),
     "webhooks: this server cannot import webhooks yet"),
    ("term of another kind", lambda d: _offer(d, 0)["terms"].update(pause_months=2),
     "flows[0].offers[0].terms.pause_months: not a term of a discount offer"),
    ("missing required term (the model's rule)", lambda d: _offer(d, 1).update(terms={}),
     "flows[0].offers[1].terms.pause_months: Required for a Pause offer."),
    ("term out of range (the model's rule)", lambda d: _offer(d, 0)["terms"].update(discount_percent=150),
     "flows[0].offers[0].terms.discount_percent: Ensure this value is less than or equal to 100."),
    ("code that is not a slug (the model's rule)", lambda d: d["flows"][0]["reasons"][0].update(code="too much"),
     "flows[0].reasons[0].code: Enter a valid “slug”"),
    ("bad colour (the model's rule)", lambda d: d["flows"][0].update(brand_color="blue"),
     "flows[0].brand_color: Use a colour like #1f6feb."),
    ("bad app_id (the model's rule)", lambda d: d["app"].update(app_id="de mo"),
     "app.app_id: Letters, digits, - and _ only."),
    ("languages as text", lambda d: d["flows"][0].update(languages="fr"),
     "flows[0].languages: must be a list of strings"),
    ("bad language tag (the model's rule)", lambda d: d["flows"][0].update(languages=["french"]),
     "flows[0].languages: Not a language tag: french"),
    ("NUL in a label", lambda d: d["flows"][0]["reasons"][0].update(label="bad\x00label"),
     "flows[0].reasons[0].label: contains a NUL character"),
    ("lone surrogate in a host", lambda d: d["app"].update(allowed_return_hosts=["\ud800.example.com"]),
     "app.allowed_return_hosts: is not valid Unicode text"),
    ("bad return URL (the model's rule)", lambda d: _offer(d, 0).update(return_url="not a url"),
     "flows[0].offers[0].return_url: Enter a valid URL."),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "message"), [(c, m) for _, c, m in INVALID], ids=[n for n, _, _ in INVALID])
def test_invalid_document_is_refused_naming_the_path_and_changes_nothing(demo_app: App, change,  # noqa: ANN001
                                                                         message: str) -> None:
    document = export("demo")
    before, counts = copy.deepcopy(document), table_counts()
    document["app"]["name"] = "Renamed"  # a valid change that must not land either
    change(document)

    with pytest.raises(CommandError) as refused:
        import_document(document)

    assert "nothing was changed" in str(refused.value)
    assert message in str(refused.value)
    assert export("demo") == before
    assert table_counts() == counts


@pytest.mark.django_db
def test_every_problem_is_reported_at_once(demo_app: App) -> None:
    document = export("demo")
    _offer(document, 2)["kind"] = "refund"
    document["flows"][0]["reasons"][0]["label"] = None

    with pytest.raises(CommandError) as refused:
        import_document(document)

    assert "flows[0].offers[2].kind" in str(refused.value)
    assert "flows[0].reasons[0].label: must be a string" in str(refused.value)


@pytest.mark.django_db
def test_invalid_document_for_a_new_app_creates_nothing(rich_document: dict) -> None:
    rich_document["flows"][1]["offers"][0]["terms"] = {}

    with pytest.raises(CommandError, match=r"flows\[1\]\.offers\[0\]\.terms\.plan: Required"):
        import_document(rich_document)

    assert table_counts() == {"App": 0, "Flow": 0, "Reason": 0, "Offer": 0}


@pytest.mark.django_db
@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "document: not valid JSON (line 1, column 2"),
    ('{"format_version": 1, "format_version": 1}', 'key "format_version" appears twice'),
    ("[]", "document: must be a JSON object"),
])
def test_unreadable_document_is_refused(text: str, message: str) -> None:
    with pytest.raises(CommandError) as refused:
        import_text(text)

    assert message in str(refused.value)


def test_document_terms_are_the_ones_the_offer_reports() -> None:
    filled = {"coupon": "C", "discount_percent": 10, "discount_months": 2, "pause_months": 1, "plan": "p",
              "plan_change_timing": "renewal", "trial_days": 7, "support_email": "a@b.test", "link_url": "https://x.test"}
    for kind in Offer.Kind.values:
        assert tuple(Offer(kind=kind, **filled).terms()) == TERMS[kind]


# --- sections owned by other apps ---------------------------------------------------------------

class NotesSection:
    """A stand-in for a channel app's section: keeps a list of notes per app in memory."""

    key = "notes"
    stored: dict[str, list[str]] = {}
    fail = False

    def export(self, *, app: App) -> list[str]:
        return self.stored.get(app.app_id, [])

    def problems(self, value: object, *, path: str, app_id: str) -> list[str]:
        return [] if isinstance(value, list) else [f"{path}: must be a list"]

    def apply(self, value: list[str], *, app: App) -> list[str]:
        if NotesSection.fail:
            raise RuntimeError("the channel's write failed")
        NotesSection.stored[app.app_id] = value
        return [f"{len(value)} notes saved"]


@pytest.fixture
def notes_section():  # noqa: ANN201
    NotesSection.stored, NotesSection.fail = {}, False
    with override_settings(BRIGHTBACK_DOCUMENT_SECTIONS=[f"{__name__}.NotesSection"]):
        yield NotesSection


@pytest.mark.django_db
def test_a_registered_section_is_validated_applied_and_exported(demo_app: App, notes_section) -> None:  # noqa: ANN001
    document = export("demo")
    assert document["notes"] == []

    with pytest.raises(CommandError, match="notes: must be a list"):
        import_document({**document, "notes": "hello"})
    output = import_document({**document, "notes": ["hello"]})

    assert "1 notes saved" in output
    assert export("demo")["notes"] == ["hello"]


@pytest.mark.django_db
def test_a_failing_section_rolls_back_the_whole_import(demo_app: App, notes_section) -> None:  # noqa: ANN001
    notes_section.fail = True
    document = export("demo")
    document["app"]["name"] = "Renamed"

    with pytest.raises(RuntimeError):
        document_import(document={**document, "notes": ["hello"]})

    assert App.objects.get(app_id="demo").name == "Demo (Acme Analytics)"


@pytest.mark.django_db
def test_a_skip_left_without_its_number_is_of_one_renewal_and_exports_so(demo_app: App) -> None:
    document = export("demo")
    document["flows"][0]["offers"].append({"code": "skip", "kind": "skip_renewal", "title": "A month on us"})
    import_document(document)

    offer = Offer.objects.get(flow__app=demo_app, code="skip")
    assert offer.terms() == {"skip_renewals": 1}
    assert export("demo")["flows"][0]["offers"][-1]["terms"] == {"skip_renewals": 1}


@pytest.mark.django_db
def test_reason_categories_are_imported_and_exported(demo_app: App) -> None:
    reasons = export("demo")["flows"][0]["reasons"]
    assert [r["category"] for r in reasons] == ["too_expensive", "unused", "missing_features", "switched_service",
                                                "other"]
    document = export("demo")
    document["flows"][0]["reasons"][4]["category"] = "low_quality"
    import_document(document)
    assert Reason.objects.get(flow__app=demo_app, code="other").category == "low_quality"
