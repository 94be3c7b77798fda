"""API of channels (mounted under /api/v1/channels): the consumer's consent by one-time code to a
staff edit of the consumer's mobile or e-mail (the field app and the staff pages)."""

from ninja import Router, Schema

from urja.core.auth import client_address
from urja.core.boundary import Text
from urja.core.models import Channel, Role
from urja.core.permissions import require_role
from urja.customers.selectors import scoped_account

from .services import identity

router = Router(tags=["channels"])
EDIT_ROLES = (Role.CRE, Role.FIELD_AGENT, Role.ENGINEER, Role.BILLING_OFFICER, Role.MANAGER)


class ConsentIn(Schema):
    consumer_number: Text(40)
    kind: Text(10)
    value: Text(254)


class ConsentOut(Schema):
    token: str
    expires_at: str
    sent_to: str


class ConsentConfirmIn(Schema):
    consumer_number: Text(40)
    token: Text(64)
    code: Text(10)


class ConsentContactOut(Schema):
    kind: str
    value: str
    is_primary: bool
    verified: bool


@router.post("/consent", response={201: ConsentOut}, summary="Ask the consumer's consent to a contact change")
def start_consent(request, payload: ConsentIn):
    """A code goes to the consumer's verified mobile (masked in the answer); nothing changes yet."""
    require_role(request.auth, *EDIT_ROLES)
    account = scoped_account(request.auth, payload.consumer_number)
    ticket = identity.start_consent(actor=request.auth, consumer=account.consumer, kind=payload.kind,
                                    value=payload.value, client=client_address(request))  # fmt: skip
    return 201, {"token": ticket.token, "expires_at": ticket.expires_at.isoformat(),
                 "sent_to": identity.masked_mobile(identity.consent_mobile(account.consumer))}  # fmt: skip


@router.post("/consent/confirm", response=ConsentContactOut, summary="Apply the change with the consumer's code")
def confirm_consent(request, payload: ConsentConfirmIn):
    role = require_role(request.auth, *EDIT_ROLES)
    account = scoped_account(request.auth, payload.consumer_number)
    channel = Channel.FIELD_AGENT if role == Role.FIELD_AGENT else Channel.API
    return identity.confirm_consent(actor=request.auth, consumer=account.consumer, token=payload.token,
                                    code=payload.code, client=client_address(request), channel=channel)  # fmt: skip
