"""Helpers for benchmarks: a fixed organisation and bulk accounts to work on."""

import time
from contextlib import contextmanager


@contextmanager
def timer(result: dict):
    start = time.perf_counter()
    yield
    result["seconds"] = time.perf_counter() - start


def bulk_accounts(n: int, *, office_prefix: str, number_prefix: str, name: str):
    """n plain domestic accounts (one consumer each) in a new test section, bulk-inserted."""
    from decimal import Decimal

    from urja.core.testing import office_tree
    from urja.customers.models import Account, Consumer

    section = office_tree(prefix=office_prefix)["section1"]
    consumers = Consumer.objects.bulk_create([Consumer(name=f"{name} {i}") for i in range(n)], batch_size=5000)
    accounts = Account.objects.bulk_create(
        [
            Account(
                consumer_number=f"{number_prefix}{i:08d}",
                consumer=c,
                premises_address="Bench",
                category="domestic",
                supply_type="lt_1ph",
                sanctioned_load=Decimal(2),
                section=section,
                office_path=section.path,
            )
            for i, c in enumerate(consumers)
        ],
        batch_size=5000,
    )
    return section, accounts
