"""Customers' scoped lookups (read-only, core.scope): an account or a consumer the caller may see, or
the very same NotFound as for one that does not exist."""

from django.db.models import Count, IntegerField, Q, QuerySet
from django.db.models.functions import Cast

from urja.core.models import AuditEvent, Role
from urja.core.permissions import office_path_of, role_of
from urja.core.scope import account_q, account_rule, get_scoped, not_found, scope_accounts
from urja.network.models import DistributionTransformer, Office

from .models import Account, Consumer, Contact


def accounts_in_scope(user) -> QuerySet:
    return scope_accounts(user, Account.objects.select_related("consumer", "section", "key_account_manager"))


def scoped_account(user, consumer_number: str) -> Account:
    number = (consumer_number or "").strip().upper()
    return get_scoped(accounts_in_scope(user), not_found("account", number), consumer_number=number)


def verified_mobile(consumer: Consumer) -> str | None:
    """The consumer's verified mobile (the primary one first): where a code asking the consumer's consent
    to a staff edit of their contacts goes (issue 13.5). None: nothing to ask, nothing to take over."""
    return (
        Contact.objects.filter(consumer=consumer, kind=Contact.Kind.MOBILE, verified=True)
        .order_by("-is_primary", "-verified_at")
        .values_list("value", flat=True)
        .first()
    )


def consumers_in_scope(user) -> QuerySet:
    """A consumer with an account in the caller's scope; one with no account yet only for staff whose
    office covers the office where the consumer applied (registered), and for admin; a consumer login
    only itself."""
    rule = account_rule(user)
    consumers = Consumer.objects.all()
    if rule == "none":
        return consumers.none()
    if rule == "all":
        return consumers
    if rule == "own":
        return consumers.filter(user=user)
    q = Q(pk__in=Account.objects.filter(account_q(user)).values("consumer_id"))
    if rule == "office" and role_of(user) != Role.CONSUMER:
        path = office_path_of(user) or ""
        registered = AuditEvent.objects.filter(
            object_type="customers.consumer", action="consumer.registered", actor__staff__office__path__startswith=path
        ).annotate(consumer_pk=Cast("object_id", IntegerField()))
        q |= Q(accounts__isnull=True, pk__in=registered.values("consumer_pk"))
    return consumers.filter(q).distinct()


def scoped_consumer(user, consumer_id: int) -> Consumer:
    consumers = consumers_in_scope(user).prefetch_related("contacts")
    return get_scoped(consumers, not_found("consumer", consumer_id), pk=consumer_id)


def routes_of_sections(sections, *, limit: int = 500) -> list[str]:
    """The reading routes (books) in use by the accounts of the given sections (for the open-account
    form's suggestions)."""
    ids = [s.pk for s in sections]
    qs = Account.objects.filter(section_id__in=ids).exclude(route="").order_by("route").values_list("route", flat=True)
    return list(qs.distinct()[:limit])


def usual_placement(section, *, cycle: str = "", other_than: tuple[str, ...] = ()) -> dict[str, str]:
    """The bill cycle and route most accounts of the section are read in ({} when it has none); only
    in `cycle`, or in none of `other_than` (cycles kept apart, such as HT), when given."""
    qs = Account.objects.filter(section=section).exclude(route="")
    if cycle:
        qs = qs.filter(bill_cycle=cycle)
    if other_than:
        qs = qs.exclude(bill_cycle__in=other_than)
    row = qs.values("bill_cycle", "route").annotate(n=Count("pk")).order_by("-n", "route").first()
    return {"bill_cycle": row["bill_cycle"], "route": row["route"]} if row else {}


def _path_ids(office: Office) -> list[int]:
    """The office and every office above it (its materialised path)."""
    return [int(p) for p in office.path.strip("/").split("/") if p]


def section_transformers(section: Office) -> QuerySet:
    """The distribution transformers a connection of `section` may hang on: those of the feeders of the
    section or of an office above it (a feeder kept by the sub-division runs through its sections). A
    mini-grid site's node is not among them: only the site's own accounts hang on it."""
    return (
        DistributionTransformer.objects.filter(feeder__office_id__in=_path_ids(section), minigrid_site__isnull=True)
        .select_related("feeder")
        .order_by("feeder__code", "code")
    )
