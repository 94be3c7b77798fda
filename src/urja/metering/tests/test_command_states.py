"""Meter commands follow COMMAND_STATUS on every path (issue 11, "one way to change state")."""

from datetime import timedelta

import pytest
from django.utils import timezone

from urja.core.errors import Conflict, TransitionNotAllowed
from urja.core.models import AuditEvent
from urja.metering import services
from urja.metering.models import COMMAND_STATUS, CommandStatus, MeterCommand


def _trail(cmd):
    events = AuditEvent.objects.filter(object_type="metering.metercommand", object_id=str(cmd.pk)).order_by("id")
    return [(e.changes.get("from"), e.changes.get("to")) for e in events if "to" in e.changes]


def test_the_timeout_sweep_goes_through_timed_out_never_sent_to_queued(smart):
    # the defect: a timed-out command with attempts left was written sent → queued, a move its
    # own machine does not allow
    assert not COMMAND_STATUS.can(CommandStatus.SENT, CommandStatus.QUEUED)
    cmd = services.send_command(meter=smart, command="time_sync", actor=None, channel="system", max_attempts=2)
    services.claim_commands()
    later = timezone.now() + timedelta(seconds=cmd.timeout_seconds + 1)
    assert services.sweep_command_timeouts(now=later) == {"timed_out": 0, "retried": 1}
    cmd.refresh_from_db()
    assert cmd.status == CommandStatus.QUEUED and cmd.finished_at is None
    assert _trail(cmd) == [("queued", "sent"), ("sent", "timed_out"), ("timed_out", "queued")]
    for before, after in _trail(cmd):
        assert COMMAND_STATUS.can(before, after)


def test_a_late_ack_while_the_retry_waits_is_a_checked_audited_transition(smart):
    # the defect: record_ack moved queued → sent by hand, unchecked and unaudited
    cmd = services.send_command(meter=smart, command="disconnect", actor=None, channel="system", max_attempts=3)
    services.claim_commands()
    services.sweep_command_timeouts(now=timezone.now() + timedelta(seconds=cmd.timeout_seconds + 1))
    services.record_ack(serial=smart.serial, command_id=cmd.command_id, ok=True)
    cmd.refresh_from_db()
    assert cmd.status == CommandStatus.ACKNOWLEDGED
    assert _trail(cmd)[-1] == ("queued", "acknowledged")
    assert ("queued", "sent") not in _trail(cmd)[1:]  # only the real claim went to sent


def test_an_ack_for_a_command_never_sent_is_refused(smart):
    cmd = services.send_command(meter=smart, command="disconnect", actor=None, channel="system")
    with pytest.raises(Conflict) as err:
        services.record_ack(serial=smart.serial, command_id=cmd.command_id, ok=True)
    assert err.value.code == "command_not_sent"
    assert MeterCommand.objects.get(pk=cmd.pk).status == CommandStatus.QUEUED


def test_a_late_nack_after_the_last_timeout_marks_the_command_failed(smart):
    cmd = services.send_command(meter=smart, command="disconnect", actor=None, channel="system", max_attempts=1)
    services.claim_commands()
    services.sweep_command_timeouts(now=timezone.now() + timedelta(seconds=cmd.timeout_seconds + 1))
    services.record_ack(serial=smart.serial, command_id=cmd.command_id, ok=False, reason="relay stuck")
    cmd.refresh_from_db()
    assert cmd.status == CommandStatus.FAILED
    assert _trail(cmd)[-1] == ("timed_out", "failed")


def test_officer_retry_of_a_failed_command_and_refusal_from_acknowledged(smart):
    cmd = services.send_command(meter=smart, command="disconnect", actor=None, channel="system", max_attempts=1)
    services.claim_commands()
    services.record_ack(serial=smart.serial, command_id=cmd.command_id, ok=False, reason="busy")
    services.retry_command(command=cmd, actor=None, channel="backoffice")
    cmd.refresh_from_db()
    assert cmd.status == CommandStatus.QUEUED and cmd.max_attempts == 2
    [(_, payload)] = services.claim_commands()
    assert payload["attempt"] == 2
    services.record_ack(serial=smart.serial, command_id=cmd.command_id, ok=True)
    with pytest.raises(TransitionNotAllowed):
        services.retry_command(command=cmd, actor=None, channel="backoffice")
    assert MeterCommand.objects.get(pk=cmd.pk).status == CommandStatus.ACKNOWLEDGED
