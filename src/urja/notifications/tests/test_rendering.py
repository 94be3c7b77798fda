import datetime as dt
import shutil
import unicodedata
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from urja.core import regdata
from urja.core.errors import DomainError
from urja.notifications import rendering
from urja.notifications.channels import needs_unicode

IST = ZoneInfo("Asia/Kolkata")
START = dt.datetime(2025, 7, 10, 10, 0, tzinfo=IST)

# A full context for every shipped event (values a caller would pass).
CONTEXT = {
    "meter": "GN1234567",
    "test_on": "08-12-2026",
    "consumer_name": "Sunita Behera",
    "consumer_number": "OD1234567890",
    "otp": "482913",
    "minutes": 10,
    "request_number": "SR-2025-000123",
    "request_label": "Meter not working",
    "due_at": dt.datetime(2025, 7, 12, 17, 30, tzinfo=IST),
    "escalated_to": "SDO Balasore",
    "resolution": "Meter replaced.",
    "area": "Balasore Town",
    "start": START,
    "end": START + dt.timedelta(hours=4),
    "reason": "line maintenance",
    "restored_at": START + dt.timedelta(hours=3),
    "bill_number": "B25070001",
    "amount": Decimal("123456.5"),
    "units": 245,
    "due_date": dt.date(2025, 7, 25),
    "paid_at": START,
    "balance": Decimal("48.20"),
    "days_left": 2,
    "disconnect_date": dt.date(2025, 8, 1),
    "recorded_demand": "6.4",
    "sanctioned_load": "5",
    "unit": "kW",
    # realistic worst cases: a receipt number from receipts.toml, a verification code, an OpenPAYGO token
    "receipt_number": "1101CC25000004217",
    "verification_code": "K7QXM-3PZ2A",
    "token": "123456789012345",
    # connections: a worst-case application and demand-note number (NC + yy + 7 digits + check digit)
    "application_number": "NC2600001234",
    "demand_note": "DN2600001234",
    "outcome": "approved",
    "effective_on": dt.date(2025, 8, 1),
    "action": "disconnected",
    "at": START,
    "feedback_url": "https://care.example.in/servicedesk/feedback/eyJyIjoxMjM0NTY3LCJjIjowfQ:1xVeSf:2-Xblmu36ALIsTw/",
    "units_late": 3,
    "per": "day",
    "when": START + dt.timedelta(days=5, hours=1),
    "venue": "Office of the SDO, Balasore Town",
    "outage": "OUT250000127",
    "text": "B00325070000001: Rs 1,175.00 due 09-07-2025.",  # a bot reply (channel.reply)
}

BOT_REPLY = {
    "en": "Complaint SR26000000010 registered for 003000000012. To be resolved by 06-12-2026 11:00.",
    "hi": "003000000012 के लिए शिकायत SR26000000010 दर्ज की गई। समाधान 06-12-2026 11:00 तक।",
    "or": "003000000012 ପାଇଁ ଅଭିଯୋଗ SR26000000010 ପଞ୍ଜୀକୃତ ହେଲା। 06-12-2026 11:00 ସୁଦ୍ଧା ସମାଧାନ।",
}

REQUIRED_EVENTS = [
    "meter.test_notice",
    "account.opened",
    "connection.registered",
    "connection.demand_note",
    "connection.rejected",
    "connection.request_decided",
    "connection.supply_changed",
    "outage.detected",
    "outage.compensation_credited",
    "contact.verify_otp",
    "request.registered",
    "request.escalated",
    "request.closed",
    "outage.planned",
    "outage.restored",
    "bill.issued",
    "payment.received",
    "prepaid.low_balance",
    "prepaid.disconnected",
    "disconnection.notice",
    "reading.md_exceeded",
    "request.compensation_credited",
    "request.hearing_scheduled",
    "outage.cancelled",
    "channel.reply",
]


def _scripts(text: str) -> set[str]:
    return {unicodedata.name(ch).split()[0] for ch in text if ch.isalpha()}


def test_templates_file_is_valid_and_complete():
    assert rendering.validate() == []
    events = rendering.events()
    for event in REQUIRED_EVENTS:
        assert set(events[event]) >= {"en", "hi", "or"}, event


@pytest.mark.parametrize("event", REQUIRED_EVENTS)
def test_every_event_renders_in_three_languages_and_channels(event, settings):
    settings.URJA_UTILITY_NAME = "TPNODL"
    for language in ("en", "hi", "or"):
        # channel.reply carries text the bot composed in the consumer's language (data/channels/bot.toml)
        context = {**CONTEXT, "text": BOT_REPLY[language]} if event == "channel.reply" else CONTEXT
        for channel in rendering.CHANNELS:
            out = rendering.render(event=event, channel=channel, language=language, context=context)
            assert out.language == language and not out.fell_back
            assert "{{" not in out.body and "{%" not in out.body and out.body
            if channel == "email":
                assert out.subject and "\n" not in out.subject
            if language == "hi":
                assert "DEVANAGARI" in _scripts(out.body)
                assert "ORIYA" not in _scripts(out.body)
            if language == "or":
                assert "ORIYA" in _scripts(out.body)
                assert "DEVANAGARI" not in _scripts(out.body)
            if language == "en":
                assert _scripts(out.body) <= {"LATIN"}
        sms = rendering.render(event=event, channel="sms", language=language, context=context).body
        # short enough for SMS: one 160-character GSM part in English, at most 3 Unicode parts (3 x 67) otherwise
        if language == "en":
            assert not needs_unicode(sms), sms
            assert len(sms) <= 160, (event, len(sms))
        else:
            assert len(sms) <= 201, (event, language, len(sms))


def test_values_are_formatted_the_indian_way():
    out = rendering.render(event="bill.issued", channel="sms", language="en", context=CONTEXT)
    assert "Rs.1,23,456.50" in out.body and "25-07-2025" in out.body and "245 units" in out.body
    hi = rendering.render(event="bill.issued", channel="sms", language="hi", context=CONTEXT)
    assert "₹1,23,456.50" in hi.body and "उपभोक्ता संख्या OD1234567890" in hi.body
    odia = rendering.render(event="outage.planned", channel="sms", language="or", context=CONTEXT)
    # same-day end shows only the time; datetimes are shown in IST
    assert "10-07-2025 10:00 ରୁ 14:00 ପର୍ଯ୍ୟନ୍ତ" in odia.body
    utc = {**CONTEXT, "start": dt.datetime(2025, 7, 10, 4, 30, tzinfo=dt.UTC)}
    utc["end"] = utc["start"] + dt.timedelta(days=1)
    en = rendering.render(event="outage.planned", channel="sms", language="en", context=utc).body
    assert "from 10-07-2025 10:00 to 11-07-2025 10:00" in en


def test_optional_parts_disappear_and_no_autoescape():
    context = {**CONTEXT, "request_label": "", "area": "Old Town & Market <East>"}
    out = rendering.render(event="request.registered", channel="sms", language="en", context=context)
    assert "()" not in out.body and "SR-2025-000123 is registered" in out.body
    out = rendering.render(event="outage.restored", channel="sms", language="en", context=context)
    assert "Old Town & Market <East>" in out.body  # SMS is plain text: nothing escaped


def test_email_uses_layout_and_whatsapp_its_own_text():
    email = rendering.render(event="payment.received", channel="email", language="hi", context=CONTEXT)
    assert email.body.startswith("प्रिय Sunita Behera,") and "रसीद 1101CC25000004217" in email.body
    assert email.subject == "भुगतान प्राप्त: ₹1,23,456.50 (रसीद 1101CC25000004217)"
    wa = rendering.render(event="bill.issued", channel="whatsapp", language="or", context=CONTEXT)
    assert "*₹1,23,456.50*" in wa.body and "\n" in wa.body
    # events without a whatsapp text send the SMS text
    wa = rendering.render(event="prepaid.disconnected", channel="whatsapp", language="en", context=CONTEXT)
    assert wa.body == rendering.render(event="prepaid.disconnected", channel="sms", language="en", context=CONTEXT).body


def test_unknown_event_channel_and_missing_context():
    with pytest.raises(DomainError) as err:
        rendering.render(event="bill.lost", channel="sms", language="en", context=CONTEXT)
    assert err.value.code == "unknown_event" and "bill.issued" in err.value.details["known"]
    with pytest.raises(DomainError) as err:
        rendering.render(event="bill.issued", channel="fax", language="en", context=CONTEXT)
    assert err.value.code == "unknown_channel"
    with pytest.raises(DomainError) as err:
        rendering.render(event="bill.issued", channel="sms", language="en", context={"amount": 0})
    assert err.value.code == "missing_context"
    assert err.value.details["missing"] == ["consumer_number", "bill_number", "due_date"]


@pytest.fixture
def data_dir(settings, tmp_path):
    """A private copy of data/ whose templates we may edit."""
    target = tmp_path / "data"
    shutil.copytree(settings.DATA_DIR, target)
    settings.DATA_DIR = target
    regdata.clear_cache()
    yield target
    regdata.clear_cache()


def test_missing_language_falls_back_to_english_and_logs(data_dir, caplog):
    path = data_dir / "notifications" / "templates.toml"
    text = path.read_text(encoding="utf-8")
    start = text.index('[events."bill.issued".or]')
    end = text.index("# ----", start)
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    regdata.clear_cache()
    assert "or" not in rendering.events()["bill.issued"]
    with caplog.at_level("WARNING", logger="urja.notifications.rendering"):
        out = rendering.render(event="bill.issued", channel="sms", language="or", context=CONTEXT)
    assert out.fell_back and out.language == "en" and out.body.startswith("Bill B25070001")
    assert "falling back to English" in caplog.text
    # other events are still in Odia
    assert not rendering.render(event="payment.received", channel="sms", language="or", context=CONTEXT).fell_back
    # an unknown language code falls back too
    assert rendering.render(event="bill.issued", channel="sms", language="ta", context=CONTEXT).language == "en"


def test_validate_reports_broken_documents():
    doc = {
        "events": {
            "x.y": {"hi": {"sms": "{% if %}", "email_subject": "s"}, "channels": ["pager"]},
        }
    }
    problems = rendering.validate(doc)
    assert "missing [source]" in problems
    assert "x.y: no English (en) texts" in problems
    assert "x.y: unknown channel 'pager'" in problems
    assert any(p.startswith("x.y.hi.sms:") for p in problems)


def _sms(event, language="en", **context):
    return rendering.render(event=event, channel="sms", language=language, context={**CONTEXT, **context}).body


def test_every_event_the_code_sends_has_a_template_in_three_languages():
    """grep the apps for notify(event="...") / event="..." literals: each must exist in en, hi and or."""
    import re
    from pathlib import Path

    root = Path(rendering.__file__).resolve().parents[1]
    sent = set()
    for path in root.rglob("*.py"):
        if "tests" in path.parts:
            continue
        sent |= set(re.findall(r'\bevent="([a-z_]+\.[a-z_]+)"', path.read_text(encoding="utf-8")))
    assert {"payment.received", "request.hearing_scheduled", "outage.cancelled"} <= sent  # the grep works
    events = rendering.events()
    missing = {e for e in sent if not (set(events.get(e, {})) >= {"en", "hi", "or"})}
    assert not missing, missing
    assert sent <= set(REQUIRED_EVENTS)


def test_payment_received_balance_code_and_token():
    sms = _sms("payment.received")
    assert "code K7QXM-3PZ2A" in sms and "Due Rs.48.20" in sms and "Token: 123456789012345" in sms
    assert "Advance Rs.1,250.00." in _sms("payment.received", balance=Decimal("-1250"))
    assert "Nothing due." in _sms("payment.received", balance=Decimal("0"))
    bare = _sms("payment.received", balance=None, verification_code="", token="")
    assert "code" not in bare and "Due" not in bare and "Token" not in bare and "Nothing due" not in bare
    assert bare.startswith("Rs.1,23,456.50 received for Consumer No. OD1234567890. Receipt 1101CC25000004217.")
    assert "अग्रिम ₹1,250.00।" in _sms("payment.received", "hi", balance=Decimal("-1250"))
    assert "ଟୋକେନ୍: 123456789012345" in _sms("payment.received", "or")
    wa = rendering.render(event="payment.received", channel="whatsapp", language="en", context=CONTEXT).body
    assert "Verification code: K7QXM-3PZ2A" in wa and "*123456789012345*" in wa and "10-07-2025 10:00" in wa


def test_request_closed_carries_the_feedback_link_where_it_fits():
    url = CONTEXT["feedback_url"]
    for language in ("en", "hi", "or"):
        for channel in ("whatsapp", "email"):
            out = rendering.render(event="request.closed", channel=channel, language=language, context=CONTEXT)
            assert url in out.body, (language, channel)
            without = {**CONTEXT, "feedback_url": ""}
            out = rendering.render(event="request.closed", channel=channel, language=language, context=without)
            assert "http" not in out.body and "\n\n\n" not in out.body
        assert url not in _sms("request.closed", language)  # SMS stays within its parts
    email = rendering.render(event="request.closed", channel="email", language="or", context=CONTEXT).body
    assert email.startswith("ପ୍ରିୟ Sunita Behera,") and "ହେଲ୍ପଲାଇନ: 1912" in email


def test_compensation_hearing_and_cancelled_outage_texts():
    assert "delay of 3 days on request SR-2025-000123" in _sms("request.compensation_credited")
    one_hour = _sms("request.compensation_credited", units_late=1, per="hour", amount="50")
    assert "Rs.50.00 compensation" in one_hour and "delay of 1 hour on" in one_hour
    assert "1 घंटे की देरी" in _sms("request.compensation_credited", "hi", units_late=1, per="hour")
    assert "3 ଦିନ ବିଳମ୍ବ" in _sms("request.compensation_credited", "or")
    assert "15-07-2025 11:00 at Office of the SDO" in _sms("request.hearing_scheduled")
    # servicedesk passes the hearing time already formatted: shown as given
    assert "12 Jul 2025, 11:00 को" in _sms("request.hearing_scheduled", "hi", when="12 Jul 2025, 11:00")
    cancelled = _sms("outage.cancelled", start=None, outage="")
    assert cancelled.startswith("The planned power shutdown in Balasore Town is cancelled.")
    assert "10-07-2025 10:00" in _sms("outage.cancelled", "or")


def test_md_exceeded_accepts_md_as_metering_sends_it():
    context = {k: v for k, v in CONTEXT.items() if k != "recorded_demand"}
    out = rendering.render(event="reading.md_exceeded", channel="sms", language="en", context={**context, "md": "7.2"})
    assert "maximum demand 7.2 kW" in out.body
