"""Staff edit an App's compliance rules in the admin; the admin refuses what an import would."""

from __future__ import annotations

import json

import pytest

from compliance.models import ComplianceRules

pytestmark = pytest.mark.django_db


def test_staff_set_rules_in_the_admin_and_bad_ones_are_refused_with_a_message(admin_client, demo_app):
    ComplianceRules.objects.filter(app=demo_app).delete()  # the demo imports the presets
    url = "/admin/compliance/compliancerules/add/"
    assert "Minn. Stat." in admin_client.get(url).content.decode()  # the presets, to copy
    bad = admin_client.post(url, {"app": demo_app.pk, "rules": json.dumps({"regions": {"US-MN": {"offers": 0}}})})
    assert bad.status_code == 200
    assert "compliance.regions.US-MN.offers: must be one of any, one, none" in bad.content.decode()
    assert not ComplianceRules.objects.exists()
    rules = {"regions": {"US-MN": {"offers": "none"}}}
    good = admin_client.post(url, {"app": demo_app.pk, "rules": json.dumps(rules)})
    assert good.status_code == 302
    assert ComplianceRules.objects.get(app=demo_app).rules == rules
