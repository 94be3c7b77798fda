"""The key-account manager's portfolio (issue 15 part 6): the accounts above the key-account
threshold and the account groups in the user's scope — consumption, maximum demand against the
contract demand, arrears, open requests — and a group's consolidated statement.

Reads only (a selector module of the shell): the scope is core.scope's (a key-account manager's
rule is already "key_accounts"; a manager sees the same cut of its office).
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from urja.core import scope
from urja.customers.models import Account, AccountGroup


def key_accounts(user) -> QuerySet:
    return (
        scope.scope_accounts(user, Account.objects.all())
        .filter(scope._key_account_q(""))
        .select_related("consumer", "group", "section")
    )


def annotate(accounts: list[Account]) -> list[Account]:
    """Adds .balance, .last_bill (units, recorded MD, period) and .open_requests to each account
    (three queries for the page, not three per row)."""
    from urja.billing.models import Bill, LedgerEntry
    from urja.servicedesk.models import ServiceRequest

    ids = [a.pk for a in accounts]
    sums = LedgerEntry.objects.filter(account_id__in=ids).values("account_id").annotate(t=Sum("amount"))
    balances = dict(sums.values_list("account_id", "t"))
    last_bills: dict[int, Bill] = {}
    for bill in Bill.objects.filter(account_id__in=ids).order_by("account_id", "-period_start"):
        last_bills.setdefault(bill.account_id, bill)
    open_requests = dict(
        ServiceRequest.objects.filter(account_id__in=ids, closed_at__isnull=True)
        .values("account_id").annotate(n=Count("id")).values_list("account_id", "n")
    )  # fmt: skip
    for account in accounts:
        account.balance = balances.get(account.pk) or Decimal("0")
        account.last_bill = last_bills.get(account.pk)
        md = account.last_bill.recorded_md if account.last_bill else None
        account.md_percent = (
            round(100 * md / account.sanctioned_load) if md is not None and account.sanctioned_load else None
        )
        account.open_requests = open_requests.get(account.pk, 0)
    return accounts


def groups(user) -> list[dict]:
    """Groups with at least one connection in scope: connections, arrears (sum of positive balances)."""
    from urja.billing.models import LedgerEntry

    accounts = scope.scope_accounts(user, Account.objects.filter(group__isnull=False))
    rows = []
    for group in AccountGroup.objects.filter(accounts__in=accounts).distinct().order_by("name"):
        mine = accounts.filter(group=group)
        total = LedgerEntry.objects.filter(account__in=mine).aggregate(t=Sum("amount"))["t"] or Decimal("0")
        rows.append({"group": group, "connections": mine.count(), "balance": total})
    return rows


def group_statement(user, group_id: int) -> tuple[AccountGroup, list[Account]] | None:
    accounts = list(key_accounts(user).filter(group_id=group_id).order_by("consumer_number"))
    if not accounts:
        return None  # a group without a connection in scope answers like one that does not exist
    return accounts[0].group, annotate(accounts)


def search(queryset: QuerySet, q: str) -> QuerySet:
    words = Q()
    for word in q.split()[:4]:
        words &= Q(consumer__name__icontains=word) | Q(group__name__icontains=word)
    return queryset.filter(words | Q(consumer_number__startswith=q.upper()))
