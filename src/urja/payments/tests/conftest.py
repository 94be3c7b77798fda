import pytest

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
