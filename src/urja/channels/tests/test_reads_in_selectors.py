"""Reads go through <app>.selectors, state changes through <app>.services (issue 11), held for the
consumer channels (OTP, WhatsApp bot, SMS pull): no module of channels takes a read through a
`services` module of another app (a mixed alias), and every name any app takes through a `services`
alias of the apps channels changes state through is there. The checks are metering's, which read the
code."""

import pytest

from urja.metering.tests.test_reads_in_selectors import (
    missing_through_services_aliases,
    reads_taken_through_services,
)


def test_no_module_of_channels_takes_a_read_through_a_services_module():
    assert reads_taken_through_services("channels") == []


@pytest.mark.parametrize("package", ["connections", "notifications", "servicedesk"])
def test_every_name_taken_through_services_is_there(package):
    assert missing_through_services_aliases(package) == []
