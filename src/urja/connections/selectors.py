"""Read-only queries of the connections app, every one through core.scope (out of scope answers
exactly like nonexistent), and the unscoped reads a touch point makes with the applicant's own proof
(application number and mobile)."""

from decimal import Decimal

from django.db.models import Q, QuerySet

from urja.billing import ledger as billing_ledger
from urja.core import ids, regdata
from urja.core.errors import NotFound
from urja.core.scope import account_rule, get_scoped, not_found, record_q, scope_records
from urja.customers import rules as customer_rules
from urja.customers.selectors import section_transformers, usual_placement

from . import rules
from .models import Application, ChangeRequest, Order
from .refusals import refuse


def applications_in_scope(user) -> QuerySet:
    """Staff: their office subtree; key-account manager and consumer: the applications whose (pending
    or new) account is theirs."""
    qs = Application.objects.select_related("section", "consumer", "account")
    where = record_q(user, account_prefix="account__", office_path_field="office_path")
    if account_rule(user) == "own":  # a consumer's own applications, before any account exists
        where |= Q(consumer__user=user)
    return qs.filter(where)


def scoped_application(user, number: str) -> Application:
    return get_scoped(applications_in_scope(user), not_found("application", number), number=(number or "").upper())


def change_requests_in_scope(user) -> QuerySet:
    qs = ChangeRequest.objects.select_related("account", "account__consumer", "inspection")
    return scope_records(user, qs, account_prefix="account__", office_path_field="office_path")


def scoped_change_request(user, number: str) -> ChangeRequest:
    return get_scoped(
        change_requests_in_scope(user), not_found("change_request", number), number=(number or "").upper()
    )


def orders_in_scope(user) -> QuerySet:
    qs = Order.objects.select_related("account", "account__consumer")
    return scope_records(user, qs, account_prefix="account__", office_path_field="office_path")


def scoped_order(user, number: str) -> Order:
    return get_scoped(orders_in_scope(user), not_found("order", number), number=(number or "").upper())


def queue_counts(user) -> dict[str, int]:
    """Applications by status in the user's scope (the queue page's tabs)."""
    from django.db.models import Count

    rows = applications_in_scope(user).order_by().values("status").annotate(n=Count("pk"))
    return {row["status"]: row["n"] for row in rows}


def sections_in_scope(user):
    """Section offices the user may register applications for (the registration form's choices)."""
    from urja.core.scope import scope_offices
    from urja.network.models import Office

    return scope_offices(user, Office.objects.filter(level="section").order_by("name"), "path")


def nearest_transformer(application: Application):
    """The section's DT nearest to the premises (those with a mapped geo point), or None: the
    inspection's default connecting point. A section has a handful of DTs: measured here."""
    best, best_d = None, None
    for dt in section_transformers(application.section).exclude(latitude__isnull=True).exclude(longitude__isnull=True):
        d = rules.distance_m(application.latitude, application.longitude, dt.latitude, dt.longitude)
        if best_d is None or d < best_d:
            best, best_d = dt, d
    return best


def default_placement(application: Application) -> dict:
    """Where energization puts the new account unless the engineer says otherwise: the inspection's
    connecting point, and the bill cycle and route most accounts of the section in the supply type's
    cycle class are read in; a section with none starts the route the data file names."""
    from .services import data  # services reads through this module

    placement = data()["placement"]
    inspection = getattr(application, "inspection", None)
    cycle = placement["cycle_of"].get(application.supply_type, placement["default_cycle"])
    separate = tuple(placement["separate_cycles"])
    usual = usual_placement(
        application.section, **({"cycle": cycle} if cycle in separate else {"other_than": separate})
    )
    return {
        "transformer": inspection.transformer if inspection is not None else None,
        "bill_cycle": usual.get("bill_cycle", cycle),
        "route": usual.get("route") or placement["new_route"].format(section=application.section.code, cycle=cycle),
    }


# --- tracking (any touch point) ------------------------------------------------------------------


def outstanding(application: Application) -> Decimal:
    """What is still to pay on the demand note (the pending account's balance)."""
    if application.account_id is None:
        return Decimal("0.00")
    return max(billing_ledger.balance(account=application.account), Decimal("0.00"))


def is_application_number(number: str) -> bool:
    """Does `number` look like an application number (the template's prefix, then digits)? Lets a
    touch point tell it from a complaint or consumer number; `track` judges the rest (a wrong check
    character answers like an unknown number)."""
    prefix = regdata.load("connections/connections.toml")["numbers"]["application_template"].split("{", 1)[0]
    number = (number or "").strip().upper()
    rest = number.removeprefix(prefix)
    return bool(prefix) and number.startswith(prefix) and len(rest) >= 6 and rest[:-1].isdigit()


def track(*, number: str, mobile: str) -> Application:
    """The application for its number and the applicant's mobile. A wrong mobile, a mistyped number
    and an unknown one get the same answer."""
    number = (number or "").strip().upper()
    error = refuse("application_not_found", error=NotFound)
    if not ids.has_valid_check(number):
        raise error
    normalised = customer_rules.normalise_mobile(mobile or "")
    if not normalised:
        raise error
    application = (
        Application.objects.select_related("section", "account").filter(number=number, mobile=normalised).first()
    )
    if application is None:
        raise error
    return application
