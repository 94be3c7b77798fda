"""Registration from every channel, the channel matrix, duplicates, bad input, acknowledgement."""

from datetime import timedelta

import pytest

from urja.core import ids
from urja.core.errors import DomainError, NotFound
from urja.core.models import AuditEvent, Channel
from urja.servicedesk import catalogue, services
from urja.servicedesk.models import RequestEvent, RequestType, ServiceRequest

REGISTRATION_CHANNELS = [
    Channel.CALL_CENTRE,
    Channel.CARE_CENTRE,
    Channel.ANUBHAV_KENDRA,
    Channel.WEBSITE,
    Channel.EMAIL,
    Channel.APP,
    Channel.SECTION_OFFICE,
    Channel.WHATSAPP,
    Channel.FIELD_AGENT,
    Channel.CAMP,
]


@pytest.mark.parametrize("channel", REGISTRATION_CHANNELS)
def test_no_power_supply_from_every_channel(sop, sd_account, cre, channel):
    result = services.register_request(
        actor=cre, channel=channel, type_code="no_power_supply", subtype_code="no_power_supply", account=sd_account
    )
    sr = result.request
    assert result.created and sr.channel == channel and sr.status == "registered"
    assert ids.has_valid_check(sr.number) and sr.number.startswith("SR")
    # urban NPS: 4 calendar hours
    assert sr.due_at - sr.registered_at == timedelta(hours=4)
    assert sr.office == sd_account.section and sr.team == "operations"
    assert RequestEvent.objects.filter(request=sr, kind="registered").exists()
    assert AuditEvent.objects.filter(action="servicedesk.registered", object_id=str(sr.pk)).exists()


def test_every_matrix_refusal_names_where_to_lodge(sop, sd_account, cre):
    """For every catalogue row and every charter channel the matrix refuses, registration is refused
    with a message listing where it can be lodged, and nothing is created."""
    doc = sop.document
    labels = doc["channels"]["labels"]
    refused = 0
    for rt in RequestType.objects.filter(schedule=sop):
        for column in doc["channels"]["matrix"]:
            if column in rt.channels:
                continue
            with pytest.raises(DomainError) as err:
                services.register_request(
                    actor=cre,
                    channel=column,
                    type_code=rt.type_code,
                    subtype_code=rt.subtype_code,
                    account=sd_account,
                    office=sd_account.section,
                )
            assert err.value.code == "channel_not_allowed"
            assert labels[column] in err.value.message
            for allowed in rt.channels:
                assert labels[allowed] in err.value.message
            refused += 1
    assert refused > 40  # the charter's N cells that have a catalogue row
    assert ServiceRequest.objects.count() == 0


def test_matrix_cells_from_the_charter(sop, sd_account, cre):
    # billing via WhatsApp: N in the charter; via the call centre: Y
    with pytest.raises(DomainError, match="customer care centre") as err:
        services.register_request(
            actor=cre, channel="whatsapp", type_code="bill_revision", subtype_code="disputed_bill", account=sd_account
        )
    assert err.value.details["allowed"] == [
        "call_centre",
        "care_centre",
        "anubhav_kendra",
        "email",
        "app",
        "section_office",
    ]
    ok = services.register_request(
        actor=cre, channel="call_centre", type_code="bill_revision", subtype_code="disputed_bill", account=sd_account
    )
    assert ok.created
    # field agents lodge like a section office; an SMS like WhatsApp (aliases in the data file)
    with pytest.raises(DomainError):
        services.register_request(
            actor=cre, channel="sms", type_code="meter_reading", subtype_code="meter_reading", account=sd_account
        )


def test_bad_input_changes_nothing(sop, sd_account, cre):
    before = (ServiceRequest.objects.count(), AuditEvent.objects.count())
    cases = [
        (dict(type_code="tea_request"), "unknown_request_type"),
        (dict(type_code="no_power_supply", subtype_code="nope"), "unknown_request_type"),
        (dict(type_code="shifting"), "subtype_required"),
        (dict(type_code="meter_reading", account=None), "account_required"),
        (dict(type_code="meter_reading", channel="pigeon"), "unknown_channel"),
        (dict(type_code="meter_reading", mobile="12345"), "invalid_mobile"),
        (dict(type_code="theft_report", account=None), "office_required"),
    ]
    for kwargs, code in cases:
        args = {"actor": cre, "channel": "call_centre", "account": sd_account, **kwargs}
        with pytest.raises(DomainError) as err:
            services.register_request(**args)
        assert err.value.code == code, kwargs
    with pytest.raises(NotFound):
        services.register_request(
            actor=cre,
            channel="call_centre",
            type_code="meter_reading",
            consumer_number="99912345678" + ids.check_character("99912345678"),
        )
    assert (ServiceRequest.objects.count(), AuditEvent.objects.count()) == before


def test_open_request_of_same_type_is_linked_not_duplicated(sop, sd_account, cre):
    first = services.register_request(
        actor=cre, channel="call_centre", type_code="meter_faulty", subtype_code="meter_stuck", account=sd_account
    )
    again = services.register_request(
        actor=cre,
        channel="app",
        type_code="meter_faulty",
        subtype_code="meter_no_display",
        account=sd_account,
        description="still stuck",
    )
    assert not again.created and again.request.pk == first.request.pk
    assert ServiceRequest.objects.count() == 1
    sr = ServiceRequest.objects.get()
    assert sr.repeat_contacts == 1
    assert RequestEvent.objects.filter(request=sr, kind="repeat", channel="app").exists()
    # once closed, the same type opens a new request
    services.close_request(actor=cre, channel="backoffice", request=sr, resolution_notes="meter replaced")
    third = services.register_request(
        actor=cre, channel="app", type_code="meter_faulty", subtype_code="meter_stuck", account=sd_account
    )
    assert third.created and third.request.number != sr.number


def test_rural_variant_and_owning_office(sop, rural_account, cre, offices):
    sr = services.register_request(
        actor=cre, channel="call_centre", type_code="no_power_supply", subtype_code="dt_failure", account=rural_account
    ).request
    assert sr.area == "rural" and sr.timeline_value == 48
    dispute = services.register_request(
        actor=cre,
        channel="care_centre",
        type_code="bill_revision",
        subtype_code="arrear_dispute",
        account=rural_account,
    ).request
    assert dispute.office == offices["division1"] and dispute.team == "hearing_cell"


def test_request_without_account_names_office(sop, cre, offices):
    sr = services.register_request(
        actor=cre,
        channel="whatsapp",
        type_code="theft_report",
        office=offices["section2"].code,
        mobile="+91 94370 55555",
        description="hooking on pole 14",
    ).request
    assert sr.account is None and sr.contact_mobile == "+919437055555"
    assert sr.office == offices["subdivision2"]


def test_acknowledgement_is_queued_in_consumers_language(sop, sd_account, cre):
    pytest.importorskip("urja.notifications.services")
    from urja.notifications.models import OutboxMessage

    sr = services.register_request(
        actor=cre, channel="call_centre", type_code="meter_reading", account=sd_account
    ).request
    messages = OutboxMessage.objects.filter(event="request.registered", account=sd_account)
    assert messages.exists()
    assert all(sr.number in m.body for m in messages)
    assert RequestEvent.objects.filter(request=sr, kind="message").exists()


def test_no_schedule_loaded_is_a_clear_error(db, account, cre):
    with pytest.raises(NotFound) as err:
        services.register_request(actor=cre, channel="call_centre", type_code="meter_reading", account=account)
    assert err.value.code == "no_sop_schedule"


def test_numbers_unique_across_many(sop, offices, cre):
    numbers = set()
    for _ in range(30):
        numbers.add(
            services.register_request(
                actor=cre, channel="call_centre", type_code="theft_report", office=offices["section1"]
            ).request.number
        )
    assert len(numbers) == 30


def test_catalogue_has_every_charter_row(sop):
    rows = set(RequestType.objects.filter(schedule=sop).values_list("type_code", "subtype_code"))
    expected = {
        ("attribute_change", "transfer_of_connection"),
        ("attribute_change", "enhancement_of_contract_demand"),
        ("attribute_change", "reduction_of_contract_demand"),
        ("attribute_change", "category_change"),
        ("meter_reading", "meter_reading"),
        ("meter_testing", "meter_running_fast"),
        ("meter_testing", "meter_running_slow"),
        ("seal_replacement", "meter_seal_broken"),
        ("reconnection", "reconnection"),
        ("moveout_final_bill", "consumer_disconnection_request"),
        ("shifting", "meter_shifting"),
        ("shifting", "lt_line_shifting"),
        ("shifting", "11kv_line_shifting"),
        ("shifting", "33kv_line_shifting"),
        ("shifting", "dt_structure_shifting"),
        ("bill_revision", "disputed_bill"),
        ("bill_revision", "arrear_dispute"),
        ("bill_revision", "wrong_posting"),
        ("meter_faulty", "meter_no_display"),
        ("meter_faulty", "meter_stuck"),
        ("meter_burnt", "meter_burnt"),
        ("meter_burnt", "normal_fuse_off"),
        ("no_power_supply", "no_power_supply"),
        ("no_power_supply", "line_breakdown"),
        ("no_power_supply", "major_line_breakdown"),
        ("no_power_supply", "dt_failure"),
    }
    assert expected <= rows
    nps = RequestType.objects.get(schedule=sop, subtype_code="major_line_breakdown")
    assert (nps.unit, nps.urban_value, nps.rural_value) == ("calendar_hours", 12, 36)
    assert catalogue.find_type(type_code="reconnection").unit == "working_hours"


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_number_is_allocated_first_and_refusals_use_none(offices):
    from urja.core.models import NumberSeries
    from urja.demo import testing

    catalogue.load_file("servicedesk/oerc_sop.toml")
    cre = testing.staff_user("cre", offices["division1"])
    account = testing.domestic_account(offices["section1"])
    with pytest.raises(DomainError):
        services.register_request(
            actor=cre, channel="whatsapp", type_code="bill_revision", subtype_code="disputed_bill", account=account
        )
    assert not NumberSeries.objects.filter(key="servicedesk:request").exists()
    first = services.register_request(actor=cre, channel="app", type_code="meter_reading", account=account)
    again = services.register_request(actor=cre, channel="app", type_code="meter_reading", account=account)
    assert first.created and not again.created and again.request.pk == first.request.pk
    assert NumberSeries.objects.get(key="servicedesk:request").next_value == 2  # no number spent on the repeat
