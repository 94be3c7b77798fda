"""`urja demo` builds its history by simulating months through the services (issue 10, part 5):
the simulated consumers have readings, bills and payments made by the services, the other
consumers get the apps' hooks, the hooks pass strictly and the invariants hold over the whole
demo. Runs outside a test transaction (after-commit work happens as in production); the
database is flushed at the end."""

import pytest
from django.core.management import call_command

from urja.demo import build


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        result = build(consumers=40, seed=5, strict_hooks=True, simulate=25, simulate_months=3, stdout=lambda _: None)
        yield result
        call_command("flush", interactive=False, verbosity=0)


@pytest.mark.django_db
def test_demo_history_is_simulated_and_adds_up(demo):
    from urja.billing.models import Bill
    from urja.core.models import AuditEvent
    from urja.payments.models import Payment

    sim = demo.simulation
    assert sim["months"] == 3 and sim["consumers"] == 25 and sim["violations"] == 0
    assert sim["bills"] >= 25 * 3 * 0.8 and sim["payments"] > 10
    assert demo.violations == []  # the whole demo, hooks' data included
    event = AuditEvent.objects.get(action="demo.simulated")
    first, last = event.changes["first_account"], event.changes["last_account"]
    simulated = Bill.objects.filter(account_id__gte=first, account_id__lte=last, kind="bill")
    assert simulated.filter(run__isnull=False).count() == simulated.count() >= 40  # made by bill runs
    assert Payment.objects.filter(account_id__gte=first, account_id__lte=last, status="posted").count() > 10
    # the hooks ran, strictly, for the other accounts
    for module, outcome in demo.hooks.items():
        assert outcome == "not installed" or outcome.startswith(("done for", "up to date")), (module, outcome)
    assert demo.consumers_total == 40


@pytest.mark.django_db
def test_a_second_demo_run_does_not_simulate_again(demo):
    from urja.core.models import AuditEvent

    again = build(consumers=40, seed=5, strict_hooks=True, simulate=25, simulate_months=3, stdout=lambda _: None)
    assert again.simulation == {} and again.consumers_created == 0
    assert AuditEvent.objects.filter(action="demo.simulated").count() == 1
