"""Bill documents: HTML in the consumer's language, printed to PDF by headless Chromium.

Chromium shapes Devanagari and Odia correctly (HarfBuzz) with Debian's fonts-lohit-deva and
fonts-lohit-orya (installed by .ci/run with chromium). The page carries every bill line, a
12-month consumption chart (inline SVG), the amount in words, a UPI payment QR (segno) and an
HMAC verification code.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse

from urja.core import regdata
from urja.core.errors import DomainError
from urja.core.labels import label as code_label
from urja.core.links import public_url
from urja.core.money import amount_in_words, format_inr
from urja.core.templatetags.urja_format import indian
from urja.tariffs import wording

from . import runs, services
from .models import Bill

LANGUAGES = ("en", "hi", "or")
LANGUAGE_NAMES = {"en": "English", "hi": "हिन्दी", "or": "ଓଡ଼ିଆ"}
HT_SUPPLY = ("ht", "eht")


def labels(language: str) -> dict:
    data = regdata.load("billing/bill_labels.toml")
    return {**data["en"], **data.get(language, {})}


def upi_uri(bill: Bill) -> str:
    doc = regdata.load("billing/billing.toml")["document"]
    amount = max(bill.net_payable, 0)
    return (
        f"upi://pay?pa={doc['upi_vpa']}&pn={doc['upi_payee'].replace(' ', '%20')}&am={amount:.2f}&cu=INR"
        f"&tn=Bill%20{bill.bill_number}&tr={bill.bill_number}"
    )


def qr_svg_data_uri(text: str) -> str:
    import segno

    return segno.make(text, error="m").svg_data_uri(scale=4, border=2)


def history_chart(bill: Bill, months: int = 12) -> dict:
    """Bars of the account's last `months` bills (up to this one) as SVG geometry."""
    bills = list(
        Bill.objects.filter(account_id=bill.account_id, period_start__lte=bill.period_start)
        .exclude(kind=Bill.Kind.FINAL)
        .order_by("-period_start")
        .values_list("period_start", "units")[:months]
    )[::-1]
    top = max((float(u) for _, u in bills), default=0) or 1.0
    width, height, gap = 360, 110, 4
    bar = (width - gap * max(len(bills), 1)) / max(len(bills), 1)
    bars = []
    for i, (start, units) in enumerate(bills):
        h = max(1.0, float(units) / top * (height - 30))
        bars.append(
            {
                "x": round(i * (bar + gap), 1),
                "y": round(height - 14 - h, 1),
                "w": round(bar, 1),
                "h": round(h, 1),
                "label": start.strftime("%m/%y"),
                "units": f"{units.normalize():f}" if units == units.to_integral_value() else f"{units:.0f}",
                "current": start == bill.period_start,
            }
        )
    return {"bars": bars, "width": width, "height": height}


def utility(language: str) -> dict:
    """The licensee at the head of the bill (data/billing/utility.toml), in `language` (English fallback)."""
    u = regdata.load("billing/utility.toml")["utility"]
    return {
        "name": u["name"].get(language) or u["name"]["en"],
        "name_en": u["name"]["en"],
        "address": u["address"].get(language) or u["address"]["en"],
        "gstin": u["gstin"],
        "cin": u.get("cin", ""),
        "website": u.get("website", ""),
    }


def _decimal(value) -> Decimal | None:
    try:
        return None if value in (None, "") else Decimal(str(value))
    except (ArithmeticError, ValueError):
        return None


def units_text(value: Decimal | None) -> str:
    """kWh with Indian grouping (core's `indian`, to 0.001) and no trailing zeros: 6000.000 → '6,000'."""
    if value is None:
        return "—"
    return indian(value, 3).rstrip("0").rstrip(".")


def meter_facts(bill: Bill) -> dict:
    """Meter number and MF, the dates of the opening and closing readings, and (where the meter
    records them) the power factor of the period and the time-of-day split, from metering's records."""
    from datetime import datetime, time, timedelta

    from urja.core.calendars import IST
    from urja.metering.models import Installation, Reading

    end = datetime.combine(bill.period_end + timedelta(days=1), time(0), tzinfo=IST)
    inst = (
        Installation.objects.filter(account_id=bill.account_id, installed_at__lt=end)
        .select_related("meter")
        .order_by("-installed_at")
        .first()
    )
    facts: dict = {"serial": "", "mf": None, "opening": None, "closing": None, "pf": None, "tod": []}
    if inst is None:
        return facts
    facts.update(serial=inst.meter.serial, mf=inst.meter.multiplying_factor)
    readings = Reading.objects.filter(account_id=bill.account_id, read_at__lt=end, kwh__isnull=False).order_by(
        "-read_at"
    )
    closing = readings.filter(kwh=bill.closing_kwh).first() if bill.closing_kwh is not None else None
    start = datetime.combine(bill.period_start, time(0), tzinfo=IST)
    opening = None
    if bill.opening_kwh is not None:
        opening = readings.filter(kwh=bill.opening_kwh, read_at__lt=start + timedelta(days=1)).first()
    facts["opening"], facts["closing"] = opening, closing
    if opening and closing:
        kvah = (_decimal(closing.kvah), _decimal(opening.kvah))
        kwh = (closing.kwh or 0) - (opening.kwh or 0)
        if None not in kvah and kvah[0] - kvah[1] > 0 and kwh >= 0:
            facts["pf"] = (kwh / (kvah[0] - kvah[1])).quantize(Decimal("0.001"))
        zones = sorted(set(closing.tod or {}) & set(opening.tod or {}))
        mf = facts["mf"] or 1
        for zone in zones:
            a, b = _decimal(closing.tod[zone]), _decimal(opening.tod[zone])
            if a is not None and b is not None:
                facts["tod"].append({"zone": zone, "units": ((a - b) * mf).quantize(Decimal("0.001"))})
    # The units the bill charged for a ToD window are the ones it stored (a reading revised after the run
    # must not make the table disagree with the lines); zones the tariff has no window for (normal hours)
    # come from the registers.
    billed = {runs.tod_zone(code): _decimal(v) for code, v in (bill.tod_units or {}).items()}
    rows = [{**row, "units": billed.pop(row["zone"], row["units"])} for row in facts["tod"]]
    facts["tod"] = rows + [{"zone": zone, "units": units} for zone, units in sorted(billed.items())]
    return facts


def context(bill: Bill, language: str | None = None) -> dict:
    language = language if language in LANGUAGES else (bill.language or "en")
    computation = services.bill_lines(bill)
    account = bill.account
    meter = meter_facts(bill)
    ht = account.supply_type in HT_SUPPLY
    md_share = None
    if ht and bill.recorded_md is not None and bill.sanctioned_load:
        md_share = (bill.recorded_md * 100 / bill.sanctioned_load).quantize(Decimal("0.1"))
    duty = sum((ln.amount for ln in computation.lines if ln.code == "ED"), Decimal(0))
    # A meter's ToD zone ("peak") is named by the tariff's window for it (TOD_PEAK) with its hours (data: the
    # order file), and the zones listed in the order file's order.
    windows, order = {}, {}
    for seg in computation.segments:
        for w in seg.schedule.tod:
            zone = runs.tod_zone(w.code)
            windows[zone] = w
            order.setdefault(zone, len(order))
    tod = []
    for row in meter["tod"]:
        w = windows.get(row["zone"])
        name = (
            f"{wording.translate(w.name, language)} ({w.start:%H:%M}–{w.end:%H:%M})" if w else code_label(row["zone"])
        )
        tod.append({**row, "name": name, "units_text": units_text(row["units"])})
    tod.sort(key=lambda t: order.get(t["zone"], len(order)))  # zones the tariff does not name: last
    return {
        "utility": utility(language),
        "meter": meter,
        "ht": ht,
        "md_share": md_share,
        "duty": duty,
        "levies_duty": any(ln.code == "ED" for ln in computation.lines),
        "tod": tod,
        # kWh and kW/kVA figures with Indian grouping, no trailing zeros (30,000; 40,000; 57.4)
        "figures": {
            name: units_text(getattr(bill, name))
            for name in ("units", "opening_kwh", "closing_kwh", "recorded_md", "sanctioned_load")
        },
        "E": labels("en"),
        "other_languages": [
            {
                "code": code,
                "name": LANGUAGE_NAMES[code],
                "url": public_url(reverse("billing:bill_html", args=[bill.bill_number]) + f"?lang={code}"),
                "pdf": public_url(reverse("billing:bill_pdf", args=[bill.bill_number]) + f"?lang={code}"),
            }
            for code in LANGUAGES
            if code != language
        ],
        "bill": bill,
        "account": account,
        "consumer": account.consumer,
        "lines": wording.printed_lines(computation.lines, language),
        "segments": computation.segments,
        "tariff_names": [
            f"{wording.translate(s.schedule.name, language)} ({s.schedule.order_code})" for s in computation.segments
        ],
        "units_status": wording.translate(bill.units_status, language),
        "category": "{} / {} ({})".format(
            *(wording.translate(code, language) for code in (account.category, account.sub_category, account.area))
        ),
        "lang": language,
        "L": labels(language),
        "current": bill.current_charges,
        "words": amount_in_words(max(bill.net_payable, 0), language),
        "net_payable": format_inr(bill.net_payable),
        "qr": qr_svg_data_uri(upi_uri(bill)),
        "verification": services.verification_code(bill),
        "verify_url": public_url(reverse("billing:verify") + f"?bill={bill.bill_number}"),
        "chart": history_chart(bill),
        "payable_by_due": bill.total + bill.rebate_by_due_date + bill.arrears,
    }


def render_html(bill: Bill, language: str | None = None) -> str:
    return render_to_string("billing/bill_document.html", context(bill, language))


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise DomainError(
        "bill PDFs need Chromium (apt-get install chromium fonts-lohit-deva fonts-lohit-orya)",
        code="pdf_unavailable",
        status=503,
    )


def render_pdf(bill: Bill, language: str | None = None) -> bytes:
    """The bill as PDF (A4), cached under MEDIA_ROOT/bills/. The cache key is the page itself (its
    hash): the HTML is cheap, Chromium is not, and a change of wording or layout is never served stale."""
    language = language if language in LANGUAGES else (bill.language or "en")
    html = render_html(bill, language)
    digest = hashlib.sha256(html.encode()).hexdigest()[:16]
    cache = Path(settings.MEDIA_ROOT) / "bills" / f"{bill.bill_number}-{language}-{digest}.pdf"
    if cache.exists():
        return cache.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "bill.html", Path(tmp) / "bill.pdf"
        src.write_text(html, encoding="utf-8")
        cmd = [
            chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-pdf-header-footer", f"--user-data-dir={tmp}/profile", f"--print-to-pdf={out}", src.as_uri(),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        if not out.exists():
            raise DomainError(
                f"PDF rendering failed: {proc.stderr.decode(errors='replace')[-300:]}", code="pdf_failed", status=500
            )
        data = out.read_bytes()
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(data)
    return data
