"""Bearer tokens: one query per call (the caller's role comes with it), "last used" written at most
once a minute, revoked tokens and inactive users refused."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from urja.core.api import TOKEN_SEEN_RESOLUTION
from urja.core.models import ApiToken
from urja.demo.testing import staff_user


def _me(raw: str):
    return Client().get("/api/v1/auth/me", HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.mark.django_db
def test_last_used_is_written_at_most_once_a_minute(offices):
    user = staff_user("cre", offices["division1"])
    token, raw = ApiToken.issue(user=user, name="app")
    assert token.last_used_at is None

    assert _me(raw).status_code == 200
    token.refresh_from_db()
    first_seen = token.last_used_at
    assert first_seen is not None

    with CaptureQueriesContext(connection) as calls:
        assert _me(raw).json()["role"] == "cre"
    assert not any(q["sql"].startswith("UPDATE") for q in calls.captured_queries)
    assert sum("core_apitoken" in q["sql"] for q in calls.captured_queries) == 1  # token, user and role at once
    token.refresh_from_db()
    assert token.last_used_at == first_seen

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - TOKEN_SEEN_RESOLUTION)
    assert _me(raw).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at > first_seen - timedelta(seconds=1)
    assert timezone.now() - token.last_used_at < TOKEN_SEEN_RESOLUTION


@pytest.mark.django_db
def test_revoked_token_and_inactive_user_are_refused(offices):
    user = staff_user("cre", offices["division1"])
    token, raw = ApiToken.issue(user=user, name="app")
    assert _me(raw).status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(revoked=True)
    assert _me(raw).status_code == 401
    _, raw2 = ApiToken.issue(user=user, name="app2")
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert _me(raw2).status_code == 401


@pytest.mark.django_db
def test_token_of_a_user_without_a_staff_profile_has_no_role(db):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username="plain", password="pass12345")
    _, raw = ApiToken.issue(user=user, name="app")
    assert _me(raw).json() == {"username": "plain", "role": None, "office_code": None}
