"""core.scope on accounts: the account scope per role (data/core/permissions.toml), incl. the kVA
key-account threshold, and the 'everything' scope surviving an OR."""

from urja.core import scope
from urja.customers.models import Account
from urja.demo import testing


def test_account_scope_per_role(offices):
    home1 = testing.domestic_account(offices["section1"])
    home2 = testing.domestic_account(offices["section2"], name="B", mobile="9437011112")
    # 120 kVA x 0.9 = 108 kW > 100 kW: a key account; 100 kVA x 0.9 = 90 kW is not
    big = testing.domestic_account(
        offices["section1"], name="Mill", mobile="9437011113", load="120", unit="kVA", supply_type="ht",
        category="industrial", sub_category="large",
    )  # fmt: skip
    small = testing.domestic_account(
        offices["section1"], name="Shop", mobile="9437011114", load="100", unit="kVA", supply_type="ht",
        category="industrial", sub_category="large",
    )  # fmt: skip

    def seen(user):
        return set(scope.scope_accounts(user, Account.objects.all()).values_list("pk", flat=True))

    assert seen(testing.staff_user("cre", offices["division1"])) == {home1.pk, big.pk, small.pk}
    assert seen(testing.staff_user("field_agent", offices["section2"])) == {home2.pk}
    assert seen(testing.staff_user("key_account_manager", offices["utility"])) == {big.pk}
    assert seen(testing.staff_user("admin", None)) == {home1.pk, home2.pk, big.pk, small.pk}
    assert seen(testing.staff_user("consumer", None)) == set()


def test_everything_survives_an_or(offices):
    """`Q() | Q(x)` is `Q(x)` in Django: the 'all' scope must stay 'all' when OR-ed (it once hid an
    admin's own payments)."""
    account = testing.domestic_account(offices["section1"])
    admin = testing.staff_user("admin", None)
    q = scope.account_q(admin) | scope.office_q(admin, "office_path") | scope.NOTHING
    assert Account.objects.filter(q).filter(pk=account.pk).exists()
