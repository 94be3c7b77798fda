"""The input boundary on payments: amounts in ASCII digits on the API, the cashier page and settlement
files; received_at not in the future, nor in 1970, nor before the account existed; text without NUL."""

import io
from datetime import timedelta

import pytest
from django.utils import timezone

from urja.core.models import ApiToken
from urja.payments import services
from urja.payments.models import Payment

pytestmark = pytest.mark.django_db

BAD_AMOUNTS = ["१००", "１００", "١٠٠", "1e3", "1e30"]


def bearer(user) -> dict:
    _, raw = ApiToken.issue(user=user, name="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_counter_payment_api_refuses_non_ascii_or_exponent_amounts(client, cashier, account, amount):
    body = {"consumer_number": account.consumer_number, "amount": amount, "idempotency_key": f"k-{amount}"}
    res = client.post("/api/v1/payments/payments", body, content_type="application/json", **bearer(cashier))
    assert (res.status_code, res.json()["code"]) == (422, "invalid_amount")
    assert not Payment.objects.exists()


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_cashier_page_refuses_them_too(client, cashier, account, amount):
    client.force_login(cashier)
    form = {"consumer_number": account.consumer_number, "amount": amount, "method": "cash", "key": "k1"}
    page = client.post("/payments/cashier/pay/", form)
    assert page.status_code in (200, 400, 422)
    assert b"0-9" in page.content or b"exponent" in page.content or b"at most" in page.content
    assert not Payment.objects.exists()


def test_the_service_refuses_them_whatever_the_caller(cashier, account):
    from urja.core.errors import DomainError

    for amount in BAD_AMOUNTS:
        with pytest.raises(DomainError) as caught:
            services.take_payment(
                actor=cashier,
                channel="counter",
                consumer_number=account.consumer_number,
                amount=amount,
                idempotency_key=f"s-{amount}",
            )
        assert caught.value.code == "invalid_amount"


def test_received_at_in_the_future_or_1970_is_refused_on_the_api(client, cashier, account):
    for moment, code in [
        ("2030-01-01T10:00:00+05:30", "date_in_future"),
        ("1900-01-01T10:00:00+05:30", ("date_too_early", "date_before_account")),  # either rule refuses it
        ("1970-01-01T10:00:00+05:30", "date_before_account"),  # the account was opened today
    ]:
        body = {
            "consumer_number": account.consumer_number,
            "amount": "100",
            "idempotency_key": f"t-{moment}",
            "received_at": moment,
        }
        res = client.post("/api/v1/payments/payments", body, content_type="application/json", **bearer(cashier))
        assert res.status_code == 422 and res.json()["code"] in (code if isinstance(code, tuple) else (code,))
    assert not Payment.objects.exists()


def test_agent_sync_refuses_each_bad_time_as_that_items_error(client, agent, account):
    now = timezone.now()
    items = [
        {"received_at": now.isoformat(), "ok": True},
        {"received_at": (now + timedelta(days=2)).isoformat(), "code": "date_in_future"},
        {"received_at": "1900-01-01T00:00:00+00:00", "code": "date_too_early"},
        # the account was connected today (testing.domestic_account): a week ago it did not exist
        {"received_at": (now - timedelta(days=7)).isoformat(), "code": "date_before_account"},
        {"received_at": now.isoformat(), "amount": "१००", "code": "invalid_amount"},
    ]
    body = {
        "payments": [
            {
                "consumer_number": account.consumer_number,
                "amount": item.get("amount", "50.00"),
                "idempotency_key": f"tab:{i}",
                "received_at": item["received_at"],
            }
            for i, item in enumerate(items)
        ]
    }
    out = client.post("/api/v1/payments/agent/sync", body, content_type="application/json", **bearer(agent)).json()
    assert [o["ok"] for o in out] == [True, False, False, False, False]
    assert [o["code"] for o in out[1:]] == [i["code"] for i in items[1:]]
    assert Payment.objects.count() == 1


def test_settlement_file_rows_follow_the_same_rules(account, admin_user):
    n = account.consumer_number
    rows = [
        "row_key,consumer_number,amount,paid_at,reference",
        f"G1,{n},100.00,{timezone.localdate().isoformat()},UTR1",  # line 2: good
        f"D1,{n},१००,2025-03-01,",  # line 3: Devanagari digits
        f"D2,{n},１００,2025-03-01,",  # line 4: fullwidth
        f"D3,{n},١٠٠,2025-03-01,",  # line 5: Arabic-Indic
        f"D4,{n},1e3,2025-03-01,",  # line 6: exponent
        f"D5,{n},100,2030-01-01,",  # line 7: future
        f"D6,{n},100,1900-01-01,",  # line 8: before the earliest year
        f"D7\x00,{n},100,2025-03-01,",  # line 9: NUL in the key
        f"D8,{n},100,2025-03-01,UTR\x07",  # line 10: a control character in the reference
    ]
    batch = services.import_settlement(
        actor=admin_user, source="SBI", filename="f.csv", stream=io.BytesIO("\n".join(rows).encode())
    )
    codes = {item["line"]: item["code"] for item in batch.report}
    assert codes == {
        3: "invalid_amount",
        4: "invalid_amount",
        5: "invalid_amount",
        6: "invalid_amount",
        7: "invalid_date",
        8: "invalid_date",
        9: "invalid_text",
        10: "invalid_text",
    }
    assert batch.posted == 1
    assert "0-9" in next(i["message"] for i in batch.report if i["line"] == 3)
