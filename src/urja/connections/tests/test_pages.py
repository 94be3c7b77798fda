"""Back-office pages: a CRE registers, an engineer inspects and issues the demand note, the CRE takes
the payment at the counter, the engineer energizes and the consumer number appears; queues and scope."""

import re

from django.test import Client

from urja.connections.models import Application
from urja.demo.testing import staff_user
from urja.metering import services as metering
from urja.payments import services as payments

from .conftest import BALASORE


def _login(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_a_cre_and_an_engineer_take_an_application_to_energization_through_the_pages(offices, loaded, cre, engineer):
    c, e = _login(cre), _login(engineer)
    assert c.get("/connections/new/?applicant_type=owner").status_code == 200
    form = {
        "submit": "1",
        "applicant_type": "owner",
        "name": "Page Applicant",
        "mobile": "9437123450",
        "premises_address": "Sahadevkhunta, Balasore",
        "latitude": BALASORE[0],
        "longitude": BALASORE[1],
        "area_class": "municipal",
        "section": offices["section1"].code,
        "supply_type": "lt_1ph",
        "load": "2",
        "load_unit": "kW",
        "category": "domestic",
        "meter_option": "utility",
        "channel": "care_centre",
        "documents": ["identity_proof", "photograph", "ownership_proof"],
        "proof_identity_proof": "voter_id",
        "number_identity_proof": "OR/01/234",
        "proof_ownership_proof": "sale_deed",
        "number_ownership_proof": "SD-77",
    }
    r = c.post("/connections/new/", form)
    assert r.status_code == 302, r.content[:500]
    app = Application.objects.get()
    url = f"/connections/applications/{app.number}/"
    assert r["Location"] == url
    assert app.number.encode() in c.get("/connections/").content
    act = f"{url}action/"
    e.post(act, {"action": "inspection", "feasible": "yes", "distance_m": "15"})
    e.post(act, {"action": "demand_note"})
    app.refresh_from_db()
    assert app.status == "dn_issued"
    payments.open_session(actor=cre, opening_balance="0")
    c.post(act, {"action": "pay", "method": "cash"})
    app.refresh_from_db()
    assert app.status == "dn_paid"
    metering.register_meter(serial="PAGE01", make="Genus", meter_type="static", actor=None, channel="system")
    r = e.post(act, {"action": "energize", "meter_serial": "PAGE01"})
    app.refresh_from_db()
    assert app.status == "energized"
    page = c.get(url).content.decode()
    assert app.account.consumer_number in page and 'id="consumer-number"' in page


def test_a_refused_registration_shows_the_code_and_keeps_the_form(offices, loaded, cre):
    c = _login(cre)
    r = c.post(
        "/connections/new/",
        {"submit": "1", "applicant_type": "owner", "name": "X", "mobile": "9437123451", "premises_address": "x",
         "latitude": "28.6", "longitude": "77.2", "area_class": "municipal", "section": offices["section1"].code,
         "supply_type": "lt_1ph", "load": "2", "category": "domestic"},
    )  # fmt: skip
    assert r.status_code == 400 and b"outside_service_area" in r.content
    assert not Application.objects.exists()


def test_pages_answer_out_of_scope_like_missing_and_need_a_login(apply, offices):
    app = apply()
    other = _login(staff_user("cre", offices["division2"]))
    assert other.get(f"/connections/applications/{app.number}/").status_code == 404
    assert other.get("/connections/applications/NC000000000/").status_code == 404
    assert app.number.encode() not in other.get("/connections/").content
    assert Client().get("/connections/").status_code == 302
    for path in ("/connections/changes/", "/connections/orders/"):
        assert _login(staff_user("manager", offices["division1"])).get(path).status_code == 200


def test_public_tracking_page_by_number_and_mobile(apply):
    app = apply()
    c = Client()
    ok = c.get(f"/connections/track/?number={app.number}&mobile=9861012345")
    assert ok.status_code == 200 and b"track-result" in ok.content and app.number.encode() in ok.content
    wrong = c.get(f"/connections/track/?number={app.number}&mobile=9861099999").content.decode()
    unknown = c.get("/connections/track/?number=NC000000000&mobile=9861012345").content.decode()
    assert "track-result" not in wrong and "No application with this number and mobile" in wrong

    def main(page: str, number: str) -> str:  # the page's own content (the shell carries tokens and the URL)
        return re.search(r"<main.*</main>", page, re.S).group(0).replace(number, "X")

    assert main(wrong, app.number) == main(unknown, "NC000000000")
