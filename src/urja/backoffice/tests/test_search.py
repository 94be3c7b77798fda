"""Issue 15: find a consumer by any word of the name ('Behera', 'Ltd') and by a meter serial or a
receipt number — within the user's scope only."""

import pytest
from django.core.cache import cache

from urja.demo import testing


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.fixture
def cre_client(client, cre):
    client.force_login(cre)
    return client


def _numbers(client, q):
    html = client.get("/backoffice/find/", {"q": q}).content.decode()
    return html


def test_any_word_of_the_name(cre_client, offices):
    sunita = testing.domestic_account(offices["section1"], name="Sunita Behera", mobile="9437012345")
    mill = testing.domestic_account(offices["section1"], name="Kalinga Rice Mill Ltd", mobile="9437012346")
    other = testing.domestic_account(offices["section2"], name="Rabi Behera", mobile="9437012347")
    html = _numbers(cre_client, "Behera")
    assert sunita.consumer_number in html and other.consumer_number not in html  # out of scope
    html = _numbers(cre_client, "ltd")
    assert mill.consumer_number in html and sunita.consumer_number not in html
    html = _numbers(cre_client, "rice ltd")
    assert mill.consumer_number in html


def test_by_meter_serial_and_receipt_number(cre_client, cre, offices):
    from urja.metering import services as metering
    from urja.payments import services as payments

    account = testing.domestic_account(offices["section1"], name="Sunita Behera", mobile="9437012345")
    meter = metering.register_meter(serial="GE7788123", make="Genus", meter_type="static", actor=None, channel="system")
    metering.install_meter(account=account, meter=meter, actor=None, channel="system")
    html = _numbers(cre_client, "ge7788123")
    assert account.consumer_number in html and "meter serial GE7788123" in html

    payments.open_session(actor=cre, opening_balance="0")
    payment = payments.take_payment(
        actor=cre, channel="counter", consumer_number=account.consumer_number, amount="100", idempotency_key="k1"
    )
    html = _numbers(cre_client, payment.receipt_number)
    assert account.consumer_number in html and "receipt number" in html


def test_identifiers_do_not_reach_out_of_scope(cre_client, offices):
    from urja.metering import services as metering

    far = testing.domestic_account(offices["section2"], name="Rabi Behera", mobile="9437012347")
    meter = metering.register_meter(serial="GE0000999", make="Genus", meter_type="static", actor=None, channel="system")
    metering.install_meter(account=far, meter=meter, actor=None, channel="system")
    html = _numbers(cre_client, "GE0000999")
    assert far.consumer_number not in html
