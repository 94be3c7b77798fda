"""Reads of the portal: one account's summary, bills, usage and prepaid charges. The callers pass an
account already cut to the consumer's own (core.scope), so nothing here widens what is seen."""

from decimal import Decimal
from urllib.parse import quote
from weakref import WeakKeyDictionary

from django.db import connections
from django.urls import reverse
from django.utils.http import RFC3986_SUBDELIMS

from urja.billing.models import Bill, LedgerEntry
from urja.core.money import paise
from urja.customers.models import Account, Consumer
from urja.payments.models import Payment, PaymentStatus, PrepaidCharge

BILL_LIST_FIELDS = ("bill_number", "period_start", "period_end", "bill_date", "due_date", "units", "net_payable")


class Statement:
    """A SELECT of whole model rows (every concrete column of each model, in order) whose SQL and column
    converters are built once per database connection, not compiled by the ORM on every call: the ORM
    spends ~100 Python calls a selected column building the same SQL each time (the picked account with
    its consumer, 36 columns, ~3,700 calls a page). `tables(qn)` gives the FROM and WHERE after the
    column list, with the models' aliases a, b, … in the order of `models`; parameters are bound. Each
    row becomes the instances the ORM would make (Model.from_db, each column converted as its model
    field converts it: SQLite gives dates and decimals back as text)."""

    def __init__(self, *models, tables, only: dict | None = None):
        """`only`: for a model, the names of the fields to read (its primary key always; the others are
        deferred, as QuerySet.only() leaves them)."""
        self.models, self.tables = models, tables
        self.fields = []
        for model in models:
            names = (only or {}).get(model)
            fields = model._meta.concrete_fields
            if names is not None:
                fields = [f for f in fields if f.primary_key or f.name in names]
            self.fields.append(tuple(fields))
        self._built = WeakKeyDictionary()  # connection → (sql, converters)

    def _build(self, connection):
        qn = connection.ops.quote_name
        columns, converters = [], []
        for alias, model, fields in zip("abcdefgh", self.models, self.fields, strict=False):
            for field in fields:
                columns.append(f"{alias}.{qn(field.column)}")
                column = field.get_col(model._meta.db_table)
                chain = tuple(connection.ops.get_db_converters(column) + field.get_db_converters(connection))
                converters.append((chain, column))
        sql = f"SELECT {', '.join(columns)} FROM {self.tables(qn)}"
        return sql, converters

    def rows(self, params: list, *, using: str = "default") -> list[list]:
        """Each row as a list of instances, one per model (None for a model of an outer join that
        found no row: its primary key is NULL)."""
        connection = connections[using]
        built = self._built.get(connection)
        if built is None:
            built = self._built[connection] = self._build(connection)
        sql, converters = built
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            fetched = cursor.fetchall()
        out = []
        for raw in fetched:
            values = list(raw)
            for i, (chain, column) in enumerate(converters):
                if chain and values[i] is not None:
                    for converter in chain:
                        values[i] = converter(values[i], column, connection)
            instances, start = [], 0
            for model, fields in zip(self.models, self.fields, strict=True):
                part = values[start : start + len(fields)]
                start += len(fields)
                pk = part[fields.index(model._meta.pk)]
                names = [f.attname for f in fields]
                instances.append(None if pk is None else model.from_db(using, names, part))
            out.append(instances)
        return out


_PICKED_ACCOUNT = Statement(
    Account,
    Consumer,
    tables=lambda qn: (
        f"{qn(Account._meta.db_table)} a INNER JOIN {qn(Consumer._meta.db_table)} b ON b.id = a.consumer_id"
        " WHERE b.user_id = %s AND a.consumer_number = %s"
    ),
)


def picked_account(user_id: int, consumer_number: str) -> Account | None:
    """The consumer's own account `consumer_number` (core.scope's "own" rule: the account's consumer is
    the signed-in user's), with its consumer, as `Account.objects.select_related("consumer")` gives it —
    read by a statement built once (Statement), as every signed-in portal page reads it."""
    for account, consumer in _PICKED_ACCOUNT.rows([user_id, consumer_number]):
        Account.consumer.field.set_cached_value(account, consumer)
        return account
    return None


def bills(account: Account, *, limit: int = 24) -> list[Bill]:
    """The account's latest bills, each with its page and PDF addresses (`url`, `pdf_url`) built from
    one reverse() per page instead of two or three per row: a list of 24 bills spent more CPU
    resolving URL patterns than reading the bills."""
    rows = [bill for (bill,) in _BILL_LIST.rows([account.pk, limit])]
    return _with_urls(rows)


_BILL_LIST = Statement(  # Bill.objects.filter(account=…).only(*BILL_LIST_FIELDS).order_by("-period_start", "-id")[:n]
    Bill,
    only={Bill: BILL_LIST_FIELDS},
    tables=lambda qn: (
        f"{qn(Bill._meta.db_table)} a WHERE a.account_id = %s ORDER BY a.period_start DESC, a.id DESC LIMIT %s"
    ),
)


def _with_urls(rows: list[Bill]) -> list[Bill]:
    prefix = reverse("portal:bill", args=["0"]).removesuffix("0/")
    for bill in rows:  # quoted as reverse() quotes an argument
        bill.url = f"{prefix}{quote(bill.bill_number, safe=RFC3986_SUBDELIMS + '~:@')}/"
        bill.pdf_url = f"{bill.url}pdf/"
    return rows


def _home_sql() -> str:
    """The latest bill, the balance (billing.ledger.balance: the sum of the account's ledger entries),
    the last posted payment of one account and whether its consumer has another account (the page's
    "Change account"; a consumer's scope is their own accounts, Consumer.user being one-to-one), in one
    statement and always one row. The subqueries take the ids as parameters (not correlated), so
    PostgreSQL runs each once as an index scan (InitPlan) and finds the bill and payment rows by
    primary key."""
    bill, entry, payment = Bill._meta.db_table, LedgerEntry._meta.db_table, Payment._meta.db_table
    return (
        f"SELECT b.id, b.bill_number, b.period_start, b.period_end, b.due_date, b.units, b.net_payable,"
        f" (SELECT SUM(e.amount) FROM {entry} e WHERE e.account_id = %s),"
        f" p.amount, p.received_at, p.receipt_number,"
        f" EXISTS (SELECT 1 FROM {Account._meta.db_table} WHERE consumer_id = %s AND id <> %s)"
        f" FROM (SELECT 1 AS one) o"
        f" LEFT JOIN {bill} b ON b.id = (SELECT id FROM {bill} WHERE account_id = %s"
        f"  ORDER BY period_start DESC, id DESC LIMIT 1)"
        f" LEFT JOIN {payment} p ON p.id = (SELECT id FROM {payment} WHERE account_id = %s AND status = %s"
        f"  ORDER BY received_at DESC LIMIT 1)"
    )


def _home_params(account: Account) -> list:
    return [account.pk, account.consumer_id, account.pk, account.pk, account.pk, PaymentStatus.POSTED]


HOME_COLUMNS = (
    (Bill, "id"),
    (Bill, "bill_number"),
    (Bill, "period_start"),
    (Bill, "period_end"),
    (Bill, "due_date"),
    (Bill, "units"),
    (Bill, "net_payable"),
    (LedgerEntry, "amount"),
    (Payment, "amount"),
    (Payment, "received_at"),
    (Payment, "receipt_number"),
)


def _home_row(account: Account) -> list:
    """One row of _home_sql with each column converted as the ORM converts that model field (dates and
    decimals come back as text or floats from SQLite)."""
    connection = connections[Bill.objects.db]
    with connection.cursor() as cursor:
        cursor.execute(_home_sql(), _home_params(account))
        row = list(cursor.fetchone())
    for i, (model, name) in enumerate(HOME_COLUMNS):
        if row[i] is None:
            continue
        field = model._meta.get_field(name)
        column = field.get_col(model._meta.db_table)
        for converter in connection.ops.get_db_converters(column) + field.get_db_converters(connection):
            row[i] = converter(row[i], column, connection)
    return row


def account_summary(account: Account) -> dict:
    """Home page: what is owed (or the prepaid wallet's balance), the latest bill and last payment, and
    whether the consumer has another account to change to (`several`), in one statement (_home_sql).
    Its ORM form compiled to more Python work than the three queries it replaced (four subqueries), so
    it is written once as SQL."""
    (bill_id, number, start, end, due, units, payable, total, paid, paid_at, receipt, several) = _home_row(account)
    bill = None
    if bill_id is not None:
        bill = Bill(id=bill_id, account_id=account.pk, bill_number=number, period_start=start, period_end=end,
                    due_date=due, units=units, net_payable=payable)  # fmt: skip
        _with_urls([bill])
    balance = paise(Decimal(str(total)) if total is not None else 0)
    last_payment = None
    if receipt is not None:
        last_payment = Payment(amount=paid, received_at=paid_at, receipt_number=receipt)
    summary = {
        "balance": balance,
        "due": max(balance, Decimal("0")),
        "credit": max(-balance, Decimal("0")),
        "bill": bill,
        "last_payment": last_payment,
        "several": bool(several),
    }
    if account.is_prepaid:
        summary["wallet"] = -balance
        summary["charges"] = list(
            PrepaidCharge.objects.filter(wallet__account=account).order_by("-day")[:14].values("day", "kwh", "amount")
        )
    return summary


def usage_chart(account: Account, months: int = 12) -> dict:
    """The last `months` bills' units as SVG bars (server-drawn: no JavaScript needed)."""
    rows = list(
        Bill.objects.filter(account=account)
        .exclude(kind=Bill.Kind.FINAL)
        .order_by("-period_start")
        .values_list("period_start", "units")[:months]
    )[::-1]
    top = max((float(u) for _, u in rows), default=0.0) or 1.0
    width, height, gap = 340, 160, 4
    n = max(len(rows), 1)
    bar = (width - gap * n) / n
    bars = []
    for i, (start, units) in enumerate(rows):
        h = max(1.0, float(units) / top * (height - 34))
        bars.append(
            {
                "x": round(i * (bar + gap), 1),
                "y": round(height - 16 - h, 1),
                "w": round(bar, 1),
                "h": round(h, 1),
                "label": start.strftime("%m/%y"),
                "units": f"{units:.0f}",
                "ty": round(height - 20 - h, 1),
                "cx": round(i * (bar + gap) + bar / 2, 1),
            }
        )
    return {"bars": bars, "width": width, "height": height, "rows": rows}


def web_request_types() -> list:
    """Request and complaint types the channel matrix allows on the website (the active schedule)."""
    from urja.servicedesk import catalogue

    schedule = catalogue.active_schedule()
    column = catalogue.channel_column(schedule, "website")
    return [t for t in schedule.types.order_by("kind", "type_name", "name") if column in t.channels]


def requests_of(account: Account, *, limit: int = 30) -> list:
    from urja.servicedesk.models import ServiceRequest

    return list(
        ServiceRequest.objects.filter(account=account).select_related("request_type").order_by("-registered_at")[:limit]
    )


def applications_of(consumer) -> list:
    """The consumer's new-connection applications (connections app), newest first."""
    from urja.connections.models import Application

    return list(Application.objects.filter(consumer=consumer).order_by("-id")[:20])


def applications_of_mobile(mobile: str) -> list:
    """An applicant's applications: those lodged with the mobile number they proved by a sign-in code
    (Application.mobile, the tracking key of any touch point), newest first."""
    from urja.connections.models import Application

    if not mobile:
        return []
    return list(Application.objects.filter(mobile=mobile).order_by("-id")[:20])


def own_application(*, number: str, consumer=None, mobile: str = ""):
    """The application `number` when it is the consumer's (signed in) or was lodged with the applicant's
    proven `mobile`; None otherwise — another's application answers like a nonexistent one."""
    from urja.connections.models import Application

    found = Application.objects.select_related("section", "account", "consumer")
    number = (number or "").strip().upper()
    if consumer is not None:
        return found.filter(number=number, consumer=consumer).first()
    if mobile:
        return found.filter(number=number, mobile=mobile).first()
    return None


def application_payments(application):
    """Posted payments on the application's pending account (its demand note), for their receipts."""
    if application.account_id is None:
        return Payment.objects.none()
    return Payment.objects.filter(account_id=application.account_id, status=PaymentStatus.POSTED).select_related(
        "account"
    )


def applicant_payments(mobile: str):
    """Posted payments on the pending accounts of the applications lodged with `mobile`."""
    from urja.connections.models import Application

    if not mobile:
        return Payment.objects.none()
    accounts = Application.objects.filter(mobile=mobile, account__isnull=False).values("account_id")
    return Payment.objects.filter(account_id__in=accounts, status=PaymentStatus.POSTED).select_related("account")


def section_offices() -> list:
    """The section offices an applicant picks from (public: the utility's offices)."""
    from urja.network.models import Office

    return list(Office.objects.filter(level="section").select_related("parent").order_by("name"))
