"""Reads go through <app>.selectors, state changes through <app>.services (issue 11), held for
connections: no module of connections takes a read through a `services` module (a mixed alias) — the
tracking reads a touch point makes (`track`, `outstanding`, `is_application_number`) and the section's
DTs (`customers.selectors.section_transformers`) are selectors. The checks are metering's, which read
the code."""

from urja.metering.tests.test_reads_in_selectors import reads_taken_through_services


def test_no_module_of_connections_takes_a_read_through_a_services_module():
    assert reads_taken_through_services("connections") == []
