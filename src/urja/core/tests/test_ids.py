from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from urja.core import ids

digit_strings = st.text(alphabet="0123456789", min_size=2, max_size=15)


def test_verhoeff_known_vector():
    # Textbook example: the check digit of 236 is 3.
    assert ids.verhoeff_check_digit("236") == "3"
    assert ids.verhoeff_valid("2363")
    assert not ids.verhoeff_valid("2364")


@given(digit_strings, st.data())
def test_any_single_digit_error_is_detected(body, data):
    number = body + ids.verhoeff_check_digit(body)
    pos = data.draw(st.integers(0, len(number) - 1))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != number[pos]]))
    assert not ids.verhoeff_valid(number[:pos] + wrong + number[pos + 1 :])


@given(digit_strings, st.data())
def test_adjacent_transpositions_are_detected(body, data):
    number = body + ids.verhoeff_check_digit(body)
    pos = data.draw(st.integers(0, len(number) - 2))
    if number[pos] == number[pos + 1]:
        return
    swapped = number[:pos] + number[pos + 1] + number[pos] + number[pos + 2 :]
    assert not ids.verhoeff_valid(swapped)


def test_render_template_with_fields_and_check():
    number = ids.render_number("{division:3}{seq:8}{check}", seq=42, fields={"division": "7"})
    assert number[:11] == "00700000042"
    assert ids.has_valid_check(number)
    assert not ids.has_valid_check(number[:-1] + str((int(number[-1]) + 1) % 10))


def test_render_alphanumeric_minigrid_customer_id():
    number = ids.render_number("{site}{package}{seq:4}{check}", seq=7, fields={"site": "MG01", "package": "B2"})
    assert number.startswith("MG01B20007") and ids.has_valid_check(number)


def test_render_date_fields_and_overflow():
    assert ids.render_number("SR{yy}{seq:6}", seq=5, today=date(2026, 11, 23)) == "SR26000005"
    with pytest.raises(ids.TemplateError):
        ids.render_number("{seq:2}", seq=100)
    with pytest.raises(ids.TemplateError):
        ids.render_number("{check}{seq:2}", seq=1)
    with pytest.raises(ids.TemplateError):
        ids.render_number("{office}{seq:2}", seq=1)


@given(
    st.sampled_from(
        [
            "{division:3}{seq:8}{check}",
            "SR{yy}{seq:6}",
            "B{division:3}{yy}{mm}{seq:7}",
            "{seq}",
            "X{seq:4}Y",
            # check digits computed over arrays: letters, a tail after {seq}, lengths that vary
            "{office}{prefix}{yy}{seq:07}{check}",
            "{seq}{check}",
            "sr-{seq:5}/x{check}",
        ]
    ),
    st.integers(1, 9_000),  # within every template's width
    st.integers(1, 30),
)
def test_bulk_rendering_matches_one_by_one(template, first, count):
    fields = {"division": "42", "office": "bh1", "prefix": "B"}
    today = date(2026, 11, 23)
    one_by_one = [ids.render_number(template, seq=first + i, fields=fields, today=today) for i in range(count)]
    assert ids.render_numbers(template, first=first, count=count, fields=fields, today=today) == one_by_one


def test_bulk_rendering_refuses_overflow():
    with pytest.raises(ids.TemplateError):
        ids.render_numbers("{seq:2}", first=95, count=10)
