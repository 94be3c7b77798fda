"""Issue 15 part 5: staff search finds a consumer by any word of the name, by meter serial and by
application, request (complaint or change request) or receipt number — including what has no
connection yet (an application before its account, a theft report, a consumer just registered) —
and never anything outside the user's scope."""

import pytest
from django.core.cache import cache

from urja.customers import services as customers
from urja.demo import testing

BALASORE = ("21.494500", "86.933200")


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.fixture
def loaded(db, settings):
    from urja.servicedesk import catalogue
    from urja.servicedesk import clock as sd_clock
    from urja.tariffs import services as tariffs

    for path in sorted((settings.DATA_DIR / "tariffs").glob("oerc_rst_*.toml")):
        tariffs.load_file(path=path)
    for path in catalogue.default_files():
        catalogue.load_file(path)
    catalogue.clear_cache()
    yield
    sd_clock.reset()


@pytest.fixture
def cre_client(client, cre):
    client.force_login(cre)
    return client


def find(client, q):
    response = client.get("/backoffice/find/", {"q": q})
    assert response.status_code == 200
    return response.content.decode()


def _apply(actor, section, name="Pradeep Sahoo"):
    from urja.connections import services as connections

    return connections.register_application(
        actor=actor,
        channel="care_centre",
        name=name,
        mobile="9861012345",
        applicant_type="owner",
        premises_address="House 4, Motiganj, Balasore",
        latitude=BALASORE[0],
        longitude=BALASORE[1],
        area_class="municipal",
        section=section,
        supply_type="lt_1ph",
        load="2",
        category="domestic",
        documents=[
            connections.DocumentIn("identity_proof", "aadhaar", "234123412346"),
            connections.DocumentIn("photograph"),
            connections.DocumentIn("ownership_proof", "sale_deed", "SD-1234"),
        ],
    )


def test_surname_and_ltd_and_two_words(cre_client, offices):
    sunita = testing.domestic_account(offices["section1"], name="Sunita Behera", mobile="9437012345")
    mill = testing.domestic_account(offices["section1"], name="Kalinga Rice Mill Pvt. Ltd.", mobile="9437012346")
    html = find(cre_client, "behera")
    assert sunita.consumer_number in html and mill.consumer_number not in html
    html = find(cre_client, "Ltd")
    assert mill.consumer_number in html and sunita.consumer_number not in html
    assert mill.consumer_number in find(cre_client, "mill kalinga")  # every word, any order
    assert mill.consumer_number not in find(cre_client, "mill behera")


def test_an_application_number_before_and_after_its_account(cre_client, cre, offices, loaded):
    app = _apply(cre, offices["section1"])
    html = find(cre_client, app.number.lower())
    assert f'href="/connections/applications/{app.number}/"' in html and "Pradeep Sahoo" in html
    assert cre_client.get(f"/connections/applications/{app.number}/").status_code == 200
    # once its account is open, the number finds the account
    account = testing.domestic_account(offices["section1"], name="Pradeep Sahoo", mobile="9861012345")
    type(app).objects.filter(pk=app.pk).update(account=account)
    html = find(cre_client, app.number)
    assert account.consumer_number in html and "application number" in html


def test_a_request_number_with_and_without_an_account(cre_client, cre, offices, loaded):
    from urja.servicedesk import services as desk

    account = testing.domestic_account(offices["section1"], name="Sunita Behera", mobile="9437012345")
    complaint = desk.register_request(
        actor=cre, channel="care_centre", type_code="meter_faulty", subtype_code="meter_stuck",
        consumer_number=account.consumer_number,
    ).request  # fmt: skip
    html = find(cre_client, complaint.number)
    assert account.consumer_number in html and "request number" in html
    theft = desk.register_request(
        actor=cre, channel="care_centre", type_code="theft_report", office=offices["section1"], name="Anonymous caller"
    ).request
    html = find(cre_client, theft.number)
    assert f'href="/servicedesk/r/{theft.number}/"' in html


def test_a_change_request_number(cre_client, cre, offices, loaded):
    from urja.connections import changes

    account = testing.domestic_account(offices["section1"], name="Sunita Behera", mobile="9437012345")
    change = changes.request_change(
        actor=cre, channel="care_centre", account=account, kind="load_change", details={"load": "4", "unit": "kW"}
    )
    html = find(cre_client, change.number)
    assert account.consumer_number in html and "request number" in html


def test_a_consumer_registered_without_a_connection_yet(cre_client, cre):
    consumer = customers.register_consumer(actor=cre, channel="care_centre", name="Gitanjali Mohapatra")
    html = find(cre_client, "mohapatra")
    assert f'href="/customers/consumers/{consumer.pk}/"' in html and "no connection yet" in html


def test_numbers_and_names_of_another_office_are_not_found(cre_client, offices, loaded):
    from urja.servicedesk import services as desk

    far_cre = testing.staff_user("cre", offices["division2"])
    app = _apply(far_cre, offices["section2"], name="Rabi Behera")
    theft = desk.register_request(
        actor=far_cre, channel="care_centre", type_code="theft_report", office=offices["section2"]
    ).request
    consumer = customers.register_consumer(actor=far_cre, channel="care_centre", name="Gitanjali Mohapatra")
    for q in (app.number, theft.number, "mohapatra", "Rabi Behera"):
        html = find(cre_client, q)
        assert "No account in your scope matches" in html, q
        assert 'id="records"' not in html and f"/connections/applications/{app.number}/" not in html
        assert f"/servicedesk/r/{theft.number}/" not in html and f"/customers/consumers/{consumer.pk}/" not in html
