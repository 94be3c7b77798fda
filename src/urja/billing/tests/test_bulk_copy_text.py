"""billing.bulk.copy_text: the COPY text of rows given column by column is each value as given."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from urja.billing.bulk import Column, copy_text

ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-3))]


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


@given(
    st.lists(
        st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.sampled_from(ZONES)),
        min_size=1,
        max_size=8,
    )
)
def test_each_datetime_is_written_as_an_instant_equal_to_it(values):
    # a column of datetimes writes each distinct one once (its str() is slow); equal instants in
    # other zones may share a text, which PostgreSQL reads as the same timestamptz
    _, text = copy_text([(len(values), [Column("at", values), Column("k", [str(i) for i in range(len(values))])])])
    rows = [line.split("\t") for line in text.splitlines()]
    assert [int(k) for _, k in rows] == list(range(len(values)))
    assert [datetime.fromisoformat(at) for at, _ in rows] == values
