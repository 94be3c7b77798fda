"""Supply checks call metering and payments directly: a renamed function or field fails loudly
instead of silently turning the check off (apps.get_model / getattr fallbacks used to)."""

import inspect

import pytest

from urja.servicedesk import supply_checks

pytestmark = pytest.mark.django_db


def test_no_lookups_by_name():
    source = inspect.getsource(supply_checks)
    assert "apps.get_model" not in source and "getattr(" not in source


def test_a_renamed_metering_service_fails_loudly(offices, monkeypatch):
    from urja.demo.testing import domestic_account
    from urja.metering import selectors as metering

    account = domestic_account(offices["section1"], mobile="9437000888")
    monkeypatch.delattr(metering, "current_installation")
    with pytest.raises(AttributeError):
        supply_checks.check(account)


def test_a_renamed_wallet_service_fails_loudly(offices, monkeypatch):
    from urja.demo.testing import domestic_account
    from urja.payments import services as payments

    account = domestic_account(offices["section1"], mobile="9437000889", is_prepaid=True)
    payments.ensure_wallet(account=account)
    monkeypatch.delattr(supply_checks.payments, "wallet_balance")  # the reads it calls (payments.selectors)
    with pytest.raises(AttributeError):
        supply_checks.check(account)
