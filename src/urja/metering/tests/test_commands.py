from datetime import timedelta

import pytest
from django.utils import timezone

from urja.core.errors import DomainError, TransitionNotAllowed
from urja.metering import limiters, services
from urja.metering.models import CommandStatus, MeterCommand


def test_command_lifecycle_and_idempotency(smart, account):
    cmd = services.send_command(
        account=account,
        command="disconnect",
        params={"reason": "wallet empty"},
        actor=None,
        channel="system",
        idempotency_key="pay:1:disconnect",
    )
    again = services.send_command(
        account=account, command="disconnect", actor=None, channel="system", idempotency_key="pay:1:disconnect"
    )
    assert again.pk == cmd.pk and cmd.status == CommandStatus.QUEUED and cmd.meter_id == smart.pk
    [(serial, payload)] = services.claim_commands()
    assert serial == smart.serial and payload["command_id"] == cmd.command_id and payload["attempt"] == 1
    assert services.claim_commands() == []  # already sent
    services.record_ack(serial=smart.serial, command_id=cmd.command_id, ok=True)
    services.record_ack(serial=smart.serial, command_id=cmd.command_id, ok=True)  # duplicate ack: no change
    cmd.refresh_from_db()
    smart.refresh_from_db()
    assert cmd.status == CommandStatus.ACKNOWLEDGED
    assert smart.relay_connected is False
    with pytest.raises(TransitionNotAllowed):
        services.cancel_command(command=cmd, actor=None, channel="system")


def test_timeout_retries_with_the_same_id_then_times_out(smart):
    cmd = services.send_command(meter=smart, command="time_sync", actor=None, channel="system", max_attempts=2)
    later = timezone.now() + timedelta(seconds=cmd.timeout_seconds + 1)
    services.claim_commands()
    assert services.sweep_command_timeouts(now=later) == {"timed_out": 0, "retried": 1}
    [(_, payload)] = services.claim_commands()
    assert payload["command_id"] == cmd.command_id and payload["attempt"] == 2
    assert services.sweep_command_timeouts(now=later + timedelta(seconds=cmd.timeout_seconds + 1)) == {
        "timed_out": 1,
        "retried": 0,
    }
    cmd.refresh_from_db()
    assert cmd.status == CommandStatus.TIMED_OUT


@pytest.mark.parametrize(
    ("command", "params", "code"),
    [
        ("explode", {}, "invalid_command"),
        ("set_load_limit", {"kw": "-1"}, "negative_register"),
        ("set_load_limit", {"kw": "abc"}, "non_numeric_register"),
        ("set_supply_hours", {"windows": [["25:00", "23:00"]]}, "invalid_command_params"),
    ],
)
def test_bad_commands_are_refused(smart, command, params, code):
    with pytest.raises(DomainError) as err:
        services.send_command(meter=smart, command=command, params=params, actor=None, channel="system")
    assert err.value.code == code


def test_non_smart_meter_takes_no_commands(make_meter):
    with pytest.raises(DomainError) as err:
        services.send_command(meter=make_meter(), command="disconnect", actor=None, channel="system")
    assert err.value.code == "meter_not_smart"


@pytest.mark.parametrize("kw", ["0", "-1", "abc", "1e2", "NaN", "Infinity", "१", "1001", "", None])
def test_a_load_limiter_refuses_a_limit_that_is_not_a_plain_number_in_range(account, make_meter, kw):
    """A load limiter's kW goes through the boundary's number rule (no exponent, no non-ASCII digits,
    no NaN) and its range; a refusal queues nothing."""
    limiter = make_meter(meter_type="load_limiter")
    services.install_meter(
        account=account, meter=limiter, actor=None, channel="system", installed_at=timezone.now() - timedelta(days=3)
    )
    with pytest.raises(DomainError) as err:
        limiters.send_command(command="set_load_limit", meter=limiter, params={"kw": kw}, actor=None, channel="x")
    assert err.value.code == "invalid_command_params" and err.value.status == 400
    assert not MeterCommand.objects.filter(meter=limiter).exists()
    cmd = limiters.send_command(
        command="set_load_limit", meter=limiter, params={"kw": "2.50"}, actor=None, channel="system"
    )
    assert cmd.params == {"kw": "2.50"} and cmd.account == account
