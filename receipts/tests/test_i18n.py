"""Every customer-facing string of the receipts and the way-back page is translated in each of the
page's languages, and the compiled catalogs carry it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils.translation.template import templatize

from flows.tests.test_page_i18n import LANGUAGES, compiled_catalog

GETTEXT_CALL = re.compile(r"\bgettext\(u'((?:[^'\\]|\\.)*)'\)")
TEMPLATES = Path(settings.BASE_DIR) / "receipts" / "templates" / "receipts"


def receipt_msgids() -> set[str]:
    msgids: set[str] = set()
    for path in sorted(TEMPLATES.rglob("*.*")):
        code = templatize(path.read_text("utf-8"))
        found = [ast.literal_eval(f"'{m}'") for m in GETTEXT_CALL.findall(code)]
        assert len(found) == code.count("gettext("), f"unparsed translatable string in {path.name}"
        msgids.update(found)
    return msgids


def test_the_receipts_strings_are_found():
    assert {"Keep my subscription", "Reference: %(ref)s", "Hello,"} <= receipt_msgids()


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_receipt_string_is_translated_and_compiled(language):
    catalog = compiled_catalog(language)
    # Present in the catalog (a few read the same in a language, as "Plan: %(plan)s" does in Spanish).
    untranslated = sorted(m for m in receipt_msgids() if not catalog.get(m))
    assert untranslated == []
