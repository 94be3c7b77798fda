"""Outreach fixtures: the service desk's catalogue (for requests on the spot), staff, an event."""

from datetime import timedelta

import pytest
from django.utils import timezone

from urja.demo import testing
from urja.outreach import services


@pytest.fixture
def sop(db):
    from urja.servicedesk import catalogue

    schedule, _ = catalogue.load_file("servicedesk/oerc_sop.toml")
    return schedule


@pytest.fixture
def cre1(offices):
    return testing.staff_user("cre", offices["division1"])


@pytest.fixture
def engineer1(offices):
    return testing.staff_user("engineer", offices["section1"])


@pytest.fixture
def cre2(offices):
    return testing.staff_user("cre", offices["division2"])


@pytest.fixture
def camp(cre1, offices):
    """A Nishta camp of section 1 held yesterday."""
    return services.plan_event(
        actor=cre1,
        channel="backoffice",
        kind="nishta_camp",
        office=offices["section1"],
        held_on=timezone.localdate() - timedelta(days=1),
        venue="Panchayat office, Sahadevkhunta",
        partner="Sahadevkhunta GP",
    )
