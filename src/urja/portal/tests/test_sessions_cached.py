"""Sessions read through Redis when one is configured (settings: URJA_REDIS_URL → Django's `cached_db`
engine on the `sessions` cache, RedisCache): a signed-in page skips the session query, and logging
out or a revoked login still ends the session at once, in every worker. Without Redis (the embedded
default) sessions stay in the database only. The Redis tests run where CI starts one
(URJA_TEST_REDIS_URL, as core/tests/test_platform.py)."""

import os
import subprocess
import sys
import uuid

import pytest
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.test import Client, override_settings

from urja.portal.tests.test_page_budgets import SIGNED_IN
from urja.portal.tests.test_portal_account import billed, sign_in  # noqa: F401  (fixture)

CACHED_DB = "urja.portal.sessions"  # Django's cached_db, reading the database while Redis is down
KEY = "django.contrib.sessions.cached_db"  # cached_db's key prefix


def _session_settings(env: dict) -> list[str]:
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.SESSION_ENGINE, settings.SESSION_CACHE_ALIAS,"
        " settings.CACHES.get('sessions', {}).get('BACKEND', '-'), settings.CACHES['default']['BACKEND'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "urja.settings", **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_sessions_use_redis_only_when_it_is_configured():
    assert _session_settings({"URJA_REDIS_URL": ""}) == [
        "django.contrib.sessions.backends.db",
        "default",
        "-",
        "django.core.cache.backends.locmem.LocMemCache",
    ]
    # configuring Redis needs no server to start (it is reached on the first request)
    assert _session_settings({"URJA_REDIS_URL": "redis://127.0.0.1:1/9"}) == [
        CACHED_DB,
        "sessions",
        "django.core.cache.backends.redis.RedisCache",
        "django.core.cache.backends.locmem.LocMemCache",  # other caches unchanged
    ]


@pytest.fixture
def redis_sessions():
    url = os.environ.get("URJA_TEST_REDIS_URL")
    if not url:
        pytest.skip("URJA_TEST_REDIS_URL not set (CI sets it after starting Redis)")
    prefix = f"urja-test-{uuid.uuid4().hex[:12]}"  # nothing shared with another run on the same Redis
    caches_setting = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "sessions": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url, "KEY_PREFIX": prefix},
    }
    with override_settings(CACHES=caches_setting, SESSION_ENGINE=CACHED_DB, SESSION_CACHE_ALIAS="sessions"):
        yield caches["sessions"]
    import redis  # only this run's keys go (RedisCache.clear() would empty the whole Redis database)

    client = redis.Redis.from_url(url)
    for name in client.scan_iter(match=f"{prefix}:*"):
        client.delete(name)


def test_sign_in_and_pages_work_while_redis_is_unreachable(billed):  # noqa: F811
    """Redis down (nothing listens on port 1): the sessions are read from the database, the pages work;
    no Redis is needed for this test."""
    unreachable = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "sessions": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"},
    }
    with override_settings(CACHES=unreachable, SESSION_ENGINE=CACHED_DB, SESSION_CACHE_ALIAS="sessions"):
        client = Client()
        assert sign_in(client).status_code == 302
        key = client.cookies["sessionid"].value
        assert Session.objects.filter(session_key=key).exists()
        assert client.get("/portal/").status_code == 200
        assert client.get("/portal/bills/").status_code == 200


def _cached(cache, key: str):
    return cache.get(KEY + key)


@pytest.mark.services
def test_signed_in_pages_skip_the_session_query_and_logout_ends_it_everywhere(
    redis_sessions,
    billed,  # noqa: F811
    django_assert_max_num_queries,
):
    client = Client()  # created under the override: its middleware uses the cached_db engine
    sign_in(client)
    key = client.cookies["sessionid"].value
    assert Session.objects.filter(session_key=key).exists()  # the database keeps the session
    assert _cached(redis_sessions, key) is not None  # and Redis a copy
    client.get("/portal/")
    with django_assert_max_num_queries(SIGNED_IN):  # user + role, account, the home's statement
        assert client.get("/portal/").status_code == 200
    with django_assert_max_num_queries(SIGNED_IN):
        assert client.get("/portal/bills/").status_code == 200

    other_worker = Client()  # the same cookie in another process reads the same Redis
    other_worker.cookies["sessionid"] = key
    assert other_worker.get("/portal/bills/").status_code == 200

    assert client.post("/portal/logout/").status_code == 302
    assert not Session.objects.filter(session_key=key).exists()
    assert _cached(redis_sessions, key) is None
    stale = other_worker.get("/portal/bills/")  # the old cookie opens nothing
    assert stale.status_code == 302 and stale["Location"].startswith("/portal/login/")


@pytest.mark.services
def test_a_revoked_login_ends_a_cached_session(redis_sessions, billed):  # noqa: F811
    """Whether the user may still be signed in is read from the database on every page (the user row:
    active, the session hash of the password), so a cached session does not outlive a revocation."""
    client = Client()
    sign_in(client)
    key = client.cookies["sessionid"].value
    assert client.get("/portal/bills/").status_code == 200
    billed.consumer.user.__class__.objects.filter(pk=billed.consumer.user_id).update(is_active=False)
    assert _cached(redis_sessions, key) is not None
    refused = client.get("/portal/bills/")
    assert refused.status_code == 302 and refused["Location"].startswith("/portal/login/")
