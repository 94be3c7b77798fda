"""Reads of the portal: one account's summary, bills, usage and prepaid charges. The callers pass an
account already cut to the consumer's own (core.scope), so nothing here widens what is seen."""

from decimal import Decimal

from urja.billing import ledger
from urja.billing.models import Bill
from urja.customers.models import Account
from urja.payments.models import Payment, PaymentStatus, PrepaidCharge


def latest_bill(account: Account) -> Bill | None:
    return Bill.objects.filter(account=account).order_by("-period_start", "-id").first()


def bills(account: Account, *, limit: int = 24) -> list[Bill]:
    return list(
        Bill.objects.filter(account=account)
        .only("bill_number", "period_start", "period_end", "bill_date", "due_date", "units", "net_payable", "kind")
        .order_by("-period_start", "-id")[:limit]
    )


def account_summary(account: Account) -> dict:
    """Home page: what is owed (or the prepaid wallet's balance), the latest bill and last payment."""
    balance = ledger.balance(account=account)
    last_payment = (
        Payment.objects.filter(account=account, status=PaymentStatus.POSTED)
        .only("receipt_number", "amount", "received_at")
        .order_by("-received_at")
        .first()
    )
    summary = {
        "balance": balance,
        "due": max(balance, Decimal("0")),
        "credit": max(-balance, Decimal("0")),
        "bill": latest_bill(account),
        "last_payment": last_payment,
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
