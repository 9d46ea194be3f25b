"""The README's signing code (Python, Node.js, Ruby), run as a business would run it, makes data a live App
accepts: with the billing fields signed, and for the account alone."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from conftest import need
from flows.models import App, CancelSession

pytestmark = pytest.mark.django_db

WITH_BILLING = {"app_id": "demo", "email": "jane@example.com", "subscription_id": "sub_1",
                "account": {"internal_id": "acct_42", "billing_id": "cus_1"}}
ACCOUNT_ONLY = {"app_id": "demo", "account": {"internal_id": "acct_42"}}


def readme_block(language: str) -> str:
    readme = (Path(settings.BASE_DIR) / "README.md").read_text("utf-8")
    section = readme[readme.index("### Live mode: signing the embed"):]
    return re.search(rf"```{language}\n(.*?)```", section, re.DOTALL).group(1)


@pytest.fixture
def live_app(demo_app: App) -> App:
    demo_app.mode = App.Mode.LIVE
    demo_app.save()
    return demo_app


def precancel(body: dict) -> int:
    return Client().post("/precancel", data=json.dumps(body), content_type="application/json").status_code


def accepted_both_ways(with_billing: dict, account_only: dict, account_auth_on_billing_data: dict) -> None:
    assert precancel({**WITH_BILLING, "auth": with_billing}) == 200
    assert precancel({**ACCOUNT_ONLY, "auth": account_only}) == 200
    assert precancel({**WITH_BILLING, "auth": account_auth_on_billing_data}) == 403
    assert CancelSession.objects.count() == 2


def test_the_readmes_python_signing_code_makes_data_a_live_app_accepts(live_app):
    namespace: dict = {}
    exec(readme_block("python"), namespace)  # noqa: S102 - the code a business would copy
    sign = namespace["brightback_auth"]
    accepted_both_ways(sign("demo", live_app.secret, "acct_42", "sub_1", "cus_1", "jane@example.com"),
                       sign("demo", live_app.secret, "acct_42"), sign("demo", live_app.secret, "acct_42"))


def run(command: list[str], source: str, calls: list[str], secret: str) -> list[dict]:
    program = source + "\n" + "\n".join(calls)
    ran = subprocess.run([*command, program], capture_output=True, text=True, timeout=30, check=True,
                         env={"SECRET": secret, "PATH": "/usr/bin:/bin"})
    return [json.loads(line) for line in ran.stdout.splitlines()]


def test_the_readmes_node_signing_code_makes_data_a_live_app_accepts(live_app):
    node = shutil.which("node")
    need(node is not None, "Node.js is not installed")
    signed = run([str(node), "-e"], readme_block("js"), [
        'console.log(JSON.stringify(brightbackAuth("demo", process.env.SECRET, "acct_42", '
        '{subscriptionId: "sub_1", billingId: "cus_1", email: "jane@example.com"})));',
        'console.log(JSON.stringify(brightbackAuth("demo", process.env.SECRET, "acct_42")));',
    ], live_app.secret)
    accepted_both_ways(signed[0], signed[1], signed[1])


def test_the_readmes_ruby_signing_code_makes_data_a_live_app_accepts(live_app):
    ruby = shutil.which("ruby")
    need(ruby is not None, "Ruby is not installed (.ci/run installs it)")
    signed = run([str(ruby), "-rjson", "-e"], readme_block("ruby"), [
        'puts JSON.generate(brightback_auth("demo", ENV["SECRET"], "acct_42", subscription_id: "sub_1", '
        'billing_id: "cus_1", email: "jane@example.com"))',
        'puts JSON.generate(brightback_auth("demo", ENV["SECRET"], "acct_42"))',
    ], live_app.secret)
    accepted_both_ways(signed[0], signed[1], signed[1])
