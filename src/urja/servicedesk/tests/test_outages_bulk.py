"""Outages declared in bulk (the outage detector's pass): the same rules and effects as declare_outage,
one query per step; bad input changes nothing."""

import pytest
from django.utils import timezone

from urja.core.errors import DomainError
from urja.core.models import AuditEvent
from urja.demo import testing
from urja.network.models import DistributionTransformer, Feeder
from urja.servicedesk import services
from urja.servicedesk.models import Outage
from urja.servicedesk.services.outages import NewOutage, declare_outages


def test_many_outages_declared_at_once_with_audit_and_waiting_complaints_linked(sop, offices, network, cre):
    sec = offices["section1"]
    on_dt = testing.domestic_account(sec, feeder=network["feeder"], transformer=network["dt"])
    other = Feeder.objects.create(code="FB2", name="Balasore 11 kV", office=sec)
    dt2 = DistributionTransformer.objects.create(code="DTB2", feeder=other, capacity_kva=63)
    on_other = [testing.domestic_account(sec, name=f"B {i}", mobile=f"943700{i:04d}", feeder=other, transformer=dt2)
                for i in range(2)]  # fmt: skip
    waiting = services.register_request(actor=cre, channel="call_centre", type_code="no_power_supply",
                                        subtype_code="no_power_supply", account=on_other[1]).request  # fmt: skip
    start = timezone.now()
    made = declare_outages(
        actor=None,
        channel="system",
        outages=[
            NewOutage(transformer_id=network["dt"].pk, starts_at=start, reason="Detected: 3 meters"),
            NewOutage(feeder_id=other.pk, starts_at=start, reason="  Detected: 2 DTs  "),
        ],
    )
    assert [(o.feeder_id, o.transformer_id, o.affected_accounts) for o in made] == [
        (network["feeder"].pk, network["dt"].pk, 1),
        (other.pk, None, 2),
    ]
    assert all(o.status == "active" and o.kind == "unplanned" and o.office_id == sec.pk for o in made)
    assert len({o.number for o in made}) == 2 and made[1].reason == "Detected: 2 DTs"
    assert AuditEvent.objects.filter(action="servicedesk.outage", object_id__in=[str(o.pk) for o in made]).count() == 2
    waiting.refresh_from_db()
    assert waiting.outage_id == made[1].pk and waiting.status == "linked_to_outage"
    assert on_dt.pk  # the DT's consumer is counted, not told here (the caller tells all areas at once)


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (NewOutage(starts_at=timezone.now(), reason="x"), "outage_location_required"),
        (NewOutage(feeder_id=1, starts_at=timezone.now(), reason="  "), "reason_required"),
        (NewOutage(transformer_id=987654, starts_at=timezone.now(), reason="x"), "outage_location_unknown"),
    ],
)
def test_bad_input_declares_none_of_them(sop, network, bad, code):
    good = NewOutage(transformer_id=network["dt"].pk, starts_at=timezone.now(), reason="Detected")
    with pytest.raises(DomainError) as err:
        declare_outages(actor=None, channel="system", outages=[good, bad])
    assert err.value.code == code
    assert not Outage.objects.exists() and not AuditEvent.objects.filter(action="servicedesk.outage").exists()
