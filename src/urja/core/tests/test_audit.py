import pytest

from urja.core.models import AuditEvent
from urja.core.services import record_audit


@pytest.mark.django_db
def test_audit_records_who_what_channel_and_is_append_only(account, cre):
    event = record_audit(
        actor=cre, channel="care_centre", action="test.changed", obj=account, changes={"from": "a", "to": "b"}
    )
    assert event.actor_label == cre.username
    assert event.object_type == "customers.account" and event.object_id == str(account.pk)
    event.action = "tampered"
    with pytest.raises(ValueError):
        event.save()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.changed"


@pytest.mark.django_db
def test_unknown_channel_is_refused(account):
    with pytest.raises(ValueError):
        record_audit(actor=None, channel="pigeon", action="x", obj=account)
