"""Prepaid wallets: rebate, alerts, protected hours, and the disconnect → recharge → reconnect loop
against the real MQTT broker (127.0.0.1:1883)."""

import json
import queue
import uuid
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from urja.billing import ledger
from urja.billing.models import EntryType
from urja.payments import seams, selectors, services
from urja.payments.models import PrepaidCharge, PrepaidWallet

pytestmark = pytest.mark.django_db
IST = ZoneInfo("Asia/Kolkata")
TUESDAY_11 = datetime(2025, 6, 10, 11, 0, tzinfo=IST)
TUESDAY_23 = datetime(2025, 6, 10, 23, 0, tzinfo=IST)
SUNDAY_11 = datetime(2025, 6, 15, 11, 0, tzinfo=IST)


def recharge(cashier, account, amount, key):
    return services.take_payment(
        actor=cashier, channel="counter", consumer_number=account.consumer_number, amount=amount, idempotency_key=key
    )


@pytest.fixture
def broker():
    """A subscriber on the broker that collects every command message."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    messages: queue.Queue = queue.Queue()
    ready = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"urja-test-{uuid.uuid4().hex[:8]}")
    client.on_message = lambda c, u, msg: messages.put((msg.topic, msg.payload))
    client.on_subscribe = lambda *a: ready.put(True)
    host, port = seams.mqtt_address()
    client.connect(host, port, keepalive=10)
    client.loop_start()
    client.subscribe("urja/#", qos=1)
    ready.get(timeout=5)
    yield messages
    client.loop_stop()
    client.disconnect()


def wait_for(messages, command_id, timeout=5.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            topic, payload = messages.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            break
        if command_id.encode() in payload:
            return topic, json.loads(payload)
    raise AssertionError(f"command {command_id} not seen on the broker")


def test_recharge_earns_the_prepaid_rebate(cashier, prepaid_account):
    payment = recharge(cashier, prepaid_account, "500.00", "pp1")
    rebates = prepaid_account.ledger.filter(entry_type=EntryType.REBATE)
    assert [r.amount for r in rebates] == [Decimal("-20.00")]  # OERC: 4% of the prepaid amount
    assert selectors.wallet_balance(account=prepaid_account) == Decimal("520.00")
    assert payment.balance_after == Decimal("-520.00")


@pytest.fixture
def gateway():
    """The metering MQTT gateway (the real head-end code) connected to the broker."""
    from urja.metering.gateway import Gateway

    host, port = seams.mqtt_address()
    gw = Gateway(f"mqtt://{host}:{port}")
    gw.start()
    assert gw.wait_connected(10)
    yield gw
    gw.stop()


@pytest.fixture
def smart_meter(prepaid_account):
    from urja.metering import services as metering

    meter = metering.register_meter(
        serial=f"SPM{uuid.uuid4().hex[:8]}", make="Genus", meter_type="smart_prepaid", actor=None, channel="system"
    )
    metering.install_meter(account=prepaid_account, meter=meter, actor=None, channel="system")
    return meter


def test_run_down_disconnect_recharge_reconnect_over_mqtt(
    cashier, prepaid_account, smart_meter, broker, gateway, tariffs_loaded
):
    recharge(cashier, prepaid_account, "100.00", "r1")  # wallet 104.00
    charge = services.charge_prepaid_day(account=prepaid_account, day=TUESDAY_11.date(), kwh="60")
    assert charge.amount > Decimal("204.00")  # beyond the wallet and the emergency credit
    # charging twice for the same day changes nothing
    assert services.charge_prepaid_day(account=prepaid_account, day=TUESDAY_11.date(), kwh="60").pk == charge.pk
    assert PrepaidCharge.objects.count() == 1

    # at night and on Sunday the rules protect the consumer: no command
    assert services.evaluate_wallet(account=prepaid_account, now=TUESDAY_23).supply == "connected"
    assert services.evaluate_wallet(account=prepaid_account, now=SUNDAY_11).supply == "connected"
    wallet = services.evaluate_wallet(account=prepaid_account, now=TUESDAY_11)
    assert wallet.supply == PrepaidWallet.Supply.DISCONNECTED and wallet.commands_sent == 1
    assert gateway.dispatch() == 1  # the MQTT gateway's tick publishes the queued command
    topic, body = wait_for(broker, wallet.last_command_id)
    assert body["command"] == "disconnect"
    # evaluating again sends nothing more
    assert services.evaluate_wallet(account=prepaid_account, now=TUESDAY_11).commands_sent == 1

    # a recharge that does not clear the debt leaves the supply off
    recharge(cashier, prepaid_account, "10.00", "r2")
    wallet.refresh_from_db()
    assert wallet.supply == "disconnected"
    # one that clears it reconnects at once, whatever the hour
    debt = -selectors.wallet_balance(account=prepaid_account)
    recharge(cashier, prepaid_account, str(debt + Decimal("50.00")), "r3")
    wallet.refresh_from_db()
    assert wallet.supply == PrepaidWallet.Supply.CONNECTED and wallet.commands_sent == 2
    assert gateway.dispatch() == 1
    topic, body = wait_for(broker, wallet.last_command_id)
    assert body["command"] == "reconnect"
    assert topic == f"urja/meters/{smart_meter.serial}/commands"


def test_no_smart_meter_leaves_supply_state_alone(cashier, prepaid_account, tariffs_loaded):
    recharge(cashier, prepaid_account, "10.00", "n1")
    services.charge_prepaid_day(account=prepaid_account, day=TUESDAY_11.date(), kwh="100")
    wallet = services.evaluate_wallet(account=prepaid_account, now=TUESDAY_11)
    assert wallet.supply == "connected" and wallet.commands_sent == 0


def test_low_balance_alerts_once_per_threshold(cashier, prepaid_account):
    recharge(cashier, prepaid_account, "250.00", "a1")  # 260.00
    wallet = services.evaluate_wallet(account=prepaid_account, now=TUESDAY_11)
    assert wallet.alerted_threshold == ""
    ledger.post_entry(account=prepaid_account, entry_type=EntryType.BILL_CHARGE, amount="90.00", description="day")
    assert services.evaluate_wallet(account=prepaid_account, now=TUESDAY_11).alerted_threshold == "200.00"
    assert services.evaluate_wallet(account=prepaid_account, now=TUESDAY_11).alerted_threshold == "200.00"
    ledger.post_entry(account=prepaid_account, entry_type=EntryType.BILL_CHARGE, amount="100.00", description="day")
    assert services.evaluate_wallet(account=prepaid_account, now=TUESDAY_11).alerted_threshold == "100.00"
    recharge(cashier, prepaid_account, "1000.00", "a2")
    wallet.refresh_from_db()
    assert wallet.alerted_threshold == ""  # re-armed


def test_postpaid_account_has_no_wallet(account):
    from urja.core.errors import DomainError

    with pytest.raises(DomainError):
        services.ensure_wallet(account=account)
