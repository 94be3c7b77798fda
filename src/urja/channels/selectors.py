"""Read-side queries of channels (no state changes)."""

from django.db.models import Q, QuerySet

from urja.core.permissions import ALL_STAFF_ROLES, office_path_of, role_of
from urja.core.scope import account_q
from urja.customers.models import Consumer

from .models import InboundMessage


def scoped_inbound(user) -> QuerySet:
    """The WhatsApp and SMS messages a staff member may see: those of consumers with an account in
    the user's scope (core.scope's account rule); messages from numbers linked to no consumer only
    for staff of the whole utility (nothing places them in an office)."""
    if role_of(user) not in ALL_STAFF_ROLES:
        return InboundMessage.objects.none()
    consumers = Consumer.objects.filter(account_q(user, "accounts__")).values("pk")
    mine = Q(consumer__in=consumers)
    if office_path_of(user) == "":
        mine |= Q(consumer__isnull=True)
    return InboundMessage.objects.filter(mine)
