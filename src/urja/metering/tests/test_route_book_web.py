"""Issue 15: the route book for field and mini-grid agents — in the navigation, the agent's own
cycle (not C01) and beat, labelled inputs, and a reading taken from it (with the meter's photo)."""

from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from urja.customers.models import Account
from urja.demo import testing
from urja.metering import services
from urja.metering.models import Reading

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def beat(offices):
    """Two accounts of cycle C07 on routes R1 and R2 of section 1, each with a meter."""
    made = []
    for n, route in enumerate(("R1", "R2")):
        account = testing.domestic_account(offices["section1"], name=f"Basanti Murmu {n}", mobile="")
        Account.objects.filter(pk=account.pk).update(bill_cycle="C07", route=route, connected_on=date(2025, 1, 1))
        meter = services.register_meter(
            serial=f"MG00{n}", make="Genus", meter_type="static", actor=None, channel="system"
        )
        services.install_meter(account=account, meter=meter, actor=None, channel="system", initial_kwh="100")
        made.append(account)
    return made


def test_agent_sees_its_cycle_and_beat_and_takes_a_reading(client, offices, beat):
    agent = testing.staff_user("field_agent", offices["section1"], username="mgagent")
    agent.staff.routes = "R1"
    agent.staff.save()
    client.force_login(agent)
    page = client.get("/metering/route-book/").content.decode()
    assert "cycle C07" in page  # the agent's cycle, not C01
    assert beat[0].consumer_number in page and beat[1].consumer_number not in page  # only the beat's route
    assert f'<label for="kwh-{beat[0].consumer_number}">' in page  # labelled inputs

    # a field reading needs the meter's photo
    refused = client.post(
        "/metering/route-book/reading/",
        {"consumer_number": beat[0].consumer_number, "kwh": "150", "status": "actual"},
        HTTP_HX_REQUEST="true",
    )
    assert "photo" in refused.content.decode() and not Reading.objects.filter(source="field_agent").exists()
    saved = client.post(
        "/metering/route-book/reading/",
        {
            "consumer_number": beat[0].consumer_number,
            "kwh": "150",
            "status": "actual",
            "photo": SimpleUploadedFile("m.png", PNG, content_type="image/png"),
        },
        HTTP_HX_REQUEST="true",
    )
    assert "Saved" in saved.content.decode()
    reading = Reading.objects.get(source="field_agent")
    assert reading.account_id == beat[0].pk and reading.kwh == 150 and reading.photo

    # off the beat: like an account that does not exist
    off = client.post(
        "/metering/route-book/reading/", {"consumer_number": beat[1].consumer_number, "kwh": "1", "status": "actual"}
    )
    assert off.status_code == 404
