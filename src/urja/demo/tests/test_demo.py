"""`urja demo`: organisation, consumers and logins are right, on every path, and idempotent."""

import io
import random
from collections import Counter
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from urja.core import ids
from urja.core.models import AuditEvent, StaffProfile
from urja.customers import rules
from urja.customers.models import Account, AccountGroup, Consumer, Contact
from urja.customers.services import _power_factor, kam_threshold_kw, validate_consumer_number, validate_load
from urja.demo import build, consumers, generator, run_hooks
from urja.demo.staff import DEMO_PASSWORD, LOGINS
from urja.network.models import CareCentre, DistributionTransformer, Feeder, MiniGridSite, Office

FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = FAST_HASHER


def quiet(_line: str) -> None:
    pass


def assert_demo_is_consistent():
    accounts = list(Account.objects.select_related("consumer"))
    assert accounts
    for a in accounts:
        # every consumer number passes its check digit
        assert ids.has_valid_check(a.consumer_number), a.consumer_number
        assert validate_consumer_number(a.consumer_number) == a.consumer_number
        # every load fits its supply type (raises DomainError otherwise)
        validate_load(supply_type=a.supply_type, load=a.sanctioned_load, unit=a.load_unit)
        # key-account manager exactly above the threshold (seed 000)
        above = rules.load_in_kw(a.sanctioned_load, a.load_unit, _power_factor()) > kam_threshold_kw()
        assert (a.key_account_manager_id is not None) == above, (a.consumer_number, a.sanctioned_load, a.load_unit)
        assert a.office_path == a.section.path and a.section.level == "section"
        assert a.premises_address and a.pincode and a.latitude and a.longitude
        assert Decimal("19") < a.latitude < Decimal("23") and Decimal("85") < a.longitude < Decimal("88")
    assert len({a.consumer_number for a in accounts}) == len(accounts)
    mobiles = list(Contact.objects.filter(kind="mobile"))
    for c in mobiles:
        assert rules.normalise_mobile(c.value) == c.value and c.verified
    assert {c.preferred_language for c in Consumer.objects.all()} <= {"en", "hi", "or"}
    return accounts


@pytest.mark.django_db
def test_small_demo_builds_organisation_consumers_logins_and_is_idempotent():
    result = build(consumers=60, seed=7, hooks=False, stdout=quiet)
    assert result.path == "services"

    # organisation: utility → 5 circles → the 16 divisions of seed 003 → sub-divisions → sections
    assert Office.objects.filter(level="utility").count() == 1
    assert set(Office.objects.filter(level="circle").values_list("name", flat=True)) == {
        "Balasore Electrical Circle",
        "Bhadrak Electrical Circle",
        "Baripada Electrical Circle",
        "Jajpur Electrical Circle",
        "Keonjhar Electrical Circle",
    }
    assert Office.objects.filter(level="division").count() == 16
    assert Office.objects.filter(level="section").count() == 64
    assert CareCentre.objects.count() == 16
    bed = CareCentre.objects.get(office__code="D-BED")
    assert bed.officer_in_charge == "Abhishek Boitei"
    assert "Artung, Balia, Balasore - 756001" in bed.address
    assert "9:30 AM to 5:30 PM" in bed.hours
    joda = CareCentre.objects.get(office__code="D-JODA")
    assert joda.officer_in_charge == "Sidhiprangyan Behera" and "Joda - 758038" in joda.address
    assert Office.objects.get(code="D-JRED").parent.code == "C-JJP"
    # every section has its three grid feeders and six DTs; a mini-grid site has its own bus feeder and DT
    site_dts = set(MiniGridSite.objects.values_list("transformer_id", flat=True))
    assert None not in site_dts and len(site_dts) == MiniGridSite.objects.count() >= 1
    site_feeders = set(DistributionTransformer.objects.filter(pk__in=site_dts).values_list("feeder_id", flat=True))
    for section in Office.objects.filter(level="section"):
        assert Feeder.objects.filter(office=section).exclude(pk__in=site_feeders).count() == 3
        assert DistributionTransformer.objects.filter(feeder__office=section).exclude(pk__in=site_dts).count() == 6

    accounts = assert_demo_is_consistent()
    assert result.consumers_created == 60
    # special accounts: key accounts (HT/EHT), groups, the mini-grid, the consumer login's home
    ht = [a for a in accounts if a.supply_type in ("ht", "eht")]
    assert len([a for a in ht if a.key_account_manager_id]) >= 6
    assert any(a.supply_type == "ht" and a.key_account_manager_id is None for a in ht)  # 100 kVA = 90 kW
    assert AccountGroup.objects.count() == 5
    for group in AccountGroup.objects.all():
        assert group.accounts.count() >= 3 and group.key_account_manager.username == "kam"
        assert group.accounts.values("consumer").distinct().count() == 1
    site = MiniGridSite.objects.get()
    minigrid = [a for a in accounts if a.minigrid_site_id == site.pk]
    assert len(minigrid) >= 5
    assert all(a.category == "minigrid" and a.is_prepaid and a.package_code.startswith("MG-") for a in minigrid)
    assert site.office.level == "section"

    # the mix: mostly domestic, Odia names, all three languages
    demo = Account.objects.filter(group__isnull=True, minigrid_site__isnull=True).exclude(supply_type__in=["ht", "eht"])
    categories = Counter(demo.values_list("category", flat=True))
    assert categories.most_common(1)[0][0] == "domestic"
    surnames = {n.split()[-1] for n in Consumer.objects.filter(kind="person").values_list("name", flat=True)}
    assert surnames & {"Behera", "Mohanty", "Sahoo", "Panda", "Das", "Nayak", "Mishra", "Pradhan", "Jena", "Swain"}
    assert set(Consumer.objects.values_list("preferred_language", flat=True)) == {"en", "hi", "or"}
    # audit trail: the services recorded the registrations
    assert AuditEvent.objects.filter(action="account.opened").count() == len(accounts)

    # staff logins work; offices are set sensibly
    client = Client()
    for login in LOGINS:
        assert client.login(username=login.username, password=DEMO_PASSWORD), login.username
        client.logout()
    assert StaffProfile.objects.get(user__username="cre").office.code == "D-BED"
    assert StaffProfile.objects.get(user__username="manager").office.level == "circle"
    assert get_user_model().objects.get(username="admin").is_superuser
    consumer_user = get_user_model().objects.get(username="consumer")
    assert consumer_user.consumer.accounts.get().section.code.startswith("S-BED-")

    # running again adds nothing
    counts = (Office.objects.count(), Consumer.objects.count(), Account.objects.count(), Contact.objects.count())
    again = build(consumers=60, seed=7, hooks=False, stdout=quiet)
    assert again.consumers_created == 0 and again.accounts_created == 0
    assert counts == (
        Office.objects.count(),
        Consumer.objects.count(),
        Account.objects.count(),
        Contact.objects.count(),
    )
    assert get_user_model().objects.filter(username="cre").count() == 1


@pytest.mark.django_db
def test_bulk_path_keeps_every_rule_and_tops_up():
    result = build(consumers=70, seed=3, bulk=True, chunk=25, hooks=False, stdout=quiet)
    assert result.path == "bulk"
    assert result.consumers_created == 70
    assert_demo_is_consistent()
    bulk = Account.objects.filter(group__isnull=True, minigrid_site__isnull=True, consumer__user__isnull=True).exclude(
        supply_type__in=["ht", "eht"]
    )
    assert bulk.count() == 70
    # e-mails and Aadhaar masks written by the bulk path
    assert Contact.objects.filter(kind="email", consumer__accounts__in=bulk).exists()
    masked = [m for m in Consumer.objects.values_list("aadhaar_masked", flat=True) if m]
    assert masked and all(m.startswith("XXXX XXXX ") and len(m) == 14 for m in masked)
    # a larger N tops up; mobiles stay distinct
    build(consumers=95, seed=3, bulk=True, hooks=False, stdout=quiet)
    assert bulk.count() == 95
    values = list(Contact.objects.filter(kind="mobile").values_list("value", flat=True))
    assert len(values) == len(set(values))
    assert_demo_is_consistent()


@pytest.mark.django_db(transaction=True)
def test_postgres_fast_load_rebuilds_indexes_and_foreign_keys(on_postgres):
    if not on_postgres:
        pytest.skip("the fast load is PostgreSQL only")

    def schema():
        with connection.cursor() as cur:
            cur.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename IN "
                "('customers_account', 'customers_consumer', 'customers_contact') ORDER BY 1"
            )
            indexes = [r[0] for r in cur.fetchall()]
            cur.execute(
                "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text IN "
                "('customers_account', 'customers_consumer', 'customers_contact') ORDER BY 1"
            )
            return indexes, [r[0] for r in cur.fetchall()]

    before = schema()
    result = build(consumers=90, seed=5, bulk=True, fast=True, chunk=40, hooks=False, stdout=quiet)
    assert "fast load" in result.path and result.timings["indexes"] >= 0
    assert schema() == before
    assert_demo_is_consistent()
    assert (
        Account.objects.filter(consumer__user__isnull=True, group__isnull=True, minigrid_site__isnull=True)
        .exclude(supply_type__in=["ht", "eht"])
        .count()
        == 90
    )


def test_generated_mobiles_are_distinct_valid_indian_numbers():
    numbers = [generator.mobile_for(i) for i in range(20_000)]
    assert len(set(numbers)) == len(numbers)
    rng = random.Random(1)
    sample = numbers[:300] + [generator.mobile_for(rng.randrange(10**7)) for _ in range(300)]
    for prefix in generator.MOBILE_PREFIXES:  # every series, not just the ones the sample hit
        sample += [f"+91{prefix}{rng.randrange(10**6):06d}" for _ in range(40)]
    assert all(rules.normalise_mobile(n) == n for n in sample)


def test_generated_aadhaar_numbers_pass_verhoeff():
    rng = random.Random(2)
    assert all(rules.aadhaar_valid(generator.aadhaar_for(rng)) for _ in range(500))


@pytest.mark.django_db
def test_every_load_profile_fits_its_supply_type():
    profiles = consumers.validated_profiles()
    assert {p.supply_type for p in profiles} >= {"lt_1ph", "lt_3ph", "ht", "temporary"}
    assert any(consumers.needs_key_account_manager(p) for p in profiles)
    assert abs(sum(p.weight for p in profiles) - 100) < 1


# -- hooks: this module stands in for another app's demo module ---------------------------------
CALLS: list[dict] = []


def populate(*, accounts, staff, rng, site=None):
    CALLS.append({"accounts": list(accounts), "staff": staff, "rng": rng, "site": site})


@pytest.mark.django_db
def test_hooks_are_called_once_with_the_contract_and_missing_apps_are_skipped(monkeypatch):
    import urja.demo as demo

    monkeypatch.setattr(demo, "HOOKS", ("urja.core.tests.no_such_demo_module", __name__))
    CALLS.clear()
    result = build(consumers=12, seed=9, stdout=quiet)
    assert result.hooks["urja.core.tests.no_such_demo_module"] == "not installed"
    assert len(CALLS) == 1
    call = CALLS[0]
    assert len(call["accounts"]) == Account.objects.count()
    assert all(isinstance(a, Account) for a in call["accounts"])
    assert call["staff"]["cre"].username == "cre" and call["staff"]["field_agent"].username == "agent"
    assert call["staff"]["mgagent"].staff.role == "field_agent"
    assert isinstance(call["rng"], random.Random)
    assert call["site"] == MiniGridSite.objects.get()
    # nothing new: not called again; more consumers: called with just the new accounts
    build(consumers=12, seed=9, stdout=quiet)
    assert len(CALLS) == 1
    build(consumers=15, seed=9, stdout=quiet)
    assert len(CALLS) == 2 and len(CALLS[1]["accounts"]) == 3


@pytest.mark.django_db
def test_hook_failure_names_the_hook_and_rolls_back_its_work(monkeypatch):
    import urja.demo as demo

    result = build(consumers=5, seed=1, hooks=False, stdout=quiet)

    class Broken:
        @staticmethod
        def populate(*, accounts, staff, rng):
            AccountGroup.objects.create(name="half-done", kind="other")
            raise ValueError("boom")

    class Fine:
        calls = 0

        @classmethod
        def populate(cls, *, accounts, staff, rng):
            cls.calls += 1

    monkeypatch.setattr(demo, "import_module", lambda name: Broken if name == "urja.fake.demo" else Fine)
    monkeypatch.setattr(demo, "HOOKS", ("urja.fake.demo", "urja.fine.demo"))
    with pytest.raises(RuntimeError, match=r"urja.fake.demo.populate failed: boom"):
        run_hooks(org=result.organisation, staff=result.staff, new_ids=[], seed=1, stdout=quiet, strict=True)
    assert not AccountGroup.objects.filter(name="half-done").exists()
    assert Fine.calls == 0
    # by default (make run): reported, rolled back, the next hook still runs; retried next time
    outcome = run_hooks(org=result.organisation, staff=result.staff, new_ids=[], seed=1, stdout=quiet)
    assert outcome["urja.fake.demo"].startswith("FAILED") and "boom" in outcome["urja.fake.demo"]
    assert outcome["urja.fine.demo"].startswith("done") and Fine.calls == 1
    assert not AccountGroup.objects.filter(name="half-done").exists()
    again = run_hooks(org=result.organisation, staff=result.staff, new_ids=[], seed=1, stdout=quiet)
    assert again["urja.fake.demo"].startswith("FAILED") and again["urja.fine.demo"] == "up to date"


@pytest.mark.django_db
def test_demo_command_prints_the_logins_and_rejects_bad_sizes():
    out = io.StringIO()
    call_command("demo", consumers=8, no_hooks=True, stdout=out)
    text = out.getvalue()
    assert "Demo ready" in text and "urja-demo" in text
    for login in LOGINS:
        assert login.username in text
    with pytest.raises(CommandError):
        call_command("demo", consumers=-1, stdout=io.StringIO())


def test_hook_arguments_follow_each_populate_signature():
    from collections.abc import Iterable

    from urja.demo import hook_arguments

    cre, agent = object(), object()
    available = {"accounts": [1], "staff": {"cre": cre, "field_agent": agent, "agent": agent}, "rng": 1, "seed": 5}

    def with_dict(*, accounts, staff: dict, rng):
        pass

    def with_iterable(*, accounts, staff: Iterable, rng):
        pass

    def positional_with_seed(accounts, staff, *, seed=6):
        pass

    def anything(**kwargs):
        pass

    assert hook_arguments(with_dict, **available) == {"accounts": [1], "staff": available["staff"], "rng": 1}
    assert hook_arguments(with_iterable, **available)["staff"] == [cre, agent]
    assert hook_arguments(positional_with_seed, **available) == {
        "accounts": [1],
        "staff": available["staff"],
        "seed": 5,
    }
    assert hook_arguments(anything, **available) == available


@pytest.mark.django_db
def test_the_real_hooks_of_the_other_apps_run_on_a_small_demo():
    import urja.demo as demo

    result = build(consumers=6, seed=11, strict_hooks=True, stdout=quiet)
    assert set(result.hooks) == set(demo.HOOKS)
    for module, outcome in result.hooks.items():
        assert outcome == "not installed" or outcome.startswith("done for"), (module, outcome)
