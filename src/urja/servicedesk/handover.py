"""Request types of the charter whose work another app carries: the service desk hands them over.

The charter's "Shifting" rows (meter, LT / 11 kV / 33 kV line, DT structure) are change requests of
connections (inspection, demand note, payment, field work; the SoP clock stopped while the note
waits; late completion compensated once). A shifting lodged at the service desk is therefore not a
service request with a clock of its own: `register_request` hands it to connections, which opens the
change request of that kind on the account (or finds the one already open) and acknowledges it once.
The SLA clock and the compensation are the change request's only.

Which types are handed over, and to what, is declared by the app that carries them: a module
`urja.<app>.handover` with `servicedesk_types() -> {type code: dotted path of the handler}` (the app
reads the type codes from its own data). The service desk sits below connections in the layers, so
it finds the handler the way core finds the apps' background jobs (`core.jobs.job_handlers`): through
`urja.apps_registry.app_modules`, at call time, never by an import.

The consumer tracks it by the number they were told, on the service desk's tracker (page, API, bots):
a number that is no service request is asked of the same apps' `servicedesk_trackers()` (dotted paths of
`tracker(number=, mobile=, consumer_number=) -> dict | None`, the shape of `selectors.status_view`),
with the same rule — the number and the consumer's mobile or consumer number, else the one answer.

A handler is called inside the registration's transaction as
`handler(actor=, channel=, account=, request_type=, description=, language=)` and returns a
`HandedOver`; its refusals are `DomainError`s with their codes (4xx, nothing changed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from django.utils.module_loading import import_string

from urja.apps_registry import app_modules


@dataclass(frozen=True)
class HandedOver:
    """What the carrying app opened (or found open) for a request lodged at the service desk."""

    app: str  # the app that carries it ("connections")
    number: str  # its number (a change request's), the one the consumer is told
    kind: str  # its kind there ("meter_shifting", …)
    label: str  # the kind as staff and consumers read it
    status: str  # its status there
    registered_at: datetime
    due_at: datetime | None  # its clock's due moment (None while stopped is not implied: see `paused`)
    paused: bool  # its clock is stopped (a demand note waiting to be paid)
    created: bool  # False: one of that kind was already open on the account (this contact linked to it)
    url: str  # its staff page
    consumer_number: str = ""
    office: str = ""  # the code of the office that owns it (the account's section)


@cache
def _handlers() -> dict[str, str]:
    found: dict[str, str] = {}
    for _app, module in app_modules("handover"):
        declare = getattr(module, "servicedesk_types", None)
        if declare is not None:
            found.update(declare())
    return found


@cache
def _trackers() -> tuple[str, ...]:
    found: list[str] = []
    for _app, module in app_modules("handover"):
        declare = getattr(module, "servicedesk_trackers", None)
        if declare is not None:
            found.extend(declare())
    return tuple(found)


def track(*, number: str, mobile: str | None = None, consumer_number: str | None = None) -> dict | None:
    """What the consumer may see of a request handed over (by its number and their mobile or consumer
    number), or None when no app has it for them."""
    for dotted in _trackers():
        found = import_string(dotted)(number=number, mobile=mobile, consumer_number=consumer_number)
        if found is not None:
            return found
    return None


def handler_for(type_code: str) -> Callable[..., HandedOver] | None:
    """The handler of a type another app carries, or None for the service desk's own types."""
    dotted = _handlers().get(type_code)
    return import_string(dotted) if dotted else None


def handed_over_types() -> set[str]:
    """The type codes the service desk hands over (the desk and the catalogue mark them)."""
    return set(_handlers())
