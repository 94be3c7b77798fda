"""Outages have a machine; request workflows' state names come from the catalogue (issue 11, part 4)."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings

from urja.core.errors import Conflict, DomainError
from urja.core.models import AuditEvent
from urja.servicedesk import catalogue, clock, services
from urja.servicedesk.models import OUTAGE_STATUS, Outage


def _moves(obj):
    events = AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk)).order_by("id")
    return [(e.action, e.changes.get("from"), e.changes.get("to")) for e in events if "to" in e.changes]


def test_outage_status_follows_its_machine_and_is_audited(sop, network, engineer):
    start = clock.now() + timedelta(days=1)
    outage = services.declare_outage(
        actor=engineer, channel="backoffice", kind="planned", reason="tree cutting", feeder=network["feeder"],
        starts_at=start, expected_restore_at=start + timedelta(hours=4),
    )  # fmt: skip
    # the activation sweep: set-based, its WHERE from the machine, one audit event per outage
    assert services.activate_planned_outages(now=start) == 1
    assert services.activate_planned_outages(now=start) == 0  # already active: nothing moves
    outage.refresh_from_db()
    assert outage.status == "active"
    assert _moves(outage) == [("servicedesk.outage_active", "announced", "active")]
    with pytest.raises(Conflict) as err:  # an outage that has begun is restored, not cancelled
        services.cancel_outage(actor=engineer, channel="backoffice", outage=outage, reason="x")
    assert err.value.code == "outage_not_announced"
    clock.advance(days=2)
    services.restore_outage(actor=engineer, channel="backoffice", outage=outage)
    assert _moves(outage)[-1] == ("servicedesk.outage_restored", "active", "restored")
    assert OUTAGE_STATUS.terminal == {"restored", "cancelled"}


def test_a_cancelled_outage_is_neither_restored_nor_activated(sop, network, engineer):
    start = clock.now() + timedelta(days=1)
    outage = services.declare_outage(
        actor=engineer, channel="backoffice", kind="planned", reason="maintenance", feeder=network["feeder"],
        starts_at=start,
    )  # fmt: skip
    services.cancel_outage(actor=engineer, channel="backoffice", outage=outage, reason="crew unavailable")
    assert _moves(outage)[-1] == ("servicedesk.outage_cancelled", "announced", "cancelled")
    assert services.activate_planned_outages(now=start + timedelta(hours=1)) == 0
    with pytest.raises(Conflict):
        services.restore_outage(actor=engineer, channel="backoffice", outage=outage, restored_at=start)
    assert Outage.objects.get(pk=outage.pk).status == "cancelled"


@pytest.fixture
def renamed_sop(db, tmp_path):
    """The OERC file with its closed / cancelled / on-hold / in-progress states renamed: the code
    must act on the catalogue's roles, not on the literal names."""
    text = (Path(settings.DATA_DIR) / "servicedesk/oerc_sop.toml").read_text(encoding="utf-8")
    head, sep, rest = text.partition("[workflows.standard]")
    body, sep2, tail = rest.partition("# --- escalation tiers")
    for old, new in [("closed", "resolved"), ("cancelled", "withdrawn"), ("on_hold", "waiting_for_consumer"),
                     ("in_progress", "working_on_it")]:  # fmt: skip
        body = re.sub(rf"\b{old}\b", new, body)
    # the [roles] keys are role names, not states: only their values change
    body = body.replace('\nresolved = "', '\nclosed = "').replace('\nwithdrawn = "', '\ncancelled = "')
    path = tmp_path / "renamed_sop.toml"
    path.write_text(head + sep + body + sep2 + tail, encoding="utf-8")
    schedule, _ = catalogue.load_file(path)
    return schedule


def test_request_workflow_state_names_come_from_the_catalogue(renamed_sop, sd_account, cre):
    states = catalogue.workflow_states(renamed_sop, "standard")
    assert (states.closed, states.cancelled, states.paused, states.working) == (
        "resolved", "withdrawn", ("waiting_for_consumer",), "working_on_it",
    )  # fmt: skip

    def register():
        return services.register_request(
            actor=cre, channel="call_centre", type_code="meter_faulty", subtype_code="meter_stuck", account=sd_account
        ).request

    sr = register()
    with pytest.raises(DomainError) as err:  # closing needs notes, whatever the closed state is called
        services.transition(actor=cre, channel="backoffice", request=sr, to_status="resolved")
    assert err.value.code == "use_close"
    services.pause_clock(actor=cre, channel="backoffice", request=sr, reason="consumer away")
    sr.refresh_from_db()
    assert sr.status == "waiting_for_consumer" and sr.due_at is None
    sr = services.resume_clock(actor=cre, channel="backoffice", request=sr)
    assert sr.status == "working_on_it" and sr.due_at is not None
    sr = services.close_request(actor=cre, channel="backoffice", request=sr, resolution_notes="meter replaced")
    assert sr.status == "resolved" and sr.closed_at is not None
    assert services.status_view(sr)["resolution"] == "meter replaced"
    assert sr.pk not in set(services.queue(user=cre).values_list("pk", flat=True))
    sr = services.reopen_request(actor=cre, channel="backoffice", request=sr, reason="stuck again")
    assert sr.status == "reopened" and sr.closed_at is None

    # withdrawing (the cancelled role) needs a reason and stops the clock
    nps = services.register_request(
        actor=cre, channel="call_centre", type_code="no_power_supply", subtype_code="no_power_supply",
        account=sd_account,
    ).request  # fmt: skip
    with pytest.raises(DomainError) as err:
        services.transition(actor=cre, channel="backoffice", request=nps, to_status="withdrawn")
    assert err.value.code == "reason_required"
    nps = services.transition(actor=cre, channel="backoffice", request=nps, to_status="withdrawn", note="duplicate")
    assert nps.status == "withdrawn" and nps.closed_at is not None
    assert services.clock_state(nps).status  # the clock is read as stopped at closed_at
