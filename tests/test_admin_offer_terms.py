"""An offer's term fields in the admin: only its kind's show, and saving keeps only its kind's.

The browser tests drive headless Chromium over the Flow page (its Offer inline, rows added with "Add
another Offer" included) and the Offer page; the last one checks that the page works without scripts.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from flows.models import App, Flow
from flows.tests.test_admin import form_data
from offers.admin import TERM_FIELDS
from offers.models import Offer

DISCOUNT_TERMS = {"coupon", "discount_percent", "discount_months"}


def log_in(page, live_server, user) -> None:  # noqa: ANN001
    page.goto(f"{live_server.url}{reverse('admin:login')}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "password")  # pytest-django's admin_user
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}{reverse('admin:index')}")


def flow_page(page, live_server, app: App) -> Flow:  # noqa: ANN001
    flow = app.flows.get()
    page.goto(f"{live_server.url}{reverse('admin:flows_flow_change', args=[flow.pk])}")
    return flow


def shown_terms(form) -> set[str]:  # noqa: ANN001
    """The term fields a person sees in one offer form (an inline row or the Offer page's form)."""
    return {name for name in TERM_FIELDS if form.locator(f".form-row.field-{name}").is_visible()}


@pytest.mark.browser
def test_flow_page_shows_only_the_terms_of_each_offers_kind_and_saves(page, live_server, demo_app, admin_user):  # noqa: ANN001
    from playwright.sync_api import expect

    log_in(page, live_server, admin_user)
    flow = flow_page(page, live_server, demo_app)

    discount = page.locator(".inline-related", has=page.locator("input[value='discount-30']"))
    expect(discount.locator(".field-discount_percent")).to_be_visible()
    expect(discount.locator(".field-pause_months")).to_be_hidden()
    assert shown_terms(discount) == DISCOUNT_TERMS
    talk = page.locator(".inline-related", has=page.locator("input[value='talk-to-us']"))
    assert shown_terms(talk) == {"support_email"}

    discount.locator("select[name$='-kind']").select_option("pause")
    expect(discount.locator(".field-pause_months")).to_be_visible()
    assert shown_terms(discount) == {"pause_months"}
    discount.locator("input[name$='-pause_months']").fill("3")

    page.click("#offers-group .add-row a")
    added = page.locator("#offers-group .inline-related.dynamic-offers").last
    expect(added.locator("select[name$='-kind']")).to_be_visible()
    assert shown_terms(added) == set()  # no kind chosen yet
    added.locator("select[name$='-kind']").select_option("discount")
    expect(added.locator(".field-discount_percent")).to_be_visible()
    expect(added.locator(".field-pause_months")).to_be_hidden()
    assert shown_terms(added) == DISCOUNT_TERMS
    added.locator("select[name$='-kind']").select_option("pause")
    expect(added.locator(".field-pause_months")).to_be_visible()
    expect(added.locator(".field-discount_percent")).to_be_hidden()
    added.locator("select[name$='-kind']").select_option("discount")
    added.locator("input[name$='-code']").fill("half-off")
    added.locator("input[name$='-title']").fill("Half off for a month")
    added.locator("input[name$='-discount_percent']").fill("50")

    page.locator("input[name=_save]").first.click()
    page.wait_for_url(f"{live_server.url}{reverse('admin:flows_flow_changelist')}")
    expect(page.locator(".messagelist .success")).to_be_visible()

    switched = Offer.objects.get(flow=flow, code="discount-30")
    assert (switched.kind, switched.terms()) == ("pause", {"pause_months": 3})
    assert (switched.coupon, switched.discount_percent, switched.discount_months) == ("", None, None)
    assert Offer.objects.get(flow=flow, code="half-off").terms() == {"discount_percent": 50}


@pytest.mark.browser
def test_offer_page_shows_only_the_terms_of_the_chosen_kind(page, live_server, demo_app, admin_user):  # noqa: ANN001
    from playwright.sync_api import expect

    log_in(page, live_server, admin_user)
    offer = Offer.objects.get(flow__app=demo_app, code="pause-2")
    page.goto(f"{live_server.url}{reverse('admin:offers_offer_change', args=[offer.pk])}")
    form = page.locator("#offer_form")

    expect(form.locator(".field-pause_months")).to_be_visible()
    assert shown_terms(form) == {"pause_months"}
    form.locator("#id_kind").select_option("custom_link")
    expect(form.locator(".field-link_url")).to_be_visible()
    assert shown_terms(form) == {"link_url"}
    form.locator("#id_kind").select_option("skip_renewal")
    expect(form.locator(".field-skip_renewals")).to_be_visible()
    assert shown_terms(form) == {"skip_renewals"}


@pytest.mark.browser
def test_without_javascript_every_term_field_shows(new_context, live_server, demo_app, admin_user):  # noqa: ANN001
    page = new_context(java_script_enabled=False).new_page()
    log_in(page, live_server, admin_user)
    flow_page(page, live_server, demo_app)

    discount = page.locator(".inline-related", has=page.locator("input[value='discount-30']"))
    assert shown_terms(discount) == set(TERM_FIELDS)


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["flow page", "offer page"])
def test_saving_an_offer_whose_kind_changed_clears_the_old_kinds_terms(
    admin_client: Client, demo_app: App, where: str
) -> None:
    offer = Offer.objects.get(flow__app=demo_app, code="discount-30")
    if where == "flow page":
        url = reverse("admin:flows_flow_change", args=[offer.flow_id])
        page = admin_client.get(url)
        offer_forms = page.context["inline_admin_formsets"][1].formset.forms
        prefix = next(form.prefix for form in offer_forms if form.instance.pk == offer.pk) + "-"
    else:
        url = reverse("admin:offers_offer_change", args=[offer.pk])
        page = admin_client.get(url)
        prefix = ""
    data = form_data(page)
    # Posted as a browser would with the old kind's fields still filled in, hidden or not.
    assert (data[f"{prefix}coupon"], data[f"{prefix}discount_percent"]) == ("SAVE30", "30")
    data.update({f"{prefix}kind": "trial_extension", f"{prefix}trial_days": "14"})

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context and response.context["errors"]
    offer.refresh_from_db()
    assert offer.kind == "trial_extension"
    assert offer.terms() == {"trial_days": 14}
    assert (offer.coupon, offer.discount_percent, offer.discount_months) == ("", None, None)
