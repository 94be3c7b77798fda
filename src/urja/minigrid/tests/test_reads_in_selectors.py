"""Reads go through <app>.selectors, state changes through <app>.services (issue 11), held for the
mini-grid console: no module of minigrid takes a read through a `services` module (its own or another
app's: a mixed alias), and every name any app takes through a `services` alias of minigrid or of the
apps minigrid changes state through is there (a dropped re-export fails here, not on a page). The
checks are metering's, which read the code."""

import pytest

from urja.metering.tests.test_reads_in_selectors import (
    missing_through_services_aliases,
    reads_taken_through_services,
    reads_through_services,
)
from urja.minigrid import selectors


def test_no_module_of_minigrid_takes_a_read_through_a_services_module():
    assert reads_taken_through_services("minigrid") == []


def test_no_module_of_minigrid_reads_its_own_selectors_through_services():
    assert reads_through_services("minigrid", selectors) == []


@pytest.mark.parametrize("package", ["minigrid", "customers", "network"])
def test_every_name_taken_through_services_is_there(package):
    assert missing_through_services_aliases(package) == []
