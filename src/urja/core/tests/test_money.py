import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from urja.core.money import MoneyError, amount_in_words, format_inr, paise, parse_amount

amounts = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2, allow_nan=False)


def test_paise_rounds_half_away_from_zero():
    assert paise("2.345") == Decimal("2.35")
    assert paise("-2.345") == Decimal("-2.35")
    assert paise(0.1 + 0.2) == Decimal("0.30")


def test_indian_grouping_examples():
    assert format_inr("12345678") == "1,23,45,678.00"
    assert format_inr("999") == "999.00"
    assert format_inr("1000") == "1,000.00"
    assert format_inr("100000.5") == "1,00,000.50"
    assert format_inr("-1234567.891") == "-12,34,567.89"
    assert format_inr(5, symbol=True) == "₹5.00"


@given(amounts)
def test_grouping_keeps_the_value_and_the_indian_pattern(value):
    text = format_inr(value)
    assert Decimal(text.replace(",", "")) == paise(value)
    assert re.fullmatch(r"-?(\d{1,2},)*(\d{1,3},)?\d{1,3}\.\d\d", text)
    whole = text.lstrip("-").split(".")[0].split(",")
    assert len(whole[-1]) <= 3 and all(len(g) == 2 for g in whole[1:-1])


def test_amount_in_words_uses_lakh_and_crore():
    assert (
        amount_in_words("123456.70")
        == "Rupees One Lakh Twenty-Three Thousand Four Hundred Fifty-Six And Seventy Paise Only"
    )
    assert amount_in_words("10000000") == "Rupees One Crore Only"
    assert amount_in_words("0") == "Rupees Zero Only"
    assert amount_in_words("1005.05") == "Rupees One Thousand Five And Five Paise Only"


def test_amount_in_words_in_hindi_and_odia():
    assert amount_in_words("123456.70", "hi") == "एक लाख तेईस हज़ार चार सौ छप्पन रुपये और सत्तर पैसे मात्र"
    assert amount_in_words("10000000", "hi") == "एक करोड़ रुपये मात्र"
    assert amount_in_words("4599", "or") == "ଚାରି ହଜାର ପାଞ୍ଚ ଶହ ଅନେଶତ ଟଙ୍କା ମାତ୍ର"
    assert amount_in_words("-5.05", "or") == "ଋଣ ପାଞ୍ଚ ଟଙ୍କା ଓ ପାଞ୍ଚ ପଇସା ମାତ୍ର"


@pytest.mark.parametrize("bad", ["0", "-5", "10.001", "abc", "NaN", "1e400000"])
def test_parse_amount_rejects_bad_amounts(bad):
    with pytest.raises(MoneyError):
        parse_amount(bad)


def test_parse_amount_accepts_two_decimals():
    assert parse_amount("10.50") == Decimal("10.50")
    assert parse_amount("1,500") == Decimal("1500.00")
