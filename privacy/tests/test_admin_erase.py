"""A superuser erases a customer from their session's admin page; nobody else can."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from flows import services
from flows.models import App, CancelSession, Decision

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(demo_app: App, snippet_data) -> CancelSession:  # noqa: ANN001
    started = services.session_start(app=demo_app, data=snippet_data(email="jane.roe@example.com"))
    services.decision_record(session=started, kind="cancel", reason_code="too-expensive", feedback="my own words")
    return started


def erase_url(session: CancelSession) -> str:
    return reverse("admin:flows_cancelsession_erase", args=[session.pk])


def test_a_superuser_erases_the_customer_from_the_session_page(admin_client: Client, session: CancelSession):
    page = admin_client.get(reverse("admin:flows_cancelsession_change", args=[session.pk])).content.decode()
    assert erase_url(session) in page
    confirm = admin_client.get(erase_url(session)).content.decode()
    assert "jane.roe@example.com" in confirm and 'name="confirm" value="yes"' in confirm
    assert CancelSession.objects.get(pk=session.pk).email == "jane.roe@example.com"  # a GET changes nothing

    done = admin_client.post(erase_url(session), {"confirm": "yes"}, follow=True)

    assert done.status_code == 200 and "Erased the personal data of 1 sessions" in done.content.decode()
    assert "jane.roe@example.com" not in done.content.decode() and "my own words" not in done.content.decode()
    erased = CancelSession.objects.get(pk=session.pk)
    assert erased.email == "" and erased.erased_at is not None
    assert Decision.objects.get(session=session).feedback == ""


def test_a_post_without_the_confirmation_erases_nothing(admin_client: Client, session: CancelSession):
    admin_client.post(erase_url(session), {})
    assert CancelSession.objects.get(pk=session.pk).email == "jane.roe@example.com"


def test_the_erase_post_needs_its_csrf_token(django_user_model, session: CancelSession):  # noqa: ANN001
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw"))
    assert client.post(erase_url(session), {"confirm": "yes"}).status_code == 403
    assert CancelSession.objects.get(pk=session.pk).email == "jane.roe@example.com"


def test_staff_who_are_not_superusers_get_403_and_nothing_changes(client: Client, django_user_model,  # noqa: ANN001
                                                                 session: CancelSession):
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=[
        "view_cancelsession", "change_cancelsession", "delete_cancelsession"]))
    client.force_login(user)
    page = client.get(reverse("admin:flows_cancelsession_change", args=[session.pk])).content.decode()
    assert page and erase_url(session) not in page
    assert client.get(erase_url(session)).status_code == 403
    assert client.post(erase_url(session), {"confirm": "yes"}).status_code == 403
    assert CancelSession.objects.get(pk=session.pk).email == "jane.roe@example.com"
    assert Decision.objects.get(session=session).feedback == "my own words"
