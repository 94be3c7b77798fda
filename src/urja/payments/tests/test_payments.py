from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from urja.billing import ledger
from urja.billing.models import EntryType, LedgerEntry
from urja.core.errors import Conflict, DomainError, Forbidden, NotFound
from urja.core.models import AuditEvent
from urja.customers import services as customers
from urja.payments import selectors, services
from urja.payments.models import CashierSession, Payment, PaymentStatus
from urja.payments.tests.conftest import bill

pytestmark = pytest.mark.django_db


def pay(cashier, account, amount, key, **kw):
    return services.take_payment(
        actor=cashier,
        channel="counter",
        consumer_number=account.consumer_number,
        amount=amount,
        idempotency_key=key,
        **kw,
    )


def test_counter_payment_posts_once_with_receipt_and_audit(cashier, account):
    bill(account, "1200.00", due=timezone.localdate() + timedelta(days=5), key="b1")
    payment = pay(cashier, account, "500.00", "k1")
    assert payment.status == PaymentStatus.POSTED
    assert payment.ledger_entry.amount == Decimal("-500.00")
    assert ledger.balance(account=account) == Decimal("700.00")
    assert payment.balance_after == Decimal("700.00")
    assert payment.receipt_number.startswith(account.section.code + "C")
    assert len(payment.verification_code) == 11
    assert payment.allocation["parts"][0]["category"] == "current"
    assert AuditEvent.objects.filter(action="payment.posted", object_id=str(payment.pk)).exists()
    # a replay returns the same payment and posts nothing
    again = pay(cashier, account, "500.00", "k1")
    assert again.pk == payment.pk
    assert LedgerEntry.objects.filter(account=account, entry_type=EntryType.PAYMENT).count() == 1
    # a different payment under the same key is refused
    with pytest.raises(Conflict) as exc:
        pay(cashier, account, "501.00", "k1")
    assert exc.value.code == "idempotency_key_reused"


def test_receipt_numbers_are_unique_per_series(cashier, account):
    numbers = {pay(cashier, account, "10.00", f"u{i}").receipt_number for i in range(5)}
    assert len(numbers) == 5


@pytest.mark.parametrize("amount", ["0", "-5", "10.001", "abc", "1e3x", "100000000.00"])
def test_bad_amounts_change_nothing(cashier, account, amount):
    with pytest.raises(DomainError) as exc:
        pay(cashier, account, amount, "bad")
    assert exc.value.code in ("invalid_amount", "amount_too_large")
    assert not Payment.objects.exists()
    assert not LedgerEntry.objects.filter(account=account).exists()


def test_unknown_account(cashier):
    with pytest.raises(NotFound) as exc:
        services.take_payment(
            actor=cashier, channel="counter", consumer_number="XX999", amount="10", idempotency_key="z"
        )
    assert exc.value.code == "unknown_account"


def test_counter_needs_open_session_and_collecting_role(offices, account):
    from urja.demo import testing

    cre = testing.staff_user("cre", offices["section1"])
    with pytest.raises(DomainError) as exc:
        pay(cre, account, "10", "s1")
    assert exc.value.code == "no_open_session"
    engineer = testing.staff_user("engineer", offices["section1"])
    with pytest.raises(Forbidden):
        pay(engineer, account, "10", "s2")


def test_permanently_disconnected_account_takes_its_final_dues_only_at_the_counter(cashier, account, offices):
    """The payer stands at the counter: money for a closed connection is refused (account_closed, 4xx)
    beyond its final dues, not taken into suspense; the dues themselves post."""
    bill(account, "250.00", due=timezone.localdate(), key="final")
    customers.change_account_status(
        actor=None, channel="system", account=account, status="perm_disconnected", reason="consumer request"
    )
    with pytest.raises(DomainError) as exc:
        pay(cashier, account, "300.00", "too-much")
    assert exc.value.code == "account_closed" and 400 <= exc.value.status < 500
    assert exc.value.details["dues"] == "250.00"
    assert not Payment.objects.exists() and ledger.balance(account=account) == Decimal("250.00")
    dues = pay(cashier, account, "250.00", "dues")
    assert dues.status == PaymentStatus.POSTED and ledger.balance(account=account) == 0
    with pytest.raises(DomainError) as exc:
        pay(cashier, account, "1.00", "nothing-due")
    assert exc.value.code == "account_closed"
    assert Payment.objects.count() == 1


def test_suspense_payment_is_resolved_to_the_right_account(account, offices, admin_user):
    customers.change_account_status(
        actor=None, channel="system", account=account, status="perm_disconnected", reason="consumer request"
    )
    payment = services.take_payment(  # money that arrived on its own (UPI credit) for the closed account
        actor=None,
        channel="upi",
        method="upi",
        consumer_number=account.consumer_number,
        amount="300.00",
        idempotency_key="utr:1",
    )
    assert payment.status == PaymentStatus.IN_SUSPENSE and payment.suspense_code == "account_closed"
    assert payment.ledger_entry is None and ledger.balance(account=account) == 0
    other = __import__("urja.demo.testing", fromlist=["x"]).domestic_account(offices["section1"], mobile="9437000001")
    resolved = services.resolve_suspense(
        actor=admin_user, payment=payment, consumer_number=other.consumer_number, reason="paid to the wrong number"
    )
    assert resolved.status == PaymentStatus.POSTED
    assert ledger.balance(account=other) == Decimal("-300.00")


def test_cheque_needs_number_and_bounce_reverses_with_charge(cashier, account):
    with pytest.raises(DomainError) as exc:
        pay(cashier, account, "800", "c0", method="cheque")
    assert exc.value.code == "instrument_required"
    payment = pay(cashier, account, "800.00", "c1", method="cheque", instrument_number="123456", instrument_bank="SBI")
    assert ledger.balance(account=account) == Decimal("-800.00")
    services.bounce_cheque(actor=cashier, payment=payment, reason="insufficient funds")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REVERSED
    assert ledger.balance(account=account) == Decimal("200.00")  # the charge from data
    with pytest.raises(DomainError):
        services.bounce_cheque(actor=cashier, payment=payment, reason="again")
    assert ledger.balance(account=account) == Decimal("200.00")
    cash = pay(cashier, account, "10", "c2")
    with pytest.raises(DomainError) as exc:
        services.bounce_cheque(actor=cashier, payment=cash, reason="x")
    assert exc.value.code == "not_a_cheque"


def test_partial_payment_and_allocation_order(cashier, account):
    today = timezone.localdate()
    bill(account, "300.00", due=today - timedelta(days=60), key="old")
    ledger.post_entry(
        account=account,
        entry_type=EntryType.DPS,
        amount="30.00",
        description="dps",
        idempotency_key="dps",
        due_date=today - timedelta(days=30),
    )
    bill(account, "500.00", due=today + timedelta(days=7), key="cur")
    ledger.post_entry(
        account=account,
        entry_type=EntryType.INSTALMENT,
        amount="100.00",
        description="inst",
        idempotency_key="inst",
        due_date=today,
    )
    payment = pay(cashier, account, "450.00", "p1")
    split = {p["category"]: Decimal(p["amount"]) for p in payment.allocation["parts"]}
    assert split == {
        "instalment": Decimal("100.00"),
        "arrears": Decimal("300.00"),
        "dps": Decimal("30.00"),
        "current": Decimal("20.00"),
    }
    # the next payment starts where this one stopped, and the excess is advance
    second = pay(cashier, account, "600.00", "p2")
    assert {p["category"] for p in second.allocation["parts"]} == {"current"}
    assert Decimal(second.allocation["advance"]) == Decimal("120.00")
    assert ledger.balance(account=account) == Decimal("-120.00")


def test_refund_only_up_to_credit(cashier, account):
    pay(cashier, account, "250.00", "r1")
    with pytest.raises(DomainError) as exc:
        services.refund(
            actor=cashier, consumer_number=account.consumer_number, amount="300", reason="x", idempotency_key="rf1"
        )
    assert exc.value.code == "refund_exceeds_credit"
    entry = services.refund(
        actor=cashier, consumer_number=account.consumer_number, amount="200", reason="moving", idempotency_key="rf1"
    )
    again = services.refund(
        actor=cashier, consumer_number=account.consumer_number, amount="200", reason="moving", idempotency_key="rf1"
    )
    assert entry.pk == again.pk
    assert ledger.balance(account=account) == Decimal("-50.00")


def test_advance_interest_once_per_period(cashier, account):
    from datetime import datetime

    tz = timezone.get_current_timezone()
    services.take_payment(
        actor=cashier,
        channel="counter",
        consumer_number=account.consumer_number,
        amount="12000.00",
        idempotency_key="adv",
        received_at=datetime(2025, 2, 20, 10, tzinfo=tz),
    )
    # spent 2000 in March: interest only on the 10,000 held all month
    ledger.post_entry(
        account=account,
        entry_type=EntryType.BILL_CHARGE,
        amount="2000.00",
        description="bill",
        posted_at=datetime(2025, 3, 10, tzinfo=tz),
        due_date=date(2025, 3, 17),
    )
    run = services.accrue_advance_interest(period="2025-03")
    expected = (Decimal("10000") * Decimal("0.065") * 31 / 365).quantize(Decimal("0.01"))
    assert run.accounts == 1 and run.total == expected
    assert services.accrue_advance_interest(period="2025-03").pk == run.pk
    entries = LedgerEntry.objects.filter(account=account, entry_type=EntryType.ADVANCE_INTEREST)
    assert [e.amount for e in entries] == [-expected]
    with pytest.raises(DomainError):
        services.accrue_advance_interest(period=f"{timezone.localdate():%Y-%m}")


def test_field_agent_cash_limit_and_deposit(agent, account, admin_user):
    def collect(amount, key, **kw):
        return services.take_payment(
            actor=agent, channel="field_agent", consumer_number=account.consumer_number, amount=amount,
            idempotency_key=key, **kw,
        )  # fmt: skip

    collect("4000", "device-1:0001")
    with pytest.raises(DomainError) as exc:
        collect("1500", "device-1:0002")
    assert exc.value.code == "cash_limit_exceeded"
    assert Payment.objects.count() == 1
    # cheques do not count against the cash limit
    collect("1500", "device-1:0003", method="cheque", instrument_number="99")
    services.record_deposit(actor=admin_user, agent=agent, amount="3000", reference="SLIP-1")
    assert selectors.cash_in_hand(agent=agent) == Decimal("1000.00")
    collect("1500", "device-1:0002")
    with pytest.raises(DomainError) as exc:
        services.record_deposit(actor=admin_user, agent=agent, amount="9000", reference="SLIP-2")
    assert exc.value.code == "deposit_exceeds_cash"
    report = selectors.handover_report(day=timezone.localdate())
    row = next(r for r in report["collectors"] if r["user_id"] == agent.pk)
    assert row["cash"] == Decimal("5500.00") and row["deposited"] == Decimal("3000.00")
    assert row["in_hand"] == Decimal("2500.00") and "cash_not_deposited" in row["flags"]
    # several agents at once (the consoles' and the report's read): the same figures, 0 for one who holds none
    assert selectors.cash_in_hand_of([agent.pk, admin_user.pk]) == {agent.pk: Decimal("2500.00"), admin_user.pk: 0}


def test_cashier_session_close_flags_shortage(cashier, account):
    pay(cashier, account, "1000.00", "s1")
    pay(cashier, account, "700.00", "s2", method="cheque", instrument_number="1")
    session = CashierSession.objects.get(cashier=cashier)
    closed = services.close_session(actor=cashier, session=session, counted_cash="1450.00")
    assert closed.expected_cash == Decimal("1500.00")
    assert closed.shortage == Decimal("50.00")
    assert closed.cheques_count == 1 and closed.cheques_total == Decimal("700.00")
    row = selectors.handover_report(day=timezone.localdate())["collectors"][0]
    assert "shortage" in row["flags"]
    with pytest.raises(DomainError):
        pay(cashier, account, "10", "s3")  # no open session any more
