import pytest
from django.test import Client

from urja.core.models import ApiToken
from urja.customers.models import Account
from urja.customers.services import register_consumer
from urja.demo.testing import domestic_account, staff_user


def bearer(user) -> dict:
    _, raw = ApiToken.issue(user=user, name="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def client():
    return Client()


@pytest.mark.django_db
def test_unauthenticated_is_401_with_error_format(client, account):
    response = client.get(f"/api/v1/customers/accounts/{account.consumer_number}")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.django_db
def test_token_from_credentials_and_me(client, offices):
    staff_user("cre", offices["division1"], username="cre1", password="s3cret-pass")
    bad = client.post("/api/v1/auth/tokens", {"username": "cre1", "password": "nope"}, content_type="application/json")
    assert bad.status_code == 401 and bad.json()["code"] == "invalid_credentials"
    ok = client.post(
        "/api/v1/auth/tokens", {"username": "cre1", "password": "s3cret-pass"}, content_type="application/json"
    )
    assert ok.status_code == 201
    me = client.get("/api/v1/auth/me", HTTP_AUTHORIZATION=f"Bearer {ok.json()['token']}")
    assert me.json() == {"username": "cre1", "role": "cre", "office_code": offices["division1"].code}


@pytest.mark.django_db
def test_division_staff_see_only_their_division(client, offices, cre):
    mine = domestic_account(offices["section1"], mobile="9437000001")
    other = domestic_account(offices["section2"], mobile="9437000002")
    headers = bearer(cre)
    assert client.get(f"/api/v1/customers/accounts/{mine.consumer_number}", **headers).status_code == 200
    hidden = client.get(f"/api/v1/customers/accounts/{other.consumer_number}", **headers)
    assert hidden.status_code == 404
    # out-of-scope and nonexistent accounts give the same answer: no leak
    missing = mine.consumer_number[:-4] + "9999"
    from urja.core import ids

    missing = missing[:-1] + ids.check_character(missing[:-1])
    nonexistent = client.get(f"/api/v1/customers/accounts/{missing}", **headers)
    assert nonexistent.status_code == 404 and nonexistent.json()["code"] == hidden.json()["code"]
    listing = client.get("/api/v1/customers/accounts", **headers).json()
    assert [a["consumer_number"] for a in listing["items"]] == [mine.consumer_number]


@pytest.mark.django_db
def test_search_by_mobile_through_api(client, offices, admin_user):
    account = domestic_account(offices["section2"], mobile="9861122334")
    response = client.get("/api/v1/customers/accounts", {"q": "9861122334"}, **bearer(admin_user))
    assert [a["consumer_number"] for a in response.json()["items"]] == [account.consumer_number]


@pytest.mark.django_db
def test_invalid_consumer_number_is_400(client, account, admin_user):
    wrong = account.consumer_number[:-1] + str((int(account.consumer_number[-1]) + 1) % 10)
    response = client.get(f"/api/v1/customers/accounts/{wrong}", **bearer(admin_user))
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_consumer_number"


@pytest.mark.django_db
def test_register_and_open_account_through_api(client, offices, cre):
    headers = bearer(cre)
    consumer = client.post(
        "/api/v1/customers/consumers",
        {
            "name": "Gitanjali Pradhan",
            "preferred_language": "or",
            "contacts": [{"kind": "mobile", "value": "94370 55555"}],
        },
        content_type="application/json",
        **headers,
    )
    assert consumer.status_code == 201, consumer.content
    body = consumer.json()
    assert body["contacts"][0]["value"] == "+919437055555"
    account = client.post(
        "/api/v1/customers/accounts",
        {
            "consumer_id": body["id"],
            "section": offices["section1"].code,
            "premises_address": "Sahadevkhunta",
            "category": "domestic",
            "supply_type": "lt_1ph",
            "sanctioned_load": "3",
        },
        content_type="application/json",
        **headers,
    )
    assert account.status_code == 201, account.content
    assert account.json()["section"] == offices["section1"].code


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"supply_type": "lt_1ph", "sanctioned_load": "12"}, 400, "load_out_of_range"),
        ({"section": "NOWHERE"}, 400, "unknown_office"),
        ({"sanctioned_load": "abc"}, 422, "invalid_number"),
    ],
)
def test_bad_account_input_changes_nothing(client, offices, cre, payload, status, code):
    consumer = register_consumer(actor=cre, channel="api", name="X")  # registered at the CRE's office
    data = {
        "consumer_id": consumer.pk,
        "section": offices["section1"].code,
        "premises_address": "Somewhere",
        "category": "domestic",
        "supply_type": "lt_1ph",
        "sanctioned_load": "2",
        **payload,
    }
    response = client.post("/api/v1/customers/accounts", data, content_type="application/json", **bearer(cre))
    assert response.status_code == status
    assert response.json()["code"] == code and response.json()["message"]
    assert Account.objects.count() == 0


@pytest.mark.django_db
def test_cre_cannot_open_account_in_another_division(client, offices, cre):
    consumer = register_consumer(actor=cre, channel="api", name="X")
    data = {
        "consumer_id": consumer.pk,
        "section": offices["section2"].code,
        "premises_address": "Somewhere",
        "category": "domestic",
        "supply_type": "lt_1ph",
        "sanctioned_load": "2",
    }
    response = client.post("/api/v1/customers/accounts", data, content_type="application/json", **bearer(cre))
    assert response.status_code == 400 and response.json()["code"] == "unknown_office"
    assert Account.objects.count() == 0


@pytest.mark.django_db
def test_bad_mobile_contact_is_422_or_400(client, account, admin_user):
    response = client.post(
        f"/api/v1/customers/consumers/{account.consumer_id}/contacts",
        {"kind": "mobile", "value": "55555"},
        content_type="application/json",
        **bearer(admin_user),
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid_mobile"


@pytest.mark.django_db
def test_document_upload_with_aadhaar(client, account, admin_user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(
        f"/api/v1/customers/consumers/{account.consumer_id}/documents",
        {
            "document_code": "identity_proof",
            "proof_type": "aadhaar",
            "number": "234123412346",
            "file": SimpleUploadedFile("aadhaar.pdf", b"%PDF-1.4 test", content_type="application/pdf"),
        },
        **bearer(admin_user),
    )
    assert response.status_code == 201, response.content
    assert response.json()["number_masked"] == "XXXX XXXX 2346"
    bad = client.post(
        f"/api/v1/customers/consumers/{account.consumer_id}/documents",
        {"document_code": "identity_proof", "proof_type": "aadhaar", "number": "234123412345"},
        **bearer(admin_user),
    )
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_aadhaar"


@pytest.mark.django_db
def test_status_change_needs_a_role_allowed_to(client, account, offices):
    cre = staff_user("cre", offices["division1"])
    response = client.post(
        f"/api/v1/customers/accounts/{account.consumer_number}/status",
        {"status": "banned", "reason": "x"},
        content_type="application/json",
        **bearer(cre),
    )
    assert response.status_code == 403 and response.json()["code"] == "role_not_allowed"
    engineer = staff_user("engineer", offices["division1"])
    ok = client.post(
        f"/api/v1/customers/accounts/{account.consumer_number}/status",
        {"status": "temp_disconnected", "reason": "meter shifting"},
        content_type="application/json",
        **bearer(engineer),
    )
    assert ok.status_code == 200 and ok.json()["status"] == "temp_disconnected"


def test_public_document_matrix(client):
    response = Client().get("/api/v1/customers/document-matrix/company")
    assert response.status_code == 200
    assert "certificate_of_incorporation" in {d["code"] for d in response.json()}
    assert Client().get("/api/v1/customers/document-matrix/alien").status_code == 400
