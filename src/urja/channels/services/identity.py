"""Who a consumer is on the consumer channels: portal sign-in by mobile number and one-time code, and
changes of the consumer's own mobile / e-mail confirmed by a code sent to the new contact.

A mobile number signs in the consumers that have it among their contacts (the registered mobile
number the utility recorded on the application) and at least one account; a successful sign-in proves
the number, so its contact is marked verified. Each consumer signs in as its own Django user (created
on the first sign-in, role "consumer", no password), so core.scope's "own" rule cuts every read.
"""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from urja.core.errors import DomainError
from urja.core.models import Role, StaffProfile
from urja.core.services import record_audit
from urja.customers.models import Account, Consumer, Contact
from urja.customers.selectors import verified_mobile
from urja.customers.services import add_contact, normalise_contact

from . import otp


def normalise_mobile(raw: str) -> str:
    return normalise_contact(Contact.Kind.MOBILE, (raw or "").strip())


def consumers_with_mobile(mobile: str) -> list[Consumer]:
    """Consumers with `mobile` (E.164) among their contacts and at least one account."""
    ids = Contact.objects.filter(kind=Contact.Kind.MOBILE, value=mobile).values("consumer_id")
    with_accounts = Account.objects.filter(consumer_id__in=ids).values("consumer_id")
    return list(Consumer.objects.filter(pk__in=with_accounts).order_by("pk"))


def start_login(*, mobile: str, client: str, language: str) -> otp.Ticket:
    """Send a sign-in code to `mobile` when a consumer has it. The answer (a ticket, or the same
    errors) does not depend on whether anyone is registered there: an unregistered number gets a
    ticket no code can open."""
    address = normalise_mobile(mobile)
    consumers = consumers_with_mobile(address)
    first = consumers[0] if consumers else None
    return otp.issue(
        purpose="login",
        address=address,
        client=client,
        language=(first.preferred_language if first else language) or "en",
        consumer=first,
        send=first is not None,
    )


def finish_login(*, token: str, code: str, client: str) -> list[Consumer]:
    """The consumers the code signs in (raises otp.WrongCode / TooManyAttempts). The number's
    contacts become verified: the consumer has just shown they hold it."""
    # not inside a transaction: a wrong code's count must stay when the error is raised
    row = otp.check(token=token, code=code, client=client, purpose="login")
    consumers = consumers_with_mobile(row.address)
    if not consumers:
        raise otp.WrongCode()  # nobody was registered (no code went out) or the contact was removed since
    now = timezone.now()
    for contact in Contact.objects.filter(kind=Contact.Kind.MOBILE, value=row.address, verified=False):
        Contact.objects.filter(pk=contact.pk).update(verified=True, verified_at=now)
        record_audit(actor=None, channel="website", action="contact.verified", obj=contact.consumer,
                     changes={"kind": "mobile", "value": contact.value, "by": "otp_login"})  # fmt: skip
    return consumers


def user_for(consumer: Consumer):
    """The consumer's login (created on first use: role consumer, no password)."""
    if consumer.user_id:
        return consumer.user
    User = get_user_model()
    with transaction.atomic():
        locked = Consumer.objects.select_for_update().get(pk=consumer.pk)
        if locked.user_id:
            return locked.user
        user = User(username=f"consumer-{consumer.pk}", first_name=consumer.name[:150])
        user.set_unusable_password()
        user.save()
        StaffProfile.objects.create(user=user, role=Role.CONSUMER, office=None)
        Consumer.objects.filter(pk=consumer.pk).update(user=user)
    consumer.user = user
    return user


# --- the consumer's own contacts --------------------------------------------------------------------


def start_contact_change(*, consumer: Consumer, kind: str, value: str, client: str) -> otp.Ticket:
    """Send a code to the NEW mobile (SMS) or e-mail; the contact is added once the code comes back."""
    if kind not in (Contact.Kind.MOBILE, Contact.Kind.EMAIL):
        raise DomainError("contact kind must be mobile or email", code="invalid_contact_kind")
    address = normalise_contact(kind, value)
    return otp.issue(
        purpose="contact",
        address=address,
        client=client,
        language=consumer.preferred_language or "en",
        consumer=consumer,
        payload={"kind": kind, "value": address},
        channel="email" if kind == Contact.Kind.EMAIL else "sms",
    )


def finish_contact_change(
    *, consumer: Consumer, token: str, code: str, client: str, channel: str = "website"
) -> Contact:
    """Add (or verify) the contact the code was sent to, as the primary one of its kind."""
    row = otp.check(token=token, code=code, client=client, purpose="contact")
    if row.consumer_id != consumer.pk:
        raise otp.WrongCode()
    kind, value = row.payload["kind"], row.payload["value"]
    with transaction.atomic():
        return verify_contact(consumer=consumer, kind=kind, value=value, actor=consumer.user, channel=channel, by="otp")


def verify_contact(*, consumer: Consumer, kind: str, value: str, actor, channel: str, by: str) -> Contact:
    """Record `value` as the consumer's verified primary contact of `kind` (after a code proved it)."""
    contact = add_contact(actor=actor, channel=channel, consumer=consumer, kind=kind, value=value)
    now = timezone.now()
    Contact.objects.filter(pk=contact.pk).update(verified=True, verified_at=now, is_primary=True)
    Contact.objects.filter(consumer=consumer, kind=kind).exclude(pk=contact.pk).update(is_primary=False)
    record_audit(actor=actor, channel=channel, action="contact.verified", obj=consumer,
                 changes={"kind": kind, "value": value, "by": by})  # fmt: skip
    contact.refresh_from_db()
    return contact


# --- the consumer's consent to a staff edit (field agent, CRE) --------------------------------------


def consent_mobile(consumer: Consumer) -> str:
    mobile = verified_mobile(consumer)
    if not mobile:
        raise DomainError(
            "the consumer has no verified mobile to confirm the change; the consumer verifies one first "
            "(portal sign-in or a code to the new number)",
            code="no_verified_mobile",
        )
    return mobile


def masked_mobile(mobile: str) -> str:
    """How staff see where the consumer's code went: the country code and the last three digits."""
    return f"{mobile[:3]}•••••{mobile[-3:]}"


def start_consent(*, actor, consumer: Consumer, kind: str, value: str, client: str) -> otp.Ticket:
    """A staff member proposes a new mobile / e-mail for the consumer: a code goes to the consumer's
    verified mobile; the change is made only when the consumer gives the code back (confirm_consent)."""
    if kind not in (Contact.Kind.MOBILE, Contact.Kind.EMAIL):
        raise DomainError("contact kind must be mobile or email", code="invalid_contact_kind")
    address = normalise_contact(kind, value)
    return otp.issue(
        purpose="consent",
        address=consent_mobile(consumer),
        client=client,
        language=consumer.preferred_language or "en",
        consumer=consumer,
        payload={"kind": kind, "value": address, "by": getattr(actor, "pk", None)},
    )


def confirm_consent(*, actor, consumer: Consumer, token: str, code: str, client: str, channel: str) -> Contact:
    """Apply the proposed change with the consumer's code. The new contact is the primary one of its
    kind but not verified: the consumer consented to it, nobody has proved they hold it."""
    row = otp.check(token=token, code=code, client=client, purpose="consent")
    if row.consumer_id != consumer.pk or row.payload.get("by") != getattr(actor, "pk", None):
        raise otp.WrongCode()
    with transaction.atomic():
        contact = add_contact(actor=actor, channel=channel, consumer=consumer, kind=row.payload["kind"],
                              value=row.payload["value"])  # fmt: skip
        Contact.objects.filter(pk=contact.pk).update(is_primary=True)
        Contact.objects.filter(consumer=consumer, kind=contact.kind).exclude(pk=contact.pk).update(is_primary=False)
        record_audit(actor=actor, channel=channel, action="contact.consented", obj=consumer,
                     changes={"kind": contact.kind, "value": contact.value, "code_sent_to": row.address})  # fmt: skip
    contact.refresh_from_db()
    return contact
