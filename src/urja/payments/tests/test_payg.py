"""OpenPAYGO tokens: generated on payment, decoded by the library's own decoder to the paid days."""

from decimal import Decimal

import pytest
from openpaygo import TokenType, decode_token

from urja.core.errors import DomainError
from urja.payments import selectors, services
from urja.payments.models import PaygDevice, PaygToken

pytestmark = pytest.mark.django_db
SECRET = "a29ab82edc5fbbc41ec9530f6dac86b1"


@pytest.fixture
def device(prepaid_account, admin_user):
    return services.register_payg_device(
        actor=admin_user, account=prepaid_account, serial="OPG-0001", secret_hex=SECRET
    )


def test_secret_is_stored_encrypted(device):
    raw = bytes(PaygDevice.objects.get(pk=device.pk).secret_encrypted)
    assert SECRET.encode() not in raw
    assert selectors.device_secret(device) == SECRET


def test_payment_buys_days_and_the_token_decodes_to_them(cashier, prepaid_account, device):
    last_count = device.token_count
    payment = services.take_payment(
        actor=cashier,
        channel="counter",
        consumer_number=prepaid_account.consumer_number,
        amount="75.00",
        idempotency_key="payg1",
    )
    assert payment.payg_token  # on the receipt and in the SMS context
    price = selectors.day_price_for(prepaid_account)
    days = int(Decimal("75.00") // price)
    value, token_type, count, used = decode_token(
        token=payment.payg_token,
        secret_key=SECRET,
        count=last_count,
        used_counts=[last_count],
        starting_code=device.starting_code,
    )
    assert value == days and token_type == TokenType.ADD_TIME
    token = PaygToken.objects.get(payment=payment)
    assert token.count == count and token.days == days
    # the leftover stays as credit and counts toward the next purchase
    left = Decimal("75.00") - days * price
    second = services.take_payment(
        actor=cashier,
        channel="counter",
        consumer_number=prepaid_account.consumer_number,
        amount=str(price - left),
        idempotency_key="payg2",
    )
    value2, _, count2, used = decode_token(
        token=second.payg_token, secret_key=SECRET, count=count, used_counts=used, starting_code=device.starting_code
    )
    assert value2 == 1 and count2 > count
    # the device's counter moved on: the first token is now refused by the device's decoder
    replay = decode_token(
        token=payment.payg_token, secret_key=SECRET, count=count2, used_counts=used, starting_code=device.starting_code
    )
    assert replay[0] is None


def test_counter_never_repeats(device, admin_user):
    tokens = [services.issue_payg_token(actor=admin_user, device=device, days=d) for d in (1, 2, 3)]
    tokens.append(services.issue_payg_token(actor=admin_user, device=device, days=30, kind="set_time"))
    counts = [t.count for t in tokens]
    assert counts == sorted(set(counts))
    assert len({t.token for t in tokens}) == 4
    value, token_type, _, _ = decode_token(
        token=tokens[-1].token, secret_key=SECRET, count=tokens[-2].count, starting_code=device.starting_code
    )
    assert value == 30 and token_type == TokenType.SET_TIME


def test_bad_device_input(prepaid_account, account, admin_user):
    with pytest.raises(DomainError) as exc:
        services.register_payg_device(actor=admin_user, account=prepaid_account, serial="X", secret_hex="zz")
    assert exc.value.code == "invalid_secret"
    with pytest.raises(DomainError) as exc:
        services.register_payg_device(actor=admin_user, account=account, serial="Y", secret_hex=SECRET)
    assert exc.value.code == "not_prepaid"
