"""The hosted page speaks the customer's language: the snippet's locale first, then the browser's,
then English (DESIGN §3). French, German and Spanish ship with the project, compiled."""

from __future__ import annotations

import ast
import gettext
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from django.utils.translation.template import templatize

from flows.models import CancelSession

pytestmark = pytest.mark.django_db

LANGUAGES = ("fr", "de", "es")
LOCALE_DIR = Path(settings.BASE_DIR) / "locale"
# Everything a customer can see: the hosted page, its problem pages (unknown, expired) and the done page.
CUSTOMER_TEMPLATES = ["base_page.html", "page.html", "problem.html", "done.html", "decided.html", "_cancel_button.html"]
CUSTOMER_CODE = ["flows/views.py", "flows/cancel_terms.py"]

# One string from each step, in each language: what a customer would read first.
LEGEND = {
    "en": "Why are you canceling?",
    "fr": "Pourquoi souhaitez-vous résilier\u00a0?",
    "de": "Warum möchten Sie kündigen?",
    "es": "¿Por qué quieres cancelar?",
}
CONTINUE = {"en": "Continue", "fr": "Continuer", "de": "Weiter", "es": "Continuar"}
OFFERS_HEADING = {
    "en": "Before you cancel, would one of these help?",
    "fr": "Avant de résilier, l’une de ces options pourrait-elle vous aider\u00a0?",
    "de": "Bevor Sie kündigen: Hilft Ihnen vielleicht eines dieser Angebote?",
    "es": "Antes de cancelar, ¿te ayudaría alguna de estas opciones?",
}
EXPIRED = {
    "en": "This page has expired",
    "fr": "Cette page a expiré",
    "de": "Diese Seite ist abgelaufen",
    "es": "Esta página ha caducado",
}


def open_session(client, snippet_data, locale: str | None, **overrides) -> CancelSession:  # noqa: ANN001
    data = snippet_data(**overrides)
    if locale is not None:
        data["context"] = {"locale": locale}
    response = client.post("/precancel", data=json.dumps(data), content_type="application/json")
    assert response.status_code == 200, response.content
    return CancelSession.objects.get(token=response.json()["url"].rsplit("/", 1)[1])


def get_page(client, session: CancelSession, accept_language: str):  # noqa: ANN001, ANN201
    return client.get(f"/c/{session.token}", HTTP_ACCEPT_LANGUAGE=accept_language)


def assert_language(response, language: str) -> None:  # noqa: ANN001
    html = response.content.decode()
    assert f'<html lang="{language}">' in html
    assert response["Content-Language"] == language


@pytest.mark.parametrize(
    ("locale", "language"),
    [("fr-FR", "fr"), ("fr", "fr"), ("de", "de"), ("de-AT", "de"), ("es", "es"), ("es-MX", "es")],
)
def test_snippet_locale_picks_the_page_language_over_the_browsers(client, demo_app, snippet_data, locale, language):
    session = open_session(client, snippet_data, locale)
    response = get_page(client, session, "en-US,en;q=0.9")

    assert response.status_code == 200
    assert_language(response, language)
    html = response.content.decode()
    assert LEGEND[language] in html
    assert CONTINUE[language] in html
    assert LEGEND["en"] not in html


def test_offers_step_is_translated_too(client, demo_app, snippet_data):
    session = open_session(client, snippet_data, "de-DE")
    response = client.post(
        f"/c/{session.token}", {"action": "continue", "reason": "too-expensive"}, HTTP_ACCEPT_LANGUAGE="en"
    )

    assert_language(response, "de")
    html = response.content.decode()
    assert OFFERS_HEADING["de"] in html
    assert "Rabatt nutzen" in html and "Abonnement pausieren" in html
    assert "Zum Ende des Abrechnungszeitraums kündigen" in html


@pytest.mark.parametrize(
    ("locale", "accept_language", "language"),
    [
        pytest.param(
            "ja-JP",
            "de-DE,de;q=0.9,en;q=0.5",
            "de",
            id="unsupported-snippet-locale-falls-back-to-the-browsers-language",
        ),
        pytest.param("ja-JP", "ja,zh;q=0.8", "en", id="unsupported-snippet-and-browser-languages-fall-back-to-english"),
        pytest.param(None, "es-ES,es;q=0.9", "es", id="no-snippet-locale-uses-the-browsers-language"),
        pytest.param("en-GB", "fr-FR,fr;q=0.9", "en", id="english-snippet-locale-wins-over-a-french-browser"),
    ],
)
def test_page_language_falls_back_from_the_snippet_to_the_browser_to_english(
    client, demo_app, snippet_data, locale, accept_language, language
):
    session = open_session(client, snippet_data, locale)
    response = get_page(client, session, accept_language)

    assert response.status_code == 200
    assert_language(response, language)
    html = response.content.decode()
    assert LEGEND[language] in html
    assert [other for other, legend in LEGEND.items() if other != language and legend in html] == []


def test_error_message_is_in_the_snippets_language_not_the_browsers(client, demo_app, snippet_data):
    session = open_session(client, snippet_data, "fr-FR")
    response = client.post(f"/c/{session.token}", {"action": "bogus"}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert_language(response, "fr")
    assert "Veuillez choisir l’un des boutons ci-dessous." in response.content.decode()


@pytest.mark.parametrize("language", LANGUAGES)
def test_expired_page_is_translated(client, demo_app, snippet_data, language):
    session = open_session(client, snippet_data, language)
    CancelSession.objects.filter(pk=session.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = get_page(client, session, "en")

    assert response.status_code == 410
    assert_language(response, language)
    assert EXPIRED[language] in response.content.decode()


def test_unknown_link_page_follows_the_browsers_language(client):
    response = client.get("/c/no-such-token-anywhere", HTTP_ACCEPT_LANGUAGE="fr-CA,fr;q=0.9")

    assert response.status_code == 404
    assert_language(response, "fr")
    assert "Ce lien ne fonctionne pas" in response.content.decode()


def test_done_page_is_translated(client, demo_app, snippet_data):
    # Without a cancel_confirmation_url the decision lands on our own done page.
    session = open_session(client, snippet_data, "es-ES", cancel_confirmation_url=None)
    response = client.post(f"/c/{session.token}", {"action": "cancel"}, HTTP_ACCEPT_LANGUAGE="en", follow=True)

    assert response.redirect_chain[-1][0] == f"/c/{session.token}/done"
    assert_language(response, "es")
    assert "Hemos recibido tu solicitud de cancelación" in response.content.decode()


# --- the catalogs themselves ----------------------------------------------------------------------

GETTEXT_CALL = re.compile(r"\bgettext\(u'((?:[^'\\]|\\.)*)'\)")


def customer_facing_msgids() -> set[str]:
    msgids: set[str] = set()
    for name in CUSTOMER_TEMPLATES:
        code = templatize((Path(settings.BASE_DIR) / "templates" / "flows" / name).read_text("utf-8"))
        found = [ast.literal_eval(f"'{m}'") for m in GETTEXT_CALL.findall(code)]
        assert len(found) == code.count("gettext("), f"unparsed translatable string in {name}"
        msgids.update(found)
    for path in CUSTOMER_CODE:
        tree = ast.parse((Path(settings.BASE_DIR) / path).read_text("utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("gettext", "gettext_lazy")
            ):
                msgids.add(node.args[0].value)
    return msgids


def compiled_catalog(language: str) -> dict[str | tuple[str, int], str]:
    """msgid → msgstr, and (msgid, n) → the nth plural form, as gettext reads the .mo file."""
    with open(LOCALE_DIR / language / "LC_MESSAGES" / "django.mo", "rb") as mo:
        return gettext.GNUTranslations(mo)._catalog  # type: ignore[attr-defined]


def po_translations(language: str) -> dict[str | tuple[str, int], str]:
    """The translated, non-fuzzy entries of a .po file, keyed as compiled_catalog keys them (enough of the
    format for ours)."""
    entries: dict[str | tuple[str, int], str] = {}
    for block in (LOCALE_DIR / language / "LC_MESSAGES" / "django.po").read_text("utf-8").split("\n\n"):
        lines = block.strip().splitlines()
        if any(line.startswith("#,") and "fuzzy" in line for line in lines):
            continue
        fields: dict[str, str] = {}
        key = ""
        for line in lines:
            if line.startswith(("msgid ", "msgid_plural ", "msgstr ", "msgstr[", "msgctxt ")):
                key, _, line = line.partition(" ")
                fields[key] = ""
            if line.startswith('"') and key:
                fields[key] += ast.literal_eval(line)
        if not fields.get("msgid") or "msgctxt" in fields:
            continue
        if "msgid_plural" in fields:
            forms = sorted((int(k[len("msgstr["):-1]), v) for k, v in fields.items() if k.startswith("msgstr["))
            if all(text for _, text in forms):
                entries.update({(fields["msgid"], n): text for n, text in forms})
        elif fields.get("msgstr"):
            entries[fields["msgid"]] = fields["msgstr"]
    return entries


def test_customer_facing_strings_are_found():
    msgids = customer_facing_msgids()
    assert {
        "Why are you canceling?",
        "This page has expired",
        "Back to my account",
        "You told us: %(reason)s",
    } <= msgids
    assert len(msgids) > 30


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_customer_facing_string_is_translated_and_compiled(language):
    catalog = compiled_catalog(language)
    untranslated = sorted(m for m in customer_facing_msgids() if not catalog.get(m) or catalog[m] == m)
    assert untranslated == [], f"run `make messages` and translate these in locale/{language}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_every_placeholder(language):
    placeholder = re.compile(r"%\(\w+\)[sd]")
    for key, msgstr in compiled_catalog(language).items():
        msgid = key[0] if isinstance(key, tuple) else key
        if msgid:
            assert sorted(placeholder.findall(msgstr)) == sorted(placeholder.findall(msgid)), msgid


@pytest.mark.parametrize("language", LANGUAGES)
def test_compiled_catalog_matches_the_po_file(language):
    compiled = {k: v for k, v in compiled_catalog(language).items() if k}
    assert compiled == po_translations(language), f"run `make messages` to recompile locale/{language}"
