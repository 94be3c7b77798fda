"""Reads go through payments.selectors, state changes through payments.services (issue 11): no module
of the app reaches a read through `services`, and services re-exports only the reads other apps still
take from it (the check is metering's, which reads the code)."""

from urja.metering.tests.test_reads_in_selectors import reads_through_services
from urja.payments import selectors, services

# reads still re-exported for other apps' callers (services/__init__.py names them and why)
KEPT_FOR_OTHER_APPS = {"cash_in_hand", "session_totals", "upi_intent"}


def test_no_module_of_payments_reads_through_services():
    assert reads_through_services("payments", selectors) == []


def test_services_reexports_no_other_read():
    assert {name for name in services.__all__ if hasattr(selectors, name)} == KEPT_FOR_OTHER_APPS
