"""Cashier sessions (open, close, count) and field agents' cash deposits."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from urja.core.errors import Conflict, DomainError, Forbidden
from urja.core.models import Role, StaffProfile
from urja.core.money import MoneyError, paise, parse_amount
from urja.core.permissions import role_of
from urja.core.services import record_audit
from urja.core.states import transition
from urja.payments.models import (
    CASHIER_SESSION_STATUS,
    CashDeposit,
    CashierSession,
)
from urja.payments.selectors import (
    COLLECTING_ROLES,
    INSTRUMENT_METHODS,
    cash_in_hand,
    session_totals,
)
from urja.payments.services._base import (
    validate_amount,
)


def open_session(*, actor, opening_balance: object, office=None) -> CashierSession:
    role = role_of(actor)
    if role not in COLLECTING_ROLES - {Role.FIELD_AGENT}:
        raise Forbidden("your role may not run a cash counter", code="role_not_allowed")
    try:
        opening = parse_amount(opening_balance, allow_zero=True)
    except MoneyError as exc:
        raise DomainError(str(exc), code="invalid_amount") from exc
    office = office or getattr(getattr(actor, "staff", None), "office", None)
    if office is None:
        raise DomainError("the cashier has no office", code="office_required")
    try:
        with transaction.atomic():
            session = CashierSession.objects.create(
                cashier=actor, office=office, opened_at=timezone.now(), opening_balance=opening
            )
            record_audit(
                actor=actor,
                channel="care_centre",
                action="cash_session.opened",
                obj=session,
                changes={"opening_balance": opening},
            )
    except IntegrityError as exc:
        raise Conflict("you already have an open session", code="session_already_open") from exc
    return session


def close_session(*, actor, session: CashierSession, counted_cash: object) -> CashierSession:
    """Close a counter: expected = opening float + cash taken; a shortfall is flagged."""
    try:
        counted = parse_amount(counted_cash, allow_zero=True)
    except MoneyError as exc:
        raise DomainError(str(exc), code="invalid_amount") from exc
    with transaction.atomic():
        session = CashierSession.objects.select_for_update().get(pk=session.pk)
        if session.status != CashierSession.Status.OPEN:
            raise Conflict("the session is already closed", code="session_closed")
        if session.cashier_id != actor.pk and role_of(actor) not in (Role.MANAGER, Role.ADMIN):
            raise Forbidden("only the cashier or a manager closes a session", code="not_your_session")
        totals = session_totals(session)
        cheques = session.payments.filter(method__in=list(INSTRUMENT_METHODS))
        session.expected_cash = totals["expected_cash"]
        session.counted_cash = counted
        session.shortage = paise(totals["expected_cash"] - counted)
        session.cheques_count = cheques.count()
        session.cheques_total = cheques.aggregate(t=Sum("amount"))["t"] or 0
        session.closed_at = timezone.now()
        transition(
            session,
            CASHIER_SESSION_STATUS,
            CashierSession.Status.CLOSED,
            actor=actor,
            channel="care_centre",
            extra_fields=("expected_cash", "counted_cash", "shortage", "cheques_count", "cheques_total", "closed_at"),
            action="cash_session.closed",
            changes={"expected": session.expected_cash, "counted": counted, "shortage": session.shortage},
        )
    return session


def record_deposit(*, actor, agent, amount: object, reference: str) -> CashDeposit:
    """A field agent hands cash over (bank slip / office hand-over): frees cash-in-hand."""
    value = validate_amount(amount)
    if not reference.strip():
        raise DomainError("the bank slip / hand-over reference is required", code="reference_required")
    with transaction.atomic():
        StaffProfile.objects.select_for_update().filter(user=agent).first()
        existing = CashDeposit.objects.filter(agent=agent, reference=reference.strip()).first()
        if existing is not None:
            if existing.amount != value:
                raise Conflict("this reference was used for a different amount", code="deposit_reference_reused")
            return existing
        in_hand = cash_in_hand(agent=agent)
        if value > in_hand:
            raise DomainError(
                f"deposit {value} is more than the cash in hand {in_hand}",
                code="deposit_exceeds_cash",
                details={"in_hand": str(in_hand)},
            )
        deposit = CashDeposit.objects.create(
            agent=agent,
            amount=value,
            deposited_at=timezone.now(),
            reference=reference.strip(),
            received_by=actor if getattr(actor, "pk", None) else None,
        )
        record_audit(
            actor=actor,
            channel="backoffice",
            action="cash.deposited",
            obj=deposit,
            changes={"agent": agent.pk, "amount": value, "reference": reference},
        )
    return deposit
