"""The registration hot path: the catalogue read once per process (and a new version seen at once),
registration outside a transaction (number allocated first, one query to find the account and an
open request of the type), and the number of queries one API registration costs."""

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from urja.core import ids
from urja.core.errors import DomainError, NotFound
from urja.core.models import ApiToken, AuditEvent, NumberSeries
from urja.demo import testing
from urja.servicedesk import catalogue, services
from urja.servicedesk.models import EscalationClock, RequestEvent, ServiceRequest


def _new_version(tmp_path, *, version: int, value: int):
    """The OERC file as a new version whose meter-reading timeline is `value` days (was 7)."""
    text = catalogue.default_files()[0].read_text()
    marker = 'code = "meter_reading"\nname = "Meter reading"'
    head, tail = text.split(marker, 1)
    assert "version = 1\n" in head and "value = 7\n" in tail
    head = head.replace("version = 1\n", f"version = {version}\n", 1)
    path = tmp_path / f"oerc_v{version}.toml"
    path.write_text(head + marker + tail.replace("value = 7\n", f"value = {value}\n", 1))
    return path


def test_catalogue_is_read_once_per_process_and_a_new_version_counts_at_once(sop, tmp_path):
    catalogue.active_schedule()
    with CaptureQueriesContext(connection) as reads:
        schedule = catalogue.active_schedule()
        row = catalogue.find_type(type_code="meter_reading", schedule=schedule)
        catalogue.tiers_of(row)
        catalogue.workflow_machine(schedule, row.workflow)
    assert len(reads) == 1  # which schedule is in force; its rows come from the process cache
    assert row.schedule_id == sop.pk and row.timeline_value("urban") == 7
    assert [t.level for t in catalogue.tiers_of(row)] == sorted(t.level for t in row.tiers.all())

    v2, created = catalogue.load_file(_new_version(tmp_path, version=2, value=9))
    assert created
    schedule = catalogue.active_schedule()
    assert schedule.pk == v2.pk
    row = catalogue.find_type(type_code="meter_reading", schedule=schedule)
    assert row.schedule_id == v2.pk and row.timeline_value("urban") == 9
    # the rows of the older version stay readable for requests registered under it
    old = catalogue.find_type(type_code="meter_reading", schedule=sop)
    assert old.schedule_id == sop.pk and old.timeline_value("urban") == 7


def test_cached_rows_are_the_database_rows(sop):
    schedule = catalogue.active_schedule()
    for rt in schedule.types.all():
        cached = catalogue.find_type(type_code=rt.type_code, subtype_code=rt.subtype_code, schedule=schedule)
        assert cached.pk == rt.pk
        assert (cached.channels, cached.unit, cached.workflow, cached.office_level) == (
            rt.channels,
            rt.unit,
            rt.workflow,
            rt.office_level,
        )
        assert [(t.level, t.fraction, t.office_level) for t in catalogue.tiers_of(cached)] == [
            (t.level, t.fraction, t.office_level) for t in rt.tiers.order_by("level")
        ]
    with pytest.raises(DomainError) as err:
        catalogue.find_type(type_code="shifting", schedule=schedule)
    assert err.value.code == "subtype_required"
    assert err.value.details["subtypes"] == list(
        schedule.types.filter(type_code="shifting").order_by("subtype_code").values_list("subtype_code", flat=True)
    )
    with pytest.raises(KeyError):
        catalogue.workflow_machine(schedule, "no_such_workflow")


@pytest.mark.django_db(transaction=True)
def test_registration_outside_a_transaction_by_consumer_number(offices):
    catalogue.load_file("servicedesk/oerc_sop.toml")
    cre = testing.staff_user("cre", offices["division1"])
    account = testing.domestic_account(offices["section1"])
    first = services.register_request(
        actor=cre,
        channel="call_centre",
        type_code="meter_faulty",
        subtype_code="meter_stuck",
        consumer_number=account.consumer_number.lower(),
    )
    sr = first.request
    assert first.created and sr.account_id == account.pk and sr.consumer_id == account.consumer_id
    assert ids.has_valid_check(sr.number) and sr.contact_mobile == "+919437012345"
    assert EscalationClock.objects.filter(request=sr, next_escalation_ts__isnull=False).exists()
    assert AuditEvent.objects.filter(action="servicedesk.registered", object_id=str(sr.pk)).exists()
    assert list(RequestEvent.objects.filter(request=sr).values_list("kind", flat=True)) == ["registered", "message"]

    again = services.register_request(
        actor=cre,
        channel="app",
        type_code="meter_faulty",
        subtype_code="meter_no_display",
        consumer_number=account.consumer_number,
    )
    assert not again.created and again.request.pk == sr.pk and again.request.repeat_contacts == 1
    assert again.request.request_type.subtype_code == "meter_stuck"  # the open request, as registered
    assert NumberSeries.objects.get(key="servicedesk:request").next_value == 2  # no number spent on the repeat

    with pytest.raises(NotFound) as missing:
        services.register_request(
            actor=cre,
            channel="call_centre",
            type_code="meter_reading",
            consumer_number="99912345678" + ids.check_character("99912345678"),
        )
    assert missing.value.code == "account_not_found"
    with pytest.raises(DomainError) as invalid:
        services.register_request(
            actor=cre, channel="call_centre", type_code="meter_reading", consumer_number="12345678901"
        )
    assert invalid.value.code == "invalid_consumer_number"
    assert ServiceRequest.objects.count() == 1


def _api_client(user) -> Client:
    _, raw = ApiToken.issue(user=user, name="test")
    return Client(headers={"Authorization": f"Bearer {raw}"})


@pytest.mark.django_db(transaction=True)
def test_api_registration_query_budget(offices):
    """One registration through the API, as the load test sends it: the catalogue, the caller's
    role and the number series cost no more than a query each (a regression here is a
    regression of the request_api benchmark)."""
    catalogue.load_file("servicedesk/oerc_sop.toml")
    cre = testing.staff_user("cre", offices["division1"])
    accounts = [testing.domestic_account(offices["section1"], mobile=f"94370{i:05d}") for i in range(2)]
    api = _api_client(cre)

    def register(account, kind, subtype):
        body = {"type": kind, "subtype": subtype, "channel": "call_centre", "consumer_number": account}
        return api.post("/api/v1/servicedesk/requests", json.dumps(body), content_type="application/json")

    register(accounts[0].consumer_number, "meter_faulty", "meter_stuck")  # warms the process cache
    with CaptureQueriesContext(connection) as new:
        created = register(accounts[1].consumer_number, "meter_faulty", "meter_stuck")
    with CaptureQueriesContext(connection) as repeat:
        linked = register(accounts[1].consumer_number, "meter_faulty", "meter_stuck")
    assert created.status_code == 201 and linked.status_code == 200
    assert linked.json()["number"] == created.json()["number"] and linked.json()["duplicate"]
    assert created.json()["due_at"] and created.json()["sla_status"] == "on_track"
    assert created.json()["escalation_level"] == 0 and not created.json()["paused"]
    statements = [q["sql"] for q in new.captured_queries]
    # token+role, the caller's office (scope), the account in scope, schedule in force, account+open
    # request, number, then the transaction: lock the
    # account, open request of the type, contacts, request, escalation pointer, registered event,
    # audit, outbox check, outbox insert (in a savepoint), message event
    assert len(statements) <= 23, "\n".join(statements)
    assert sum("numberseries" in s for s in statements) == 1
    assert sum("apitoken" in s.lower() for s in statements) == 1
    assert len(repeat.captured_queries) <= 13, "\n".join(q["sql"] for q in repeat.captured_queries)
