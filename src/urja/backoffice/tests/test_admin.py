"""The Django admin for master data: every registered list/detail renders; read-only stays read-only."""

import pytest
from django.contrib import admin
from django.urls import reverse

from urja.core.models import AuditEvent
from urja.network.models import Office


@pytest.fixture
def admin_client_(client, admin_user, account):
    client.force_login(admin_user)
    return client


def test_every_changelist_and_change_page_renders(admin_client_, account):
    for model, _model_admin in admin.site._registry.items():
        meta = model._meta
        if meta.app_label not in ("core", "network", "customers"):
            continue
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        assert admin_client_.get(url).status_code == 200, url
        obj = model.objects.first()
        if obj is not None:
            url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
            assert admin_client_.get(url).status_code == 200, url


def test_account_search_by_number_and_name(admin_client_, account):
    url = reverse("admin:customers_account_changelist")
    assert account.consumer_number in admin_client_.get(url, {"q": account.consumer_number}).content.decode()
    assert account.consumer_number in admin_client_.get(url, {"q": "sunita"}).content.decode()


def test_audit_trail_is_read_only(admin_client_, account):
    event = AuditEvent.objects.first()
    url = reverse("admin:core_auditevent_change", args=[event.pk])
    admin_client_.post(url, {"action": "tampered"})
    event.refresh_from_db()
    assert event.action != "tampered"
    assert admin_client_.get(reverse("admin:core_auditevent_add")).status_code == 403
    assert (
        admin_client_.post(reverse("admin:core_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    )
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_account_status_cannot_be_edited_in_admin(admin_client_, account):
    assert "status" in admin.site._registry[type(account)].readonly_fields
    assert admin_client_.get(reverse("admin:customers_account_add")).status_code == 403


def test_office_added_in_admin_gets_its_path(admin_client_, offices):
    parent = offices["subdivision1"]
    response = admin_client_.post(
        reverse("admin:network_office_add"),
        {
            "code": "NEWSEC",
            "name": "New Section",
            "level": "section",
            "parent": parent.pk,
            "state": "OD",
            "opens": "09:30",
            "closes": "17:30",
            "workdays": "012345",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    office = Office.objects.get(code="NEWSEC")
    assert office.path == f"{parent.path}{office.pk}/"
