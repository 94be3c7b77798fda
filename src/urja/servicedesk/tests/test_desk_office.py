"""Issue 15: a complaint without an account (a theft report) is registered at the desk by choosing the
office from a list within the staff member's scope; another office answers like one that does not exist."""

import pytest

from urja.servicedesk.models import ServiceRequest


@pytest.fixture
def desk(client, cre, sop):
    client.force_login(cre)
    return client


def post(**changes):
    data = {
        "consumer_number": "",
        "kind": "theft_report/theft_report",
        "channel": "care_centre",
        "mobile": "9437012399",
        "description": "Hooking on the LT line behind the market",
        "office": "",
    }
    data.update(changes)
    return data


def test_the_form_offers_the_offices_of_the_staff_members_scope(desk, offices):
    html = desk.get("/servicedesk/desk/").content.decode()
    assert 'name="office"' in html
    assert f'value="{offices["section1"].code}"' in html and f'value="{offices["subdivision1"].code}"' in html
    assert f'value="{offices["section2"].code}"' not in html and f'value="{offices["circle"].code}"' not in html


def test_a_theft_report_without_an_account_goes_to_the_chosen_office(desk, offices):
    response = desk.post("/servicedesk/desk/", post(office=offices["section1"].code))
    assert response.status_code == 302, response.content.decode()[:2000]
    sr = ServiceRequest.objects.get()
    assert sr.account is None and sr.type_code == "theft_report"
    assert sr.office == offices["subdivision1"]  # the type is worked by the sub-division above the section
    assert sr.contact_mobile == "+919437012399"
    assert response["Location"] == f"/servicedesk/r/{sr.number}/"
    assert desk.get(response["Location"]).status_code == 200  # and the CRE sees it


def test_no_office_and_no_account_is_refused_and_nothing_is_stored(desk):
    response = desk.post("/servicedesk/desk/", post())
    assert response.status_code == 400 and "name the office" in response.content.decode()
    assert ServiceRequest.objects.count() == 0


def test_another_offices_code_answers_like_a_nonexistent_one(desk, offices):
    far = desk.post("/servicedesk/desk/", post(office=offices["section2"].code))
    unknown = desk.post("/servicedesk/desk/", post(office="NOPE"))
    assert far.status_code == unknown.status_code == 400
    assert f"No office {offices['section2'].code}." in far.content.decode()
    assert "No office NOPE." in unknown.content.decode()
    assert ServiceRequest.objects.count() == 0


def test_with_an_account_the_office_is_the_accounts(desk, offices, sd_account):
    response = desk.post(
        "/servicedesk/desk/",
        post(consumer_number=sd_account.consumer_number, kind="meter_faulty/meter_stuck",
             office=offices["section2"].code),
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode().split("<main")[-1][:1500]
    assert ServiceRequest.objects.get().office.path.startswith(offices["division1"].path)


def test_the_registration_message_gives_the_promise_in_the_one_date_format(desk, offices):
    """The desk's "Promised by" reads dd-mm-yyyy HH:MM in IST, as every other date (was "06 Dec 2026")."""
    from urja.core.templatetags.urja_format import when

    response = desk.post("/servicedesk/desk/", post(office=offices["section1"].code), follow=True)
    sr = ServiceRequest.objects.get()
    page = response.content.decode()
    assert (
        f"Promised by {when(sr.due_at)}" in page and sr.due_at.strftime("%b") not in page.split("Promised by")[1][:30]
    )
