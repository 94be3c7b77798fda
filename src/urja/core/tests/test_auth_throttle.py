"""Sign-in throttle: after N failures per username (or per client address) within the window, every
attempt — the right password included — is refused until the lockout has passed; on the login page,
the admin login and the token endpoint alike, which share one count."""

from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from urja.core import regdata
from urja.core.auth import PASSWORD, client_address, purge_throttle, throttle_rule
from urja.core.models import AuthThrottle
from urja.demo.testing import staff_user

PASSWORD_OK = "right-pass-1"


@pytest.fixture
def rule():
    return throttle_rule("password")


@pytest.fixture
def clock():
    """Time travel: `clock.travel(minutes=…)` moves timezone.now() (the throttle's clock) forward."""

    class Clock:
        offset = timedelta(0)

        def travel(self, **delta):
            self.offset += timedelta(**delta)

    real_now = timezone.now
    c = Clock()
    with mock.patch("django.utils.timezone.now", side_effect=lambda: real_now() + c.offset):
        yield c


@pytest.fixture
def user(offices):
    return staff_user("cre", offices["division1"], username="lipsa", password=PASSWORD_OK)


def login(client, username, password, address="10.1.1.1"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def token(client, username, password, address="10.1.1.1"):
    return client.post(
        "/api/v1/auth/tokens",
        {"username": username, "password": password},
        content_type="application/json",
        REMOTE_ADDR=address,
    )


def test_the_rule_is_data_with_a_source():
    data = regdata.load("core/security.toml")
    assert "OWASP" in data["source"]["document"] and "CERT-In" in data["source"]["document"]
    rule = throttle_rule("password")
    assert rule.username_failures == data["throttle"]["password"]["username_failures"]
    assert 1 < rule.username_failures < rule.address_failures
    assert rule.window == timedelta(minutes=data["throttle"]["password"]["window_minutes"])


@pytest.mark.django_db
def test_login_page_locks_the_username_then_refuses_the_right_password_until_the_lockout_passes(user, rule, clock):
    client = Client()
    for _ in range(rule.username_failures):
        response = login(client, "lipsa", "wrong")
        assert response.status_code == 200
        assert "Wrong username or password" in response.content.decode()

    refused = login(client, "lipsa", PASSWORD_OK)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) == int(rule.lockout.total_seconds())
    page = refused.content.decode()
    assert "Too many failed login attempts" in page and "Wrong username" not in page
    assert "_auth_user_id" not in client.session

    # from another computer too: the username itself is locked
    assert login(Client(), "lipsa", PASSWORD_OK, address="10.9.9.9").status_code == 429

    clock.travel(seconds=rule.lockout.total_seconds() - 60)
    assert login(client, "lipsa", PASSWORD_OK).status_code == 429

    clock.travel(seconds=61)
    assert login(client, "lipsa", PASSWORD_OK).status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


@pytest.mark.django_db
def test_failures_spread_over_more_than_the_window_do_not_lock(user, rule, clock):
    client = Client()
    for _ in range(rule.username_failures - 1):
        login(client, "lipsa", "wrong")
    clock.travel(seconds=rule.window.total_seconds())
    for _ in range(rule.username_failures - 1):
        login(client, "lipsa", "wrong")
    assert login(client, "lipsa", PASSWORD_OK).status_code == 302


@pytest.mark.django_db
def test_success_clears_the_username_count_but_not_the_address_count(user, rule):
    for _ in range(rule.username_failures - 1):
        login(Client(), "lipsa", "wrong")
    assert login(Client(), "lipsa", PASSWORD_OK).status_code == 302
    assert not AuthThrottle.objects.filter(scope="password:username").exists()
    assert AuthThrottle.objects.get(scope="password:address", key="10.1.1.1").failures == rule.username_failures - 1
    for _ in range(rule.username_failures - 1):
        login(Client(), "lipsa", "wrong")
    assert login(Client(), "lipsa", PASSWORD_OK).status_code == 302


@pytest.mark.django_db
def test_one_address_guessing_many_usernames_is_locked_for_every_username(user, rule, clock):
    # fewer tries per username than its own limit, but many usernames from one address
    tries = 0
    n = 0
    while tries < rule.address_failures:
        n += 1
        for _ in range(min(rule.username_failures - 1, rule.address_failures - tries)):
            login(Client(), f"guess{n}", "wrong", address="203.0.113.5")
            tries += 1
    refused = login(Client(), "lipsa", PASSWORD_OK, address="203.0.113.5")
    assert refused.status_code == 429
    # the same user from another address is not affected
    assert login(Client(), "lipsa", PASSWORD_OK, address="198.51.100.7").status_code == 302
    clock.travel(seconds=rule.lockout.total_seconds() + 1)
    assert login(Client(), "lipsa", PASSWORD_OK, address="203.0.113.5").status_code == 302


@pytest.mark.django_db
def test_token_endpoint_answers_429_with_retry_after_and_shares_the_count_with_the_login_page(user, rule, clock):
    client = Client()
    for i in range(rule.username_failures):
        # failures on the page and on the API add up: one throttle for one password
        response = login(client, "lipsa", "wrong") if i % 2 else token(client, "lipsa", "wrong")
        if not i % 2:
            assert response.status_code == 401 and response.json()["code"] == "invalid_credentials"

    refused = token(client, "lipsa", PASSWORD_OK)
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "too_many_attempts"
    assert body["message"]
    assert body["details"]["retry_after"] == int(rule.lockout.total_seconds())
    assert refused["Retry-After"] == str(body["details"]["retry_after"])

    clock.travel(minutes=5)
    later = token(client, "lipsa", PASSWORD_OK).json()
    assert later["details"]["retry_after"] == int((rule.lockout - timedelta(minutes=5)).total_seconds())

    clock.travel(seconds=rule.lockout.total_seconds())
    assert token(client, "lipsa", PASSWORD_OK).status_code == 201


@pytest.mark.django_db
def test_attempts_during_a_lockout_do_not_extend_it(user, rule, clock):
    for _ in range(rule.username_failures):
        token(Client(), "lipsa", "wrong")
    until = AuthThrottle.objects.get(scope="password:username").locked_until
    clock.travel(minutes=1)
    for _ in range(3):
        assert token(Client(), "lipsa", "wrong").status_code == 429
    assert AuthThrottle.objects.get(scope="password:username").locked_until == until


@pytest.mark.django_db
def test_admin_login_is_throttled_too(offices, rule):
    staff_user("admin", None, username="root", password=PASSWORD_OK)
    client = Client()
    for _ in range(rule.username_failures):
        client.post("/admin/login/", {"username": "root", "password": "wrong"}, REMOTE_ADDR="10.2.2.2")
    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD_OK}, REMOTE_ADDR="10.2.2.2")
    assert response.status_code == 200 and "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_usernames_differing_in_case_share_a_count(user, rule):
    for i in range(rule.username_failures):
        login(Client(), "LIPSA" if i % 2 else "lipsa", "wrong")
    assert login(Client(), "lipsa", PASSWORD_OK).status_code == 429


def test_client_address_behind_reverse_proxies():
    class Request:
        def __init__(self, remote, forwarded=None):
            self.META = {"REMOTE_ADDR": remote}
            if forwarded is not None:
                self.META["HTTP_X_FORWARDED_FOR"] = forwarded

    with override_settings(URJA_PROXY_COUNT=0):
        assert client_address(Request("192.0.2.1", "6.6.6.6")) == "192.0.2.1"  # header not trusted
    with override_settings(URJA_PROXY_COUNT=1):
        # the client may send its own X-Forwarded-For; the proxy appends the real address last
        assert client_address(Request("127.0.0.1", "6.6.6.6, 203.0.113.9")) == "203.0.113.9"
        assert client_address(Request("127.0.0.1")) == "127.0.0.1"
    with override_settings(URJA_PROXY_COUNT=2):
        assert client_address(Request("127.0.0.1", "6.6.6.6, 203.0.113.9, 10.0.0.2")) == "203.0.113.9"


@pytest.mark.django_db
def test_an_otp_style_throttle_reuses_the_machinery(rule):
    """Another kind of sign-in only needs its own rule: keys and counts are kept apart by kind."""
    now = timezone.now()
    for _ in range(rule.username_failures):
        PASSWORD.failed(identity="9437012345", address="10.3.3.3", now=now)
    with pytest.raises(Exception) as refused:
        PASSWORD.check(identity="9437012345", address=None, now=now)
    assert refused.value.code == "too_many_attempts"
    PASSWORD.check(identity="9437012345", address=None, now=now + rule.lockout)  # over


@pytest.mark.django_db
def test_purge_deletes_only_counters_nobody_needs(rule):
    now = timezone.now()
    PASSWORD.failed(identity="old", address=None, now=now - rule.window - timedelta(minutes=1))
    # an old window but still locked (a longer lockout than window): kept
    AuthThrottle.objects.create(
        scope="password:username",
        key="locked",
        window_started_at=now - timedelta(days=1),
        locked_until=now + rule.lockout,
    )
    PASSWORD.failed(identity="recent", address=None, now=now)
    assert purge_throttle(now=now) == 1
    assert set(AuthThrottle.objects.values_list("key", flat=True)) == {"locked", "recent"}


@pytest.mark.django_db
def test_the_purge_is_a_periodic_job(rule):
    from urja.core import tasks

    assert tasks.PERIODIC_TASKS["core.purge_auth_throttle"]["task"] == "urja.core.tasks.purge_auth_throttle"
    PASSWORD.failed(identity="old", address=None, now=timezone.now() - rule.window - timedelta(minutes=1))
    assert tasks.purge_auth_throttle() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_failures_are_all_counted(on_postgres, rule):
    """Workers counting failures for one username at once lose none (a row lock per key): the lock
    starts exactly at the limit, as gunicorn's workers would see it."""
    if not on_postgres:
        pytest.skip("SQLite test databases are in-memory per connection; concurrency is proven on PostgreSQL")
    import threading

    from django.db import connection

    errors: list[Exception] = []
    barrier = threading.Barrier(rule.username_failures - 1)

    def worker():
        try:
            barrier.wait()
            PASSWORD.failed(identity="target", address="10.7.7.7")
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(rule.username_failures - 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    row = AuthThrottle.objects.get(scope="password:username", key="target")
    assert row.failures == rule.username_failures - 1 and row.locked_until is None
    PASSWORD.failed(identity="target", address="10.7.7.7")
    assert AuthThrottle.objects.get(pk=row.pk).locked_until is not None
