"""A customer with a load limiter (no smart meter): the package change reprograms the limiter on the
smart meters' command path (metering.limiters) — both commands queued, the package in force only when
the limiter acknowledges both, a failure keeps the request open and sends again. The limiter takes
nothing but its two commands."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from urja.core.errors import DomainError
from urja.metering import limiters
from urja.metering import services as metering
from urja.metering.models import CommandStatus, MeterCommand
from urja.minigrid import services
from urja.minigrid.models import ChangeStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def limiter(customer):
    meter = metering.register_meter(
        serial=f"LL{uuid.uuid4().hex[:8].upper()}", make="Devergy", meter_type="load_limiter", actor=None,
        channel="system",
    )  # fmt: skip
    metering.install_meter(
        account=customer.account, meter=meter, actor=None, channel="system",
        installed_at=timezone.now() - timedelta(days=2), initial_kwh="0",
    )  # fmt: skip
    return meter


def _approved_and_paid(customer, operator):
    ch = services.request_package_change(actor=operator, channel="app", customer=customer, to_package="MG-SOLAR-100W")
    services.recharge(actor=operator, customer=customer, amount="500", mode="cash", idempotency_key=uuid.uuid4().hex)
    return services.decide(actor=operator, channel="backoffice", change=ch, approve=True)


def _ack(cmd: MeterCommand, ok: bool = True):
    metering.claim_commands()  # the gateway's publish: queued → sent
    return metering.record_ack(serial=cmd.meter.serial, command_id=cmd.command_id, ok=ok, reason="" if ok else "busy")


def test_limiter_is_reprogrammed_and_the_package_waits_for_its_ack(customer, operator, limiter):
    ch = _approved_and_paid(customer, operator)
    assert ch.status == ChangeStatus.PROGRAMMING  # not "set by hand": commands are out
    assert ch.load_command.meter == limiter and ch.load_command.params == {"kw": "0.1"}
    assert ch.hours_command.params == {"windows": [["18:00", "00:00"]]}
    _ack(ch.load_command)
    assert services.advance(change=ch).status == ChangeStatus.PROGRAMMING  # one of two acknowledged
    customer.refresh_from_db()
    assert customer.package_code == "MG-SOLAR-50W"
    metering.record_ack(serial=limiter.serial, command_id=ch.hours_command.command_id, ok=True)
    assert services.advance(change=ch).status == ChangeStatus.IN_FORCE
    limiter.refresh_from_db()
    customer.refresh_from_db()
    assert limiter.load_limit_kw == Decimal("0.1") and limiter.supply_hours == [["18:00", "00:00"]]
    assert customer.package_code == "MG-SOLAR-100W"


def test_a_refusing_limiter_keeps_the_request_open_and_is_sent_again(customer, operator, limiter):
    ch = _approved_and_paid(customer, operator)
    _ack(ch.load_command, ok=False)
    ch = services.advance(change=ch)
    ch.load_command.refresh_from_db()
    assert ch.status == ChangeStatus.PROGRAMMING and ch.rounds == 2
    assert ch.load_command.status == CommandStatus.QUEUED  # the same command id, sent again
    _ack(ch.load_command)
    metering.record_ack(serial=limiter.serial, command_id=ch.hours_command.command_id, ok=True)
    assert services.advance(change=ch).status == ChangeStatus.IN_FORCE


def test_a_limiter_takes_only_its_two_commands(customer, limiter):
    before = MeterCommand.objects.count()
    for command, params in [("disconnect", {}), ("reconnect", {}), ("time_sync", {})]:
        with pytest.raises(DomainError) as err:
            limiters.send_command(command=command, meter=limiter, params=params, actor=None, channel="system")
        assert err.value.code == "meter_not_smart"
    for params in [{"kw": "0"}, {"kw": "abc"}, {"kw": "-1"}]:
        with pytest.raises(DomainError) as err:
            limiters.send_command(command="set_load_limit", meter=limiter, params=params, actor=None, channel="x")
        assert err.value.code == "invalid_command_params"
    with pytest.raises(DomainError):
        limiters.send_command(
            command="set_supply_hours", meter=limiter, params={"windows": [["25:00", "x"]]}, actor=None, channel="x"
        )
    # the smart meters' own path still refuses a limiter (its rules are unchanged)
    with pytest.raises(DomainError) as err:
        metering.send_command(command="set_load_limit", meter=limiter, params={"kw": "1"}, actor=None, channel="x")
    assert err.value.code == "meter_not_smart"
    assert MeterCommand.objects.count() == before
    one = limiters.send_command(
        command="set_load_limit", account=customer.account, params={"kw": "0.25"}, actor=None, channel="system",
        idempotency_key="ll-1",
    )  # fmt: skip
    again = limiters.send_command(
        command="set_load_limit", meter=limiter, params={"kw": "0.25"}, actor=None, channel="system",
        idempotency_key="ll-1",
    )  # fmt: skip
    assert one == again and one.account == customer.account and MeterCommand.objects.count() == before + 1


def test_without_any_device_the_package_goes_in_force_when_paid(customer, operator):
    assert limiters.programmable_meter(customer.account) is None
    assert _approved_and_paid(customer, operator).status == ChangeStatus.IN_FORCE
