"""Bearer tokens expire (URJA_API_TOKEN_TTL) and are revoked for good when the user's password changes
or the user is deactivated: 401 `token_expired` / `invalid_token`."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone

from urja.core.admin import UrjaUserAdmin
from urja.core.models import ApiToken
from urja.demo.testing import staff_user


def me(raw: str):
    return Client().get("/api/v1/auth/me", HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def user(offices):
    return staff_user("cre", offices["division1"], username="lipsa", password="right-pass-1")


@pytest.mark.django_db
def test_token_endpoint_issues_a_token_that_expires_after_the_configured_ttl(user):
    with override_settings(URJA_API_TOKEN_TTL=timedelta(hours=2)):
        before = timezone.now()
        response = Client().post(
            "/api/v1/auth/tokens", {"username": "lipsa", "password": "right-pass-1"}, content_type="application/json"
        )
    assert response.status_code == 201
    token = ApiToken.objects.get(user=user)
    assert before + timedelta(hours=2) <= token.expires_at <= timezone.now() + timedelta(hours=2)
    assert response.json()["expires_at"].startswith(token.expires_at.strftime("%Y-%m-%dT%H:%M"))
    raw = response.json()["token"]
    assert me(raw).status_code == 200

    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = me(raw)
    assert expired.status_code == 401
    assert expired.json()["code"] == "token_expired"
    assert set(expired.json()) == {"code", "message", "details"}


def test_the_default_ttl_is_a_working_shift():
    from django.conf import settings

    assert timedelta(hours=12) == settings.URJA_API_TOKEN_TTL


@pytest.mark.django_db
def test_a_password_change_revokes_every_token_of_the_user(user):
    _, raw1 = ApiToken.issue(user=user, name="app")
    _, raw2 = ApiToken.issue(user=user, name="tablet")
    other = staff_user("cre", None)
    _, other_raw = ApiToken.issue(user=other, name="app")
    assert me(raw1).status_code == 200

    user.set_password("new-pass-2")
    user.save()
    for raw in (raw1, raw2):
        answer = me(raw)
        assert answer.status_code == 401
        assert answer.json()["code"] == "invalid_token"
        assert answer.json()["details"] == {"reason": "password_changed"}
    assert set(ApiToken.objects.filter(user=user).values_list("revoked_reason", flat=True)) == {"password_changed"}
    assert me(other_raw).status_code == 200

    # a token issued under the new password works; saving the user for other reasons changes nothing
    _, fresh = ApiToken.issue(user=user, name="app")
    user.first_name = "Lipsa"
    user.save()
    assert Client().login(username="lipsa", password="new-pass-2")  # writes last_login
    assert me(fresh).status_code == 200


@pytest.mark.django_db
def test_deactivation_revokes_tokens_for_good(user):
    _, raw = ApiToken.issue(user=user, name="app")
    user.is_active = False
    user.save(update_fields=["is_active"])
    answer = me(raw)
    assert answer.status_code == 401 and answer.json()["code"] == "invalid_token"

    user.is_active = True
    user.save(update_fields=["is_active"])
    assert me(raw).json()["code"] == "invalid_token"  # reactivation does not revive it


@pytest.mark.django_db
def test_deactivating_a_user_in_the_admin_revokes_their_tokens_at_once(user, admin_user):
    token, raw = ApiToken.issue(user=user, name="app")
    user.is_active = False
    request = RequestFactory().post("/admin/")
    request.user = admin_user
    UrjaUserAdmin(get_user_model(), admin.site).save_model(
        request, user, SimpleNamespace(changed_data=["is_active"]), change=True
    )
    token.refresh_from_db()
    assert token.revoked and token.revoked_reason == "user_deactivated"
    user.is_active = True
    user.save()
    assert me(raw).json()["code"] == "invalid_token"


@pytest.mark.django_db
def test_unknown_and_missing_tokens(user):
    unknown = me("urja_not-a-token")
    assert unknown.status_code == 401 and unknown.json()["code"] == "invalid_token"
    missing = Client().get("/api/v1/auth/me")
    assert missing.status_code == 401 and missing.json()["code"] == "not_authenticated"


@pytest.mark.django_db
def test_a_revoked_token_stays_refused(user):
    token, raw = ApiToken.issue(user=user, name="app")
    ApiToken.objects.filter(pk=token.pk).update(revoked=True, revoked_reason="admin")
    answer = me(raw)
    assert answer.status_code == 401
    assert answer.json() == {
        "code": "invalid_token",
        "message": "this token has been revoked; sign in again",
        "details": {"reason": "admin"},
    }
