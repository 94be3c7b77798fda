"""The outreach demo hook: a few events in the CRE's division through the services; a rerun adds nothing."""

import random

import pytest

from urja.demo import testing
from urja.outreach import demo
from urja.outreach.models import EventIssue, EventRequest, OutreachEvent

pytestmark = pytest.mark.django_db


def test_demo_hook_makes_events_once(sop, offices, cre1):
    staff = {
        "cre": cre1,
        "engineer": testing.staff_user("engineer", offices["division1"]),
        "manager": testing.staff_user("manager", offices["circle"]),
    }
    accounts = [testing.domestic_account(offices["section1"], mobile="", name=f"Demo {i}") for i in range(4)]
    demo.populate(accounts=accounts, staff=staff, rng=random.Random(3))
    kinds = set(OutreachEvent.objects.values_list("kind", flat=True))
    assert kinds == {"rwa_meeting", "iwa_meeting", "nishta_camp", "anubhav_kendra", "customer_meet"}
    assert EventRequest.objects.count() == 3 and EventIssue.objects.filter(status="resolved").count() == 2
    assert set(OutreachEvent.objects.values_list("status", flat=True)) == {"held", "closed", "planned"}
    demo.populate(accounts=accounts, staff=staff, rng=random.Random(3))
    assert OutreachEvent.objects.count() == 5
