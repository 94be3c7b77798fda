"""core.scope: the rules table (data/core/permissions.toml); the account scope per role is tested
with the customers model in customers/tests/test_account_scope.py."""

from urja.core import scope


def test_collect_table():
    assert scope.collect_scope("field_agent") == "office"
    assert scope.collect_scope("counter") == "utility"
    assert scope.rules()["collect"].get("key_account_manager") is None
