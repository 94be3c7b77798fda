"""Billing's scoped lookups (read-only): a bill or an account the caller may see, or the very same
NotFound as for one that does not exist (core.scope)."""

from urja.core.errors import NotFound
from urja.core.scope import get_scoped, not_found, scope_accounts
from urja.customers.models import Account

from .models import Bill, BillException, BillRevision


def scoped_account(user, consumer_number: str) -> Account:
    number = (consumer_number or "").strip().upper()
    accounts = scope_accounts(user, Account.objects.select_related("consumer"))
    return get_scoped(accounts, not_found("account", number), consumer_number=number)


def scoped_bill(user, bill_number: str) -> Bill:
    """Out of scope answers `404 bill_not_found "no bill <number>"`, like a bill that does not exist
    (never the account's consumer number)."""
    number = (bill_number or "").strip().upper()
    bills = scope_accounts(user, Bill.objects.select_related("account", "account__consumer", "run"), "account__")
    return get_scoped(bills, NotFound(f"no bill {number}", code="bill_not_found"), bill_number=number)


def exceptions_in_scope(user, run):
    return scope_accounts(user, BillException.objects.filter(run=run), "account__")


def scoped_revision(user, revision_id: int) -> BillRevision:
    revisions = scope_accounts(user, BillRevision.objects.select_related("bill", "bill__account"), "bill__account__")
    return get_scoped(revisions, not_found("revision", revision_id), pk=revision_id)


def accounts_in_scope(user):
    return scope_accounts(user, Account.objects.all())


def revisions_in_scope(user):
    return scope_accounts(
        user,
        BillRevision.objects.select_related("bill", "bill__account", "proposed_by", "decided_by"),
        "bill__account__",
    )
