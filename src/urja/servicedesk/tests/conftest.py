"""Service-desk fixtures: the OERC catalogue loaded, an account on a feeder/DT, staff."""

import pytest

from urja.demo import testing
from urja.servicedesk import catalogue, clock


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _reset_clock():
    clock.reset()
    yield
    clock.reset()


@pytest.fixture
def sop(db):
    schedule, _ = catalogue.load_file("servicedesk/oerc_sop.toml")
    return schedule


@pytest.fixture
def network(offices):
    from urja.network.models import DistributionTransformer, Feeder

    feeder = Feeder.objects.create(
        code=f"F{offices['section1'].pk}", name="Sahadevkhunta 11 kV", office=offices["section1"]
    )
    dt = DistributionTransformer.objects.create(code=f"DT{offices['section1'].pk}", feeder=feeder, capacity_kva=100)
    return {"feeder": feeder, "dt": dt}


@pytest.fixture
def sd_account(offices, network):
    return testing.domestic_account(offices["section1"], feeder=network["feeder"], transformer=network["dt"])


@pytest.fixture
def rural_account(offices, network):
    return testing.domestic_account(
        offices["section1"], name="Ramesh Sahu", mobile="9437000111", area="rural", feeder=network["feeder"]
    )


@pytest.fixture
def engineer(offices):
    return testing.staff_user("engineer", offices["section1"])


@pytest.fixture
def managers(offices):
    """A manager at each office level that holds an escalation tier."""
    return {
        level: testing.staff_user("manager", offices[key])
        for level, key in [
            ("subdivision", "subdivision1"),
            ("division", "division1"),
            ("circle", "circle"),
            ("utility", "utility"),
        ]
    }
