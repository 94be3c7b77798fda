"""billing.bulk.copy_text: the COPY text of rows given column by column is each value as given."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from urja.billing.bulk import Column, copy_text


def test_equal_values_written_differently_stay_as_given():
    # Decimal 1128 equals 1128.00: a column of both is not "the same in every row" (hypothesis found a
    # settlement file whose all-advance allocation then read 1128.00 where the file said 1128)
    _, text = copy_text([(2, [Column("amount", [Decimal("1128.00"), Decimal("1128")]), Column("k", ["a", "b"])])])
    assert text == "1128.00\ta\n1128\tb\n"
    _, text = copy_text([(3, [Column("n", [Decimal("5"), Decimal("5"), Decimal("5")])])])
    assert text == "5\n5\n5\n"


@given(st.lists(st.decimals(min_value=-(10**6), max_value=10**6, places=2, allow_nan=False), min_size=1, max_size=8))
def test_each_decimal_is_written_as_its_own_text(values):
    _, text = copy_text([(len(values), [Column("amount", values)])])
    assert text.splitlines() == [str(v) for v in values]
