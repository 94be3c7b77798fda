"""Explicit state machines and the one way to change a state.

A machine is a table of allowed transitions, kept in the app's models.py beside its model. Every
write of a status field goes through `transition` (one object: check, set, save, audit) or
`transition_set` (a set-based conditional UPDATE whose WHERE is built from the machine, for claims
and sweeps). `tests/test_state_writes.py` scans the source so that no other status write
creeps in.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models, transaction

from .errors import TransitionNotAllowed


class StateMachine:
    def __init__(self, name: str, transitions: Mapping[str, Iterable[str]]):
        self.name = name
        self.transitions = {state: frozenset(targets) for state, targets in transitions.items()}

    @property
    def states(self) -> frozenset[str]:
        return frozenset(self.transitions).union(*self.transitions.values())

    @property
    def terminal(self) -> frozenset[str]:
        """States with no way out."""
        return frozenset(s for s in self.states if not self.allowed(s))

    def allowed(self, current: str) -> frozenset[str]:
        return self.transitions.get(current, frozenset())

    def can(self, current: str, target: str) -> bool:
        return target in self.allowed(current)

    def sources_of(self, target: str) -> frozenset[str]:
        """The states from which `target` may be reached: the WHERE of a set-based transition."""
        return frozenset(s for s, targets in self.transitions.items() if target in targets)

    def check(self, current: str, target: str) -> None:
        if target not in self.allowed(current):
            allowed = sorted(self.allowed(current))
            raise TransitionNotAllowed(
                f"{self.name}: cannot go from '{current}' to '{target}'"
                + (f"; allowed: {', '.join(allowed)}" if allowed else "; no further change is allowed"),
                details={"from": current, "to": target, "allowed": allowed},
            )


def transition(
    obj: models.Model,
    machine: StateMachine,
    to: str,
    *,
    actor,
    channel: str,
    reason: str = "",
    field: str = "status",
    extra_fields: Iterable[str] = (),
    action: str | None = None,
    changes: Mapping[str, Any] | None = None,
) -> str:
    """Move `obj` to state `to`: check the machine, set the field, save it (with `extra_fields`,
    which the caller has set on `obj` already) and record an audit event with who, channel,
    from, to and reason. Returns the state it came from. Raises TransitionNotAllowed (a 409)
    before anything is written. Lock the row first (select_for_update) where writers compete."""
    from .services import record_audit  # core.services imports models; models import this module

    before = getattr(obj, field)
    machine.check(before, to)
    with transaction.atomic():
        setattr(obj, field, to)
        obj.save(update_fields=[field, *(f for f in extra_fields if f != field)])
        record_audit(
            actor=actor,
            channel=channel,
            action=action or f"{obj._meta.model_name}.{field}",
            obj=obj,
            changes={"from": before, "to": to, **({"reason": reason} if reason else {}), **(changes or {})},
        )
    return before


def transition_set(
    queryset: models.QuerySet,
    machine: StateMachine,
    to: str,
    *,
    actor,
    channel: str,
    reason: str = "",
    field: str = "status",
    sources: Iterable[str] | None = None,
    values: Mapping[str, Any] | None = None,
    action: str | None = None,
    audit_on: models.Model | None = None,
    changes: Mapping[str, Any] | None = None,
) -> int:
    """Set-based transition: one conditional UPDATE of the rows of `queryset` whose state may go to
    `to` (WHERE field IN machine.sources_of(to), narrowed to `sources` if given); `values` are
    other columns to set. Returns how many rows moved; a row in another state is left alone, so two
    racing claimers cannot both win.

    Audit: without `audit_on`, one event per moved row (the rows are locked and read first, so
    each event has its true `from`); with `audit_on`, one event on that object for the batch
    (count and the allowed sources), for sweeps too large to audit row by row."""
    from .services import record_audit

    allowed = machine.sources_of(to)
    if sources is not None:
        stray = set(sources) - allowed
        if stray:  # a programming error, not a user's: the caller's WHERE contradicts the machine
            raise ValueError(f"{machine.name}: {sorted(stray)} cannot go to {to!r}")
        allowed = frozenset(sources)
    if not allowed:
        return 0
    where = {f"{field}__in": sorted(allowed)}
    update = {**(values or {}), field: to}
    label = action or f"{queryset.model._meta.model_name}.{field}"
    extra = {**({"reason": reason} if reason else {}), **(changes or {})}
    with transaction.atomic():
        if audit_on is not None:
            moved = queryset.filter(**where).update(**update)
            if moved:
                record_audit(
                    actor=actor,
                    channel=channel,
                    action=label,
                    obj=audit_on,
                    changes={"from": sorted(allowed), "to": to, "count": moved, **extra},
                )
            return moved
        rows = list(queryset.filter(**where).select_for_update(of=("self",)).values_list("pk", field))
        if not rows:
            return 0
        model = queryset.model
        moved = model._default_manager.filter(pk__in=[pk for pk, _ in rows], **where).update(**update)
        for pk, before in rows:
            record_audit(
                actor=actor,
                channel=channel,
                action=label,
                obj=model(pk=pk),
                changes={"from": before, "to": to, **extra},
            )
        return moved
