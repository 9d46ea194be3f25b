"""Production configuration: `check --deploy` under the settings .env.example documents, the compose
file, and /healthz for load balancers."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from django.conf import settings as django_settings

from conftest import need

ROOT = Path(django_settings.BASE_DIR)


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def production_env(tmp_path: Path) -> dict[str, str]:
    """.env.example as an operator fills it in: the two values it asks to generate, generated."""
    env = {name: value for name, value in env_example().items() if value != ""}
    env.update({
        "PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "brightback_site.settings",
        "SECRET_KEY": secrets.token_urlsafe(50), "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "BRIGHTBACK_VAR_DIR": str(tmp_path),
    })
    return env


def test_check_deploy_is_clean_under_the_documented_production_settings(tmp_path):
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=production_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_names_what_a_careless_production_setup_forgot(tmp_path):
    env = production_env(tmp_path)
    env.update({"SECURE_SSL_REDIRECT": "0", "SECURE_HSTS_SECONDS": "0", "SECURE_COOKIES": "0"})
    env.pop("FIELD_ENCRYPTION_KEYS")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016", "flows.E004"):
        assert check in result.stderr, check


def without_encryption_keys(tmp_path: Path) -> dict[str, str]:
    env = production_env(tmp_path)
    env.pop("FIELD_ENCRYPTION_KEYS")
    return env


def test_manage_py_refuses_to_run_in_production_without_encryption_keys_saying_why(tmp_path):
    result = subprocess.run([sys.executable, "manage.py", "migrate", "--check"], cwd=ROOT,
                            env=without_encryption_keys(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "flows.E004" in result.stderr and "FIELD_ENCRYPTION_KEYS is not set and DEBUG is off" in result.stderr
    assert "Fernet.generate_key()" in result.stderr  # and how to make one


def test_the_web_process_builds_its_views_before_serving_and_keeps_them_out_of_full_collections(tmp_path):
    code = ("import gc, sys; before = gc.get_freeze_count(); import brightback_site.wsgi; "
            "from django.urls import get_resolver; "
            "assert {'brightback_site.urls', 'flows.api', 'flows.views', 'embeds.api'} <= set(sys.modules); "
            "assert get_resolver()._populated; "
            "print(before, gc.get_freeze_count())")
    env = production_env(tmp_path)
    env["REDIS_URL"] = "redis://127.0.0.1:1/0"  # never reached: importing the app connects to nothing
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    before, after = map(int, result.stdout.split()[-2:])
    assert before == 0 and after > 10_000  # Django, the settings, the models, views and URLs: frozen once built


def test_what_a_web_worker_builds_before_serving_names_real_pages_urls_and_templates():
    # warm() passes over a name that no longer exists (a worker must start all the same): this keeps the
    # lists true.
    from django.template.loader import get_template
    from django.urls import resolve, reverse

    from brightback_site.startup import WARM_PATHS, WARM_TEMPLATES, WARM_URL_NAMES

    for path in WARM_PATHS:
        resolve(path)
    for name, args in WARM_URL_NAMES:
        reverse(name, args=args)
    for name in WARM_TEMPLATES:
        get_template(name)


@pytest.mark.parametrize("argv", [
    ["-c", "import brightback_site.wsgi"],  # what gunicorn loads
    ["-m", "celery", "-A", "brightback_site", "worker", "--pool", "solo", "--without-mingle", "--without-gossip"],
    ["-m", "celery", "-A", "brightback_site", "beat", "--schedule", "{tmp}/beat-schedule"],
], ids=["gunicorn", "celery-worker", "celery-beat"])
def test_servers_refuse_to_start_in_production_without_encryption_keys(tmp_path, argv):
    env = without_encryption_keys(tmp_path)
    env["REDIS_URL"] = "redis://127.0.0.1:1/0"  # never reached: the process stops before connecting
    env["LOG_FORMAT"] = "text"
    argv = [part.replace("{tmp}", str(tmp_path)) for part in argv]
    result = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "refusing to start" in result.stderr and "FIELD_ENCRYPTION_KEYS is not set" in result.stderr, \
        result.stderr[-3000:]


@pytest.mark.django_db
def test_healthz_answers_a_load_balancer_probing_by_address(client, settings):
    settings.ALLOWED_HOSTS = ["cancel.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/healthz", HTTP_HOST="10.0.0.5:8000")
    assert response.status_code in (200, 503)
    assert response.json()["database"] == "ok"
    # Everything else still refuses an unknown host, and plain HTTP is sent to HTTPS.
    assert client.get("/demo/", HTTP_HOST="10.0.0.5:8000").status_code == 400
    assert client.get("/demo/", HTTP_HOST="cancel.example.com").status_code == 301


def compose_config(tmp_path: Path) -> dict:
    compose = shutil.which("docker-compose")
    need(compose is not None, "validating docker-compose.yml needs Debian's docker-compose (apt-get install "
                              "docker-compose); .ci/run installs it")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    result = subprocess.run([compose, "config"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_is_valid_and_runs_the_whole_stack_with_health_checks(tmp_path):
    config = compose_config(tmp_path)
    services = config["services"]
    assert {"web", "worker", "beat", "db", "redis", "migrate"} <= services.keys()
    for name in ("web", "worker", "db", "redis"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no health check"
    assert services["web"]["command"][0] == "gunicorn"
    assert {"pgdata", "redisdata"} <= config["volumes"].keys()
    for name in ("web", "worker", "beat"):
        assert services[name]["restart"] in ("always", "unless-stopped"), f"nothing restarts {name}"
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert environment["REDIS_URL"].startswith("redis://")


def test_production_logs_are_json_lines_carrying_the_ids(tmp_path):
    code = ("import logging; logging.getLogger('flows.services').info('decision recorded', "
            "extra={'session_id': 'ses_1', 'event_id': 'evt_1'})")
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT,
                            env=production_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "decision recorded" in line]
    record = json.loads(line)
    assert record["message"] == "decision recorded" and record["level"] == "INFO"
    assert (record["session_id"], record["event_id"]) == ("ses_1", "evt_1")
    assert record["logger"] == "flows.services" and "time" in record


def image_check():  # noqa: ANN201
    """.ci/image-check as a module (it has no .py suffix: it is a command)."""
    from importlib.machinery import SourceFileLoader
    from importlib.util import module_from_spec, spec_from_loader

    loader = SourceFileLoader("image_check", str(ROOT / ".ci" / "image-check"))
    module = module_from_spec(spec_from_loader("image_check", loader))
    loader.exec_module(module)
    return module


def test_the_images_tree_holds_every_package_and_none_of_the_test_code(tmp_path):
    files = set(image_check().image_tree(tmp_path / "app"))
    local_apps = [app for app in django_settings.INSTALLED_APPS if (ROOT / app / "__init__.py").exists()]
    packages = {"brightback_site", "audiences", *local_apps}  # audiences has no models: not an installed app
    for package in packages:
        assert f"{package}/__init__.py" in files, f"{package} is missing from the image"
    for needed in ("manage.py", "pyproject.toml", "static/js/brightback.js", "templates/503.html",
                   "flows/fixtures/demo-flow.json", "locale/fr/LC_MESSAGES/django.mo"):
        assert needed in files, needed
    top = {path.split("/")[0] for path in files}
    assert not top & {"tests", "bench", "node_modules", ".venv", "var", ".git", "conftest.py", "docs"}, top
    assert not [path for path in files if "/tests/" in path or path.startswith("billing/testing/")
                or path.endswith("/testing.py") or "__pycache__" in path]


def test_dockerignore_is_read_as_docker_reads_it():
    module = image_check()
    rules = [(False, module._pattern_regex(p)) for p in ("**/tests", "billing/testing", "*.md", "var")]
    rules.append((True, module._pattern_regex("var/keep.txt")))
    assert module.ignored("flows/tests/test_page.py", rules) and module.ignored("tests/workers.py", rules)
    assert module.ignored("billing/testing/specs/stripe.json", rules)
    assert module.ignored("README.md", rules) and not module.ignored("docs/flow-format.md", rules)
    assert module.ignored("var/db.sqlite3", rules) and not module.ignored("var/keep.txt", rules)
    assert not module.ignored("flows/testsuite.py", rules) and not module.ignored("billing/models.py", rules)
