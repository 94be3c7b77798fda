"""Reads go through payments.selectors, state changes through payments.services (issue 11): no module
of the app reaches a read through `services`, services re-exports no read, and every name another
app takes through a `services` alias of payments is there (the checks are metering's, which read the
code)."""

from urja.metering.tests.test_reads_in_selectors import (
    missing_through_services_aliases,
    reads_through_services,
    reexported_reads,
)
from urja.payments import selectors, services


def test_no_module_of_payments_reads_through_services():
    assert reads_through_services("payments", selectors) == []


def test_services_reexports_no_read():
    assert reexported_reads(services, selectors) == set()


def test_every_name_other_apps_take_through_services_is_there():
    assert missing_through_services_aliases("payments") == []
