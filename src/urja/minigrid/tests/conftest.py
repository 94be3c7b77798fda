from decimal import Decimal

import pytest

from urja.demo.testing import staff_user
from urja.minigrid import services
from urja.network.models import MiniGridSite


@pytest.fixture
def site(offices):
    return MiniGridSite.objects.create(
        code="MG01",
        name="Kaptipada solar mini-grid",
        office=offices["section1"],
        village="Kaptipada",
        district="Mayurbhanj",
        capacity_kw=Decimal("30"),
        operator="Test operator",
    )


@pytest.fixture
def operator(site):
    return staff_user("mgoperator", site.office)


@pytest.fixture
def mgagent(site):
    return staff_user("field_agent", site.office)


@pytest.fixture
def customer(site, operator):
    return services.add_customer(
        actor=operator,
        channel="backoffice",
        site=site,
        name="Basanti Hembram",
        mobile="9437055555",
        address="Kaptipada",
        package_code="MG-SOLAR-50W",
    )
