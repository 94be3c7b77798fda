"""Bill lines in Hindi and Odia: names, patterns, the bare computation, English fallback."""

from decimal import Decimal as D

from urja.billing import documents
from urja.tariffs import wording
from urja.tariffs.engine import Line

from .test_documents_and_views import billed  # noqa: F401 (fixture)


def line(description, *, base=None, base_unit="", rate=None, rate_unit="", explanation="", group="energy"):
    return Line("X", description, group, base, base_unit, rate, rate_unit, D("1.00"), explanation)


def test_names_and_patterns():
    assert wording.translate("Monthly fixed charge", "hi") == "मासिक स्थायी शुल्क"
    assert wording.translate("Energy charge, slab 50–200 kWh", "or") == "ଶକ୍ତି ଶୁଳ୍କ, ସ୍ଲାବ୍ 50–200 kWh"
    assert wording.translate("Energy charge, slab above 400 kWh", "hi") == "ऊर्जा शुल्क, 400 kWh से ऊपर का स्लैब"
    # a pattern's placeholder is itself looked up as a name
    assert (
        wording.translate("Digital payment rebate (if paid in full digitally)", "hi")
        == "डिजिटल भुगतान छूट (पूरा भुगतान डिजिटल रूप से करने पर)"
    )
    # unknown wording stays English rather than breaking the bill; English is never translated
    assert wording.translate("Some new levy", "or") == "Some new levy"
    assert wording.translate("Monthly fixed charge", "en") == "Monthly fixed charge"


def test_computation_without_prose():
    slab = line("Energy charge, slab 50–200 kWh", base=D("57.400"), base_unit="kWh", rate=D("4.70"), rate_unit="Rs/kWh")
    assert wording.computation(slab, "hi") == "57.400 kWh × ₹4.70/kWh"
    fixed = line("Monthly fixed charge", base=D(2), base_unit="kW", rate=D(20), rate_unit="Rs/kW/month")
    assert wording.computation(fixed, "or") == "2 kW × ₹20/kW/ମାସ"
    rebate = line("Digital payment rebate", base=D("454.78"), rate=D(4), rate_unit="% digital")
    assert wording.computation(rebate, "hi") == "4% × ₹454.78"
    rent = line("Smart meter rent", rate=D(60), rate_unit="Rs/month", explanation="waived: load 2 kW is not above 2 kW")
    assert wording.computation(rent, "hi") == "माफ़"
    assert wording.computation(line("E-bill rebate", rate=D(10), rate_unit="Rs/bill"), "or") == "₹10/ବିଲ୍"


def test_hindi_bill_has_no_english_line_names(billed):  # noqa: F811
    html = documents.render_html(billed, "hi")
    assert "Energy charge" not in html and "ऊर्जा शुल्क" in html
    assert "एक हज़ार एक सौ पचहत्तर रुपये मात्र" in html and "Rupees" not in html  # ₹1,175.00 in words
    assert "एलटी घरेलू" in html  # the tariff's name
    assert "घरेलू / सामान्य (शहरी)" in html or "घरेलू / सामान्य (ग्रामीण)" in html  # category / sub-category (area)
    assert "Energy charge" in documents.render_html(billed, "en")
