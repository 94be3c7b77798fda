"""Consumer feedback on a closed request (and reopening through it)."""

from __future__ import annotations

from django.db import transaction

from urja.core import boundary
from urja.core.errors import Conflict, DomainError
from urja.core.models import Channel
from urja.servicedesk import clock
from urja.servicedesk.models import (
    Feedback,
    RequestEvent,
)
from urja.servicedesk.selectors import request_from_token, states_of
from urja.servicedesk.services._base import _event
from urja.servicedesk.services.workflow import reopen_request


@transaction.atomic
def submit_feedback(*, token: str, rating: int, comment: str = "", reopen: bool = False) -> Feedback:
    """Rate the resolution (1–5). Unsatisfied (rating ≤ 2) may reopen within the window."""
    request, closure = request_from_token(token)
    try:  # the boundary's rule: ASCII digits ("५" is refused, as int() would read it)
        rating = boundary.parse_int(rating, name="rating", minimum=-boundary.bounds().max_integer)
    except boundary.InvalidInput as exc:
        raise DomainError("rating must be a number from 1 to 5", code="invalid_rating") from exc
    if not 1 <= rating <= 5:
        raise DomainError("rating must be from 1 to 5", code="invalid_rating")
    if closure != request.reopen_count or request.status != states_of(request).closed:
        raise Conflict("this request has changed since the link was sent", code="feedback_link_stale")
    if Feedback.objects.filter(request=request, closure=closure).exists():
        raise Conflict("feedback for this closure is already recorded", code="feedback_exists")
    satisfied = rating >= 3
    feedback = Feedback.objects.create(
        request=request,
        rating=rating,
        comment=comment.strip()[:2000],
        satisfied=satisfied,
        closure=closure,
        created_at=clock.now(),
    )
    _event(request, kind=RequestEvent.Kind.FEEDBACK, channel="website", text=f"rated {rating}/5 {comment}".strip())
    if reopen:
        if satisfied:
            raise DomainError("a request is reopened only when you are not satisfied", code="reopen_needs_low_rating")
        reopen_request(actor=None, channel=Channel.WEBSITE, request=request, reason=comment or "consumer unsatisfied")
        feedback.request.refresh_from_db()  # reopen_request worked on its own locked copy
    return feedback
