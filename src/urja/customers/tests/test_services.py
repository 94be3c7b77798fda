from decimal import Decimal

import pytest

from urja.core import ids
from urja.core.errors import DomainError, TransitionNotAllowed
from urja.core.models import AuditEvent
from urja.customers import services
from urja.customers.models import Account, AccountStatus, Consumer, Contact
from urja.customers.rules import aadhaar_valid, mask_aadhaar
from urja.demo.testing import domestic_account, staff_user

VALID_AADHAAR = "234123412346"  # Verhoeff-valid test number


def test_aadhaar_validation_and_masking():
    assert aadhaar_valid(VALID_AADHAAR)
    assert not aadhaar_valid("234123412345")  # wrong check digit
    assert not aadhaar_valid("123412341234")  # may not start with 1
    assert mask_aadhaar(VALID_AADHAAR) == "XXXX XXXX 2346"


@pytest.mark.django_db
def test_open_account_gives_a_checked_number_and_audits(offices):
    account = domestic_account(offices["section1"])
    assert ids.has_valid_check(account.consumer_number)
    # the number's first 3 digits are the division's id (its last 3 digits once ids pass 999)
    assert account.consumer_number.startswith(f"{offices['division1'].pk % 1000:03d}")
    assert account.office_path == offices["section1"].path
    assert AuditEvent.objects.filter(object_id=str(account.pk), action="account.opened").exists()
    assert Contact.objects.get(consumer=account.consumer).value == "+919437012345"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("supply", "load", "unit", "code"),
    [
        ("lt_1ph", "12", "kW", "load_out_of_range"),
        ("lt_1ph", "0", "kW", "load_out_of_range"),
        ("lt_3ph", "80", "kVA", "load_out_of_range"),
        ("lt_3ph", "5", "kW", "load_out_of_range"),
        ("ht", "50", "kVA", "load_out_of_range"),
        ("lt_9ph", "2", "kW", "unknown_supply_type"),
        ("lt_1ph", "2", "hp", "invalid_load_unit"),
    ],
)
def test_load_outside_supply_range_is_refused_and_nothing_saved(offices, supply, load, unit, code):
    consumer = services.register_consumer(actor=None, channel="system", name="Test")
    before = Account.objects.count()
    with pytest.raises(DomainError) as err:
        services.open_account(
            actor=None,
            channel="system",
            consumer=consumer,
            section=offices["section1"],
            premises_address="x",
            category="domestic",
            supply_type=supply,
            sanctioned_load=load,
            load_unit=unit,
        )
    assert err.value.code == code
    assert Account.objects.count() == before


@pytest.mark.django_db
def test_loads_at_the_edges_of_ranges_are_accepted(offices):
    for supply, load, unit in [
        ("lt_1ph", "5", "kW"),
        ("lt_3ph", "5.5", "kW"),
        ("lt_3ph", "70", "kVA"),
        ("ht", "70.5", "kVA"),
        ("eht", "20000", "kVA"),
    ]:
        assert services.validate_load(supply_type=supply, load=load, unit=unit) == Decimal(load)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"contacts": [services.ContactInput("mobile", "12345")]}, "invalid_mobile"),
        ({"contacts": [services.ContactInput("mobile", "+1 650 253 0000")]}, "invalid_mobile"),
        ({"contacts": [services.ContactInput("email", "not-an-email")]}, "invalid_email"),
        ({"aadhaar": "234123412345"}, "invalid_aadhaar"),
        ({"applicant_type": "alien"}, "unknown_applicant_type"),
        ({"preferred_language": "fr"}, "invalid_language"),
        ({"name": "   "}, "name_required"),
    ],
)
def test_bad_consumer_input_is_refused_and_nothing_saved(kwargs, code):
    kwargs = {"name": "Ramesh Sahoo", **kwargs}
    with pytest.raises(DomainError) as err:
        services.register_consumer(actor=None, channel="system", **kwargs)
    assert err.value.code == code
    assert Consumer.objects.count() == 0 and Contact.objects.count() == 0


@pytest.mark.django_db
def test_unknown_office_is_refused(offices):
    consumer = services.register_consumer(actor=None, channel="system", name="Test")
    with pytest.raises(DomainError) as err:
        services.open_account(
            actor=None,
            channel="system",
            consumer=consumer,
            section="NOPE",
            premises_address="x",
            category="domestic",
            supply_type="lt_1ph",
            sanctioned_load=2,
        )
    assert err.value.code == "unknown_office"


@pytest.mark.django_db
def test_invalid_consumer_number_is_refused(account):
    wrong = account.consumer_number[:-1] + str((int(account.consumer_number[-1]) + 1) % 10)
    with pytest.raises(DomainError) as err:
        services.get_account(consumer_number=wrong)
    assert err.value.code == "invalid_consumer_number"
    assert services.get_account(consumer_number=account.consumer_number) == account


@pytest.mark.django_db
def test_key_account_manager_follows_the_load(offices):
    division_kam = staff_user("key_account_manager", offices["division1"])
    staff_user("key_account_manager", offices["division2"])
    account = domestic_account(
        offices["section1"], category="industrial", sub_category="large", supply_type="ht", load="150", unit="kVA"
    )
    assert account.key_account_manager == division_kam  # 150 kVA x 0.9 = 135 kW > 100 kW, nearest KAM
    account = services.change_sanctioned_load(actor=None, channel="system", account=account, load="100", unit="kVA")
    assert account.key_account_manager is None  # 90 kW is not above the threshold
    account = services.change_sanctioned_load(actor=None, channel="system", account=account, load="200", unit="kVA")
    assert account.key_account_manager == division_kam


@pytest.mark.django_db
def test_small_accounts_have_no_key_account_manager(offices):
    staff_user("key_account_manager", offices["division1"])
    assert domestic_account(offices["section1"]).key_account_manager is None


@pytest.mark.django_db
def test_status_machine(account):
    account = services.change_account_status(
        actor=None, channel="system", account=account, status=AccountStatus.BANNED, reason="non-payment"
    )
    account = services.change_account_status(
        actor=None, channel="system", account=account, status=AccountStatus.PERMANENTLY_DISCONNECTED, reason="surrender"
    )
    with pytest.raises(TransitionNotAllowed):
        services.change_account_status(
            actor=None, channel="system", account=account, status=AccountStatus.ACTIVE, reason="oops"
        )
    with pytest.raises(DomainError) as err:
        services.change_account_status(
            actor=None,
            channel="system",
            account=Account.objects.get(pk=account.pk),
            status="temp_disconnected",
            reason="",
        )
    assert err.value.code == "transition_not_allowed"


@pytest.mark.django_db
def test_kyc_documents_are_typed_by_the_matrix_and_aadhaar_masked(account):
    consumer = account.consumer
    doc = services.add_kyc_document(
        actor=None,
        channel="system",
        consumer=consumer,
        document_code="identity_proof",
        proof_type="aadhaar",
        number=VALID_AADHAAR,
    )
    assert doc.number_masked == "XXXX XXXX 2346"
    consumer.refresh_from_db()
    assert consumer.aadhaar_masked == "XXXX XXXX 2346"
    assert VALID_AADHAAR not in str(AuditEvent.objects.filter(object_id=str(consumer.pk)).values_list("changes"))
    with pytest.raises(DomainError) as err:
        services.add_kyc_document(
            actor=None, channel="system", consumer=consumer, document_code="identity_proof", proof_type="gym_card"
        )
    assert err.value.code == "proof_type_not_accepted"
    with pytest.raises(DomainError):
        services.add_kyc_document(actor=None, channel="system", consumer=consumer, document_code="selfie")


def test_document_matrix_for_tenant():
    codes = {d["code"] for d in services.required_documents("tenant")}
    assert {"identity_proof", "photograph", "ownership_proof", "tenancy_proof", "owner_noc"} <= codes
    assert "certificate_of_incorporation" not in codes


@pytest.mark.django_db
def test_search_by_number_mobile_and_name(offices):
    a = domestic_account(offices["section1"], name="Sunita Behera", mobile="9437012345")
    b = domestic_account(offices["section1"], name="Prakash Mohanty", mobile="9861122334")
    qs = Account.objects.all()
    assert list(services.search_accounts(queryset=qs, query=a.consumer_number)) == [a]
    assert list(services.search_accounts(queryset=qs, query="98611 22334")) == [b]
    assert list(services.search_accounts(queryset=qs, query="+919437012345")) == [a]
    assert list(services.search_accounts(queryset=qs, query="prakash")) == [b]
    assert list(services.search_accounts(queryset=qs, query="")) == []
