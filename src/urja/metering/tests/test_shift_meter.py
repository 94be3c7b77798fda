"""One `shift_meter` for the meter pages, the API and connections' change requests: the meter and its
installation stay, the location (and geo point) change, and the sheet keeps where it was."""

import pytest

from urja.core.errors import DomainError
from urja.metering import services
from urja.metering.models import Installation, SheetEntry

from .conftest import days_ago


@pytest.fixture
def installed(account, make_meter):
    meter = make_meter("SHM00001")
    services.install_meter(account=account, meter=meter, actor=None, channel="system", installed_at=days_ago(30))
    return meter


def _shifts(meter):
    return list(SheetEntry.objects.filter(meter=meter, kind="shift").order_by("id").values_list("details", flat=True))


@pytest.mark.django_db
def test_the_earlier_geo_point_is_the_last_one_recorded_not_the_last_shift(account, installed, engineer):
    services.shift_meter(account=account, location="east wall", latitude="21.4946", longitude="86.9333",
                         reference="CR-1", actor=engineer, channel="field_agent")  # fmt: skip
    services.shift_meter(account=account, location="verandah", actor=engineer, channel="field_agent")
    services.shift_meter(account=account, location="  gate   pillar ", latitude="21.5", longitude="86.9",
                         actor=engineer, channel="field_agent")  # fmt: skip
    first, second, third = _shifts(installed)
    assert first["from_geo"] is None and first["reference"] == "CR-1"
    # a shift without a point (the meter page) leaves the point recorded before it as the earlier one
    assert second["from_geo"] == {"latitude": "21.4946", "longitude": "86.9333"} and "latitude" not in second
    assert third["from_geo"] == {"latitude": "21.4946", "longitude": "86.9333"}
    assert third["from"] == "verandah" and third["to"] == "gate pillar"
    inst = Installation.objects.get(meter=installed, removed_at__isnull=True)
    assert inst.location == "gate pillar" and inst.account_id == account.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"location": "   "}, "location_required"),
        ({"location": "x" * 500}, "location_too_long"),
        ({"location": "east wall", "latitude": "21.49"}, "invalid_geo_point"),
        ({"location": "east wall", "latitude": "91", "longitude": "86"}, "invalid_geo_point"),
    ],
)
def test_a_refused_shift_changes_nothing(account, installed, engineer, kwargs, code):
    with pytest.raises(DomainError) as err:
        services.shift_meter(account=account, actor=engineer, channel="field_agent", **kwargs)
    assert err.value.code == code
    assert _shifts(installed) == []
    assert Installation.objects.get(meter=installed, removed_at__isnull=True).location == ""
