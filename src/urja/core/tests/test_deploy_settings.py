"""Production settings, each in a fresh process (settings are read once, from the environment):
`urja check --deploy` is clean, HSTS and the other headers are sent, and a weak SECRET_KEY stops
the start with a clear message."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

URJA = Path(sys.executable).with_name("urja")
STRONG_KEY = secrets.token_urlsafe(64)


def production_env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("URJA_", "DJANGO_")) and k != "DEBUG"}
    env.update(
        URJA_ENV="production",
        SECRET_KEY=STRONG_KEY,
        DATABASE_URL=f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        ALLOWED_HOSTS="urja.example.in",
        URJA_VAR_DIR=str(tmp_path / "var"),
    )
    env.update(extra)
    return env


def run(args, env, timeout=120):
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


def test_check_deploy_is_clean_with_the_production_settings(tmp_path):
    result = run([str(URJA), "check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_names_what_an_operator_turned_off(tmp_path):
    # plain HTTP is the operator's choice, but the check still says what it costs
    result = run([str(URJA), "check", "--deploy"], production_env(tmp_path, URJA_HTTPS="0"))
    assert "security.W004" in result.stderr + result.stdout and "security.W008" in result.stderr + result.stdout


PROBE = """
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "urja.settings")
django.setup()
from django.conf import settings
from django.test import Client
r = Client().get("/login/", secure=True, headers={"host": "urja.example.in"})
print(r.status_code)
for name in ("Strict-Transport-Security", "Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy",
             "X-Frame-Options"):
    print(name, "=", r.headers.get(name))
plain = Client().get("/login/", headers={"host": "urja.example.in"})
print("plain", plain.status_code, plain.headers.get("Location"))
print("ttl", settings.URJA_API_TOKEN_TTL.total_seconds())
"""


def test_production_sends_hsts_and_redirects_to_https(tmp_path):
    result = run([sys.executable, "-c", PROBE], production_env(tmp_path, URJA_API_TOKEN_TTL_HOURS="8"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "200"
    headers = dict(line.split(" = ", 1) for line in lines[1:6])
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert "script-src 'self';" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert lines[6] == "plain 301 https://urja.example.in/login/"
    assert lines[7] == "ttl 28800.0"  # URJA_API_TOKEN_TTL_HOURS


@pytest.mark.parametrize(
    "key, why",
    [
        (None, "is not set"),
        ("x", "has 1 characters (at least 50 are needed)"),
        ("change-me", "is the example placeholder"),
        ("ab" * 40, "has only 2 distinct characters"),
        # a fixed value: xdist workers must collect the same test ids
        ("django-insecure-" + "k7Qp2Zr9Xw4Lm8Nv3Bt6Yc1Hd5Fg0Js" * 2, "is the example placeholder or a development key"),
    ],
)
def test_production_refuses_a_weak_secret_key(tmp_path, key, why):
    env = production_env(tmp_path)
    if key is None:
        del env["SECRET_KEY"]
    else:
        env["SECRET_KEY"] = key
    result = run([str(URJA), "check"], env)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY " in result.stderr
    assert why in result.stderr
    assert "URJA_ENV=production" in result.stderr


def test_development_runs_without_a_secret_key(tmp_path):
    env = production_env(tmp_path, URJA_ENV="development")
    del env["SECRET_KEY"]
    result = run([str(URJA), "check"], env)
    assert result.returncode == 0, result.stderr


def test_the_env_example_placeholder_is_the_one_refused():
    from django.conf import settings

    example = (Path(settings.BASE_DIR) / ".env.example").read_text()
    line = next(ln for ln in example.splitlines() if ln.startswith("# SECRET_KEY="))
    assert line.split("=", 1)[1].split()[0] == settings.SECRET_KEY_PLACEHOLDER
