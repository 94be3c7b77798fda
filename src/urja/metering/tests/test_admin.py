import pytest
from django.urls import reverse

from urja.metering import admin as metering_admin  # noqa: F401  (registers the pages)
from urja.metering.models import Meter, MeterType


@pytest.mark.django_db
@pytest.mark.parametrize(
    "model",
    [
        "meter",
        "installation",
        "sheetentry",
        "metertest",
        "reading",
        "importbatch",
        "metercommand",
        "smartmeterevent",
        "deadletter",
        "readcycle",
    ],
)
def test_admin_pages_open_for_an_administrator(client, admin_user, model):
    Meter.objects.create(serial="SM00000001", make="Secure", meter_type=MeterType.SMART)
    client.force_login(admin_user)
    response = client.get(reverse(f"admin:metering_{model}_changelist"))
    assert response.status_code == 200


@pytest.mark.django_db
def test_meters_cannot_be_added_or_changed_in_the_admin(client, admin_user):
    meter = Meter.objects.create(serial="SM00000002", make="Secure", meter_type=MeterType.SMART)
    client.force_login(admin_user)
    assert client.get(reverse("admin:metering_meter_add")).status_code == 403
    response = client.post(reverse("admin:metering_meter_change", args=[meter.pk]), {"serial": "FORGED"})
    assert response.status_code == 403
    meter.refresh_from_db()
    assert meter.serial == "SM00000002"
