"""Issue 15 part 5: one format for money, numbers, dates and codes on every page."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from urja.core.labels import humanise, label
from urja.core.templatetags import urja_format as f


def render(text: str, **context) -> str:
    return Template(text).render(Context(context))


def test_rupees_use_indian_grouping_everywhere_without_a_load():
    assert render("{{ a|rupees }}", a=Decimal("4684.74000000000")) == "₹4,684.74"
    assert render("{{ a|rupees }}", a=Decimal("123456789")) == "₹12,34,56,789.00"
    assert render("{{ a|rupees }}", a=Decimal("-5")) == "-₹5.00"
    assert render("{{ a|inr }}", a=1234567.5) == "12,34,567.50"
    assert render("{{ a|rupees }}", a=None) == ""


def test_large_amounts_in_lakh_and_crore():
    assert f.rupees_short(Decimal("468474")) == "₹4.68 lakh"
    assert f.rupees_short(Decimal("123456789")) == "₹12.35 crore"
    assert f.rupees_short(Decimal("4684.74")) == "₹4,684.74"
    assert f.rupees_short(Decimal("-250000")) == "-₹2.50 lakh"


def test_indian_numbers():
    assert f.indian(1234567) == "12,34,567"
    assert f.indian(Decimal("1234.5678"), 3) == "1,234.568"
    assert f.indian(0) == "0"


@given(st.integers(min_value=0, max_value=10**15))
def test_indian_grouping_keeps_the_digits_and_groups_by_lakh(n):
    text = f.indian(n)
    assert text.replace(",", "") == str(n)
    groups = text.split(",")
    assert len(groups[-1]) == min(3, len(str(n)))
    assert all(len(g) == 2 for g in groups[1:-1])
    assert 1 <= len(groups[0]) <= (3 if len(groups) == 1 else 2)


def test_dates_are_dd_mm_yyyy_in_ist(settings):
    moment = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)  # 01:30 on the 5th in IST
    assert f.day(moment) == "05-12-2026"
    assert f.when(moment) == "05-12-2026 01:30"
    assert f.day(date(2026, 12, 4)) == "04-12-2026"
    # the plain {{ date }} too, in every language of the UI
    for language in ("en", "hi", "or"):
        with translation.override(language):
            assert render("{{ d }}", d=date(2026, 12, 4)) == "04-12-2026"


@pytest.mark.parametrize(
    "code,language,words",
    [
        ("on_track", "en", "On track"),
        ("care_centre", "en", "Customer care centre"),
        ("in_progress", "hi", "कार्य जारी"),
        ("completed_exc", "or", "ବ୍ୟତିକ୍ରମ ସହ ସମ୍ପୂର୍ଣ୍ଣ"),
        ("units_m", "en", "Units (kWh)"),
        ("some_new_code", "en", "Some new code"),
    ],
)
def test_codes_in_words(code, language, words):
    assert label(code, language) == words


def test_label_filter_follows_the_active_language():
    with translation.override("hi"):
        assert render("{{ s|label }}", s="on_track") == "समय पर"
    assert humanise("calendar_hours") == "Calendar hours"
