"""API of notifications (mounted under /api/v1/notifications/): the outbox, for staff."""

from datetime import datetime

from ninja import Field, Router, Schema
from ninja.pagination import paginate

from urja.core.errors import DomainError, Forbidden

from .models import OutboxChannel, OutboxStatus
from .selectors import is_staff, scoped_messages, shown_body

router = Router(tags=["notifications"])


class OutboxMessageOut(Schema):
    id: int
    event: str
    channel: str
    to: str
    language: str
    subject: str
    body: str = Field(..., description="hidden for sensitive events (one-time codes)")
    status: str = Field(..., description="queued, sending, sent, failed (will retry) or dead")
    attempts: int
    next_attempt_at: datetime
    last_error: str
    provider_message_id: str
    consumer_number: str | None
    idempotency_key: str
    created_at: datetime
    sent_at: datetime | None

    @staticmethod
    def resolve_body(obj):
        return shown_body(obj)

    @staticmethod
    def resolve_consumer_number(obj):
        return obj.account.consumer_number if obj.account_id else None


@router.get("/outbox", response=list[OutboxMessageOut])
@paginate
def list_outbox(
    request,
    status: str | None = None,
    channel: str | None = None,
    consumer_number: str | None = None,
    event: str | None = None,
):
    """Recent outbox messages in the caller's office scope, newest first (staff only)."""
    if not is_staff(request.auth):
        raise Forbidden("staff only", code="role_not_allowed")
    queryset = scoped_messages(request.auth).select_related("account")
    if status:
        if status not in OutboxStatus.values:
            raise DomainError(
                f"unknown status {status!r}", code="invalid_status", details={"allowed": OutboxStatus.values}
            )
        queryset = queryset.filter(status=status)
    if channel:
        if channel not in OutboxChannel.values:
            raise DomainError(
                f"unknown channel {channel!r}", code="invalid_channel", details={"allowed": OutboxChannel.values}
            )
        queryset = queryset.filter(channel=channel)
    if consumer_number:
        queryset = queryset.filter(account__consumer_number=consumer_number.strip().upper())
    if event:
        queryset = queryset.filter(event=event)
    return queryset.order_by("-created_at", "-id")
