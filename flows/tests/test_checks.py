from __future__ import annotations

from flows.checks import check_event_handlers, check_site_url


def test_site_url_with_a_path_is_reported(settings):
    settings.SITE_URL = "https://cancel.example.com/sub"
    assert [e.id for e in check_site_url(None)] == ["flows.E001"]


def test_good_site_url_passes(settings):
    settings.SITE_URL = "https://cancel.example.com"
    assert check_site_url(None) == []


def test_unimportable_event_handler_is_reported(settings):
    settings.BRIGHTBACK_EVENT_HANDLERS = ["nowhere.handler"]
    assert [e.id for e in check_event_handlers(None)] == ["flows.E002"]
