"""Metering scope (issue 11, part 1): import error reports only for staff whose office covers the
importer's; an out-of-scope import or account answers exactly like a nonexistent one."""

from django.test import Client

from urja.demo.testing import domestic_account, staff_user
from urja.metering.models import ImportBatch


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_import_error_report_only_for_the_importers_office(offices, admin_user):
    importer = staff_user("billing_officer", offices["division1"])
    batch = ImportBatch.objects.create(
        file_name="amr.csv", file_sha256="0" * 64, file_format="csv", imported_by=importer
    )
    for user in (importer, staff_user("manager", offices["circle"]), admin_user):
        assert client_for(user).get(f"/api/v1/metering/imports/{batch.pk}/errors").status_code == 200
    other = client_for(staff_user("billing_officer", offices["division2"]))
    for url in ("/api/v1/metering/imports/{}", "/api/v1/metering/imports/{}/errors"):
        far, none = other.get(url.format(batch.pk)), other.get(url.format(batch.pk + 1000))
        assert far.status_code == none.status_code == 404
        assert far.json() == none.json()


def test_out_of_scope_account_answers_word_for_word_like_an_unknown_number(offices):
    account = domestic_account(offices["section1"])
    other = client_for(staff_user("engineer", offices["division2"]))
    far = other.get(f"/api/v1/metering/accounts/{account.consumer_number.lower()}/readings")
    gone = domestic_account(offices["section1"], name="Gone", mobile="9437011111")
    missing = gone.consumer_number  # a well-formed number (check digit right) that no account has
    gone.delete()
    gone.consumer.delete()
    none = other.get(f"/api/v1/metering/accounts/{missing}/readings")
    assert far.status_code == none.status_code == 404
    assert far.json()["message"].replace(account.consumer_number, "N") == none.json()["message"].replace(missing, "N")
