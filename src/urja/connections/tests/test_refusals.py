"""The connections refusals in English, Hindi and Odia: labels of data/core/labels.toml rendered in the
active language (the portal's consumer language, the bot's sender language, the API's
Accept-Language), the code and details unchanged."""

import re
from pathlib import Path

import pytest
from django.test import Client
from django.utils import translation

from urja.connections import refusals, selectors, services
from urja.connections.models import Application
from urja.core import regdata
from urja.core.errors import DomainError, NotFound

from .test_api import bearer, body

SOURCES = [Path(services.__file__), Path(services.__file__).with_name("changes.py")]


def _keys_used() -> set[str]:
    found = set()
    for path in SOURCES:
        found |= set(re.findall(r'refuse\(\s*"([a-z_]+)"', path.read_text()))
    return found


def test_every_refusal_has_words_in_english_hindi_and_odia_with_the_same_placeholders():
    table = regdata.load("core/labels.toml")["labels"]
    keys = _keys_used()
    assert len(keys) > 40  # the services' refusals go through refuse()
    for key in keys:
        row = table.get(refusals.PREFIX + key)
        assert row, f"no label conn_{key}"
        assert all(row.get(lang, "").strip() for lang in ("en", "hi", "or")), key
        placeholders = {lang: set(re.findall(r"{(\w+)}", row[lang])) for lang in ("en", "hi", "or")}
        assert placeholders["en"] == placeholders["hi"] == placeholders["or"], key
    for path in SOURCES:  # no English-only refusal left behind
        assert not re.search(r"raise (DomainError|Conflict|NotFound)\(\s*f?\"", path.read_text()), path.name


@pytest.mark.parametrize(
    ("language", "missing_words", "whole"),
    [
        ("hi", "स्वामित्व प्रमाण", "इस आवेदक प्रकार (स्वामी) के दस्तावेज़ अधूरे हैं: स्वामित्व प्रमाण।"),
        ("or", "ମାଲିକାନା ପ୍ରମାଣ", "ଏହି ଆବେଦକ ପ୍ରକାର (ମାଲିକ) ର ଦଲିଲ ଅସମ୍ପୂର୍ଣ୍ଣ: ମାଲିକାନା ପ୍ରମାଣ।"),
    ],
)
def test_a_refused_application_reads_in_the_consumers_language(apply, owner_documents, language, missing_words, whole):
    without_deed = [d for d in owner_documents if d.code != "ownership_proof"]
    with translation.override(language), pytest.raises(DomainError) as err:
        apply(documents=without_deed, channel="website")
    assert err.value.code == "documents_missing" and err.value.details["missing"] == ["ownership_proof"]
    assert err.value.message == whole and missing_words in err.value.message
    with translation.override(language), pytest.raises(DomainError) as err:
        apply(latitude="28.6139", longitude="77.2090")  # Delhi: outside the utility's area
    assert err.value.code == "outside_service_area" and "28.613900" in err.value.message
    assert "outside" not in err.value.message
    with translation.override("en"), pytest.raises(DomainError) as err:
        apply(documents=without_deed)
    assert err.value.message == "Documents missing for this applicant type (Owner): Ownership proof."
    assert not Application.objects.exists()


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "No application with this number and mobile."),
        ("hi", "इस संख्या और मोबाइल का कोई आवेदन नहीं मिला।"),
        ("or", "ଏହି ନମ୍ବର ଓ ମୋବାଇଲ୍ ସହ କୌଣସି ଆବେଦନ ମିଳିଲା ନାହିଁ।"),
    ],
)
def test_tracking_refusal_in_each_language_says_the_same_for_wrong_and_unknown(apply, language, expected):
    app = apply()
    answers = set()
    for number, mobile in [(app.number, "9861099999"), ("NC2600000000", "9861012345")]:
        with translation.override(language), pytest.raises(NotFound) as err:
            selectors.track(number=number, mobile=mobile)
        answers.add((err.value.code, err.value.message))
    assert answers == {("application_not_found", expected)}


def test_api_refusals_follow_accept_language(offices, loaded, cre):
    c = Client()
    data = body(offices, documents=[{"code": "photograph"}])
    for language, words in [("hi", "दस्तावेज़ अधूरे"), ("or", "ଦଲିଲ ଅସମ୍ପୂର୍ଣ୍ଣ"), ("en", "Documents missing")]:
        r = c.post("/api/v1/connections/applications", data, content_type="application/json",
                   HTTP_ACCEPT_LANGUAGE=language, **bearer(cre))  # fmt: skip
        assert r.status_code == 400 and r.json()["code"] == "documents_missing", r.json()
        assert words in r.json()["message"] and r.json()["details"]["applicant_type"] == "owner"
    assert not Application.objects.exists()


def test_change_request_refusals_in_hindi_and_odia(apply, cre):
    from urja.connections import changes
    from urja.customers.models import Account

    account = Account.objects.create(
        consumer=apply().consumer, consumer_number="CN9000001", premises_address="x", category="domestic",
        supply_type="lt_1ph", sanctioned_load=2, section=cre.staff.office.children.first() or cre.staff.office,
        office_path=cre.staff.office.path, status="pending",
    )  # fmt: skip
    for language, expected in [("hi", "कनेक्शन अभी चालू नहीं हुआ है।"), ("or", "ସଂଯୋଗ ଏପର୍ଯ୍ୟନ୍ତ ଚାଲୁ ହୋଇନାହିଁ।")]:
        with translation.override(language), pytest.raises(DomainError) as err:
            changes.request_change(actor=cre, channel="care_centre", account=account, kind="load_change",
                                   details={"load": "3"})  # fmt: skip
        assert (err.value.code, err.value.status, err.value.message) == ("account_pending", 409, expected)


def test_text_keeps_a_missing_placeholder_visible_and_unknown_keys_humanised():
    with translation.override("hi"):
        assert refusals.text("unknown_office") == "अज्ञात कार्यालय {office}।"
        assert refusals.text("unknown_office", office="X1") == "अज्ञात कार्यालय X1।"
    assert refusals.text("no_such_refusal", "en") == "Conn no such refusal"
