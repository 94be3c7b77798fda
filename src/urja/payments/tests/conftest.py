import pytest

from urja.billing import ledger
from urja.billing.models import EntryType
from urja.demo import testing
from urja.payments import services


@pytest.fixture
def cashier(offices):
    user = testing.staff_user("cre", offices["section1"])
    services.open_session(actor=user, opening_balance="500.00")
    return user


@pytest.fixture
def agent(offices):
    user = testing.staff_user("field_agent", offices["section1"])
    user.staff.cash_limit = "5000.00"
    user.staff.save()
    return user


@pytest.fixture
def prepaid_account(offices):
    return testing.domestic_account(offices["section1"], name="Prepaid Pradhan", mobile="9437099999", is_prepaid=True)


@pytest.fixture
def tariffs_loaded(db):
    """The tariff orders in data/ (a prepaid day is priced by the tariff engine, never at a made-up rate)."""
    from urja.tariffs import services as tariffs

    tariffs.load_all()


def bill(account, amount, *, due, key):
    """A bill charge on the account's ledger, due on `due` (what a payment then settles)."""
    return ledger.post_entry(
        account=account,
        entry_type=EntryType.BILL_CHARGE,
        amount=amount,
        description="bill",
        due_date=due,
        idempotency_key=key,
    )
