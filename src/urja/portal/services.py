"""Portal sign-in for everyone with a mobile: consumers, and applicants who have no account yet.

    ticket = start_sign_in(mobile="9437012345", client=ip, language="or")
    who = finish_sign_in(token=ticket.token, code="123456", client=ip)  # WrongCode / TooManyAttempts
    who.consumers   # the number's consumers (sign in as one of them), or
    who.applicant   # the proven number (E.164) of an applicant: their new-connection applications only

A number some consumer has (with at least one account) signs in through channels.identity, unchanged.
Any other valid number gets a code too — the code proves the caller holds the number, which is what an
applicant needs to apply for a connection and track it. Both paths answer alike (a ticket; the same
cool-down, lockout and errors), so the answer still does not tell whether the number is registered.
"""

from dataclasses import dataclass

from urja.channels.models import OneTimeCode
from urja.channels.services import identity, otp
from urja.customers.models import Consumer

APPLICANT = "applicant"  # the code's payload marks a sign-in of an applicant (nobody registered there)


@dataclass(frozen=True)
class SignedIn:
    consumers: list[Consumer]
    applicant: str = ""  # E.164 mobile proven by the code, when no consumer has it


def start_sign_in(*, mobile: str, client: str, language: str) -> otp.Ticket:
    """Send a sign-in code to `mobile` (raises DomainError for an invalid number, TooManyAttempts,
    ResendTooSoon)."""
    address = identity.normalise_mobile(mobile)
    if identity.consumers_with_mobile(address):
        return identity.start_login(mobile=mobile, client=client, language=language)
    return otp.issue(
        purpose=OneTimeCode.Purpose.LOGIN,
        address=address,
        client=client,
        language=language or "en",
        payload={APPLICANT: True},
    )


def finish_sign_in(*, token: str, code: str, client: str) -> SignedIn:
    """Who the code signs in: the number's consumers, or — for a number nobody is registered at — the
    applicant holding it. A wrong, expired or reused code raises otp.WrongCode either way."""
    payload = (
        OneTimeCode.objects.filter(token=str(token or "")[:43], purpose=OneTimeCode.Purpose.LOGIN)
        .values_list("payload", flat=True)
        .first()
    )
    if payload and payload.get(APPLICANT):
        row = otp.check(token=token, code=code, client=client, purpose=OneTimeCode.Purpose.LOGIN)
        return SignedIn(consumers=[], applicant=row.address)
    return SignedIn(consumers=identity.finish_login(token=token, code=code, client=client))
