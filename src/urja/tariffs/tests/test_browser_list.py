"""Issue 15 part 5: the tariff browser (/tariffs/) pages its schedules 50 at a time, filters by category,
a schedule / order / package word and in-force-from dates, and downloads the filtered list as CSV / Excel."""

import csv
import io

import pytest

from urja.tariffs import services
from urja.tariffs.models import TariffVersion

URL = "/tariffs/"


@pytest.fixture
def tariffs(db):
    services.load_all()


def _csv(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_filters_and_pager(client, tariffs):
    page = client.get(URL).content.decode()
    total = TariffVersion.objects.count()
    assert f"{total} rows" in page and "format=csv" in page and 'name="category"' in page
    irrigation = client.get(URL, {"category": "irrigation"}).content.decode()
    assert "oerc.lt.domestic" not in irrigation and "oerc.lt.irrigation" in irrigation
    assert f"{TariffVersion.objects.filter(category='irrigation').count()} rows" in irrigation
    delhi = client.get(URL, {"q": "derc"}).content.decode()
    assert "derc.domestic" in delhi and "oerc.lt.domestic" not in delhi
    # in force from 1 April 2025 on: FY 2025-26's schedules, not FY 2024-25's
    fy26 = set(TariffVersion.objects.filter(effective_from__gte="2025-04-01").values_list("pk", flat=True))
    later = client.get(URL, {"from": "2025-04-01"}).content.decode()
    assert f"{len(fy26)} rows" in later
    assert 'data-order="oerc-rst-2024-25"' not in later and 'data-order="oerc-rst-2025-26"' in later
    nothing = client.get(URL, {"q": "no such schedule"}).content.decode()
    assert "No tariff schedule matches." in nothing


def test_export_is_the_filtered_list(client, tariffs):
    rows = _csv(client.get(URL, {"category": "domestic", "format": "csv"}))
    assert rows[0][:5] == ["Order", "Regulator", "Order reference", "Order date", "Schedule code"]
    assert len(rows) - 1 == TariffVersion.objects.filter(category="domestic").count()
    assert {r[6] for r in rows[1:]} == {"domestic"}
    domestic = next(r for r in rows[1:] if r[0] == "oerc-rst-2025-26" and r[4] == "oerc.lt.domestic")
    assert domestic[11] == "01-04-2025" and domestic[12] == ""  # in force until replaced
    assert domestic[13]  # the values still to confirm against the gazette copy are named
    xlsx = client.get(URL, {"format": "xlsx"})
    assert xlsx.status_code == 200 and b"".join(xlsx.streaming_content)[:2] == b"PK"
    assert 'filename="tariffs-all.xlsx"' in xlsx["Content-Disposition"]
