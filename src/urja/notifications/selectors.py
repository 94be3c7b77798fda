"""Read-side helpers shared by the back-office views and the API (no state changes)."""

from django.db.models import Q, QuerySet

from urja.core.permissions import ALL_STAFF_ROLES, office_path_of, role_of
from urja.customers.models import Consumer

from . import rendering
from .models import OutboxMessage

HIDDEN_BODY = "•••••• (one-time code hidden)"


def is_staff(user) -> bool:
    return role_of(user) in ALL_STAFF_ROLES


def scoped_messages(user) -> QuerySet:
    """Messages a staff member may see: those of accounts (or, without an account, of consumers with
    an account) in the user's office subtree. Utility-level staff and admins see every message,
    including those sent to raw addresses."""
    path = office_path_of(user)
    queryset = OutboxMessage.objects.all()
    if path is None or not is_staff(user):
        return queryset.none()
    if path == "":
        return queryset
    consumers = Consumer.objects.filter(accounts__office_path__startswith=path).values("pk")
    return queryset.filter(Q(account__office_path__startswith=path) | Q(account__isnull=True, consumer__in=consumers))


def shown_body(message: OutboxMessage) -> str:
    """The body as staff may see it: texts of sensitive events (one-time codes) are hidden."""
    spec = rendering.events().get(message.event, {})
    return HIDDEN_BODY if spec.get("sensitive") else message.body
