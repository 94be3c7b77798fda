"""Demo data for the service desk: `populate(accounts, staff)` (called by `urja demo`).

Registers a few dozen requests across types and channels — some fresh, some near their due
moment so they escalate while the demo runs, some already late, a known outage with its linked
complaints, a billing dispute with a hearing, and a closed late request with its compensation. The
call centre's shiftings (a meter, an LT line) are handed to connections as change requests
(`servicedesk.handover`): they are counted as `shiftings`, not as service requests.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from datetime import timedelta

from django.db import transaction

from urja.core.errors import DomainError
from urja.core.scope import office_covers

from . import catalogue, clock, services
from .models import RequestType, ServiceRequest

# (type, subtype, fraction of the SLA already used when the demo starts)
PLAN = [
    ("no_power_supply", "no_power_supply", 0.1),
    ("no_power_supply", "no_power_supply", 0.45),  # reaches tier 1 within minutes
    ("no_power_supply", "line_breakdown", 0.9),  # breaches during the demo
    ("no_power_supply", "dt_failure", 0.2),
    ("voltage_fluctuation", "voltage_fluctuation", 0.3),
    ("meter_faulty", "meter_stuck", 0.5),
    ("meter_faulty", "meter_no_display", 0.98),
    ("meter_burnt", "meter_burnt", 0.1),
    ("meter_burnt", "normal_fuse_off", 0.74),
    ("meter_testing", "meter_running_fast", 0.6),
    ("meter_reading", "meter_reading", 0.3),
    ("seal_replacement", "meter_seal_broken", 1.2),  # already late: escalates at once
    ("reconnection", "reconnection", 0.7),
    ("moveout_final_bill", "consumer_disconnection_request", 0.2),
    ("shifting", "meter_shifting", 0.4),
    ("shifting", "lt_line_shifting", 0.1),
    ("attribute_change", "transfer_of_connection", 0.3),
    ("attribute_change", "category_change", 0.5),
    ("attribute_change", "enhancement_of_contract_demand", 0.2),
    ("bill_revision", "disputed_bill", 0.3),
    ("bill_revision", "wrong_posting", 0.8),
    ("payment_complaint", "payment_not_updated", 0.2),
    ("contact_update", "contact_update", 0.1),
    ("no_power_supply", "no_power_supply", 1.6),  # far past due
]
# What the caller says for a shifting: the change request it opens (servicedesk.handover) records it as
# what is to move and where to; the inspection, the demand note and the SoP clock are the change request's.
SAID = {
    "meter_shifting": "Demo: meter to be moved from the gate to the verandah, east wall.",
    "lt_line_shifting": "Demo: LT line over the new first floor to be moved to the road side.",
}


def _ensure_catalogue():
    try:
        return catalogue.active_schedule()
    except DomainError:
        for path in catalogue.default_files():
            catalogue.load_file(path)
        return catalogue.active_schedule()


def _pick_staff(staff) -> dict[str, object]:
    if isinstance(staff, Mapping):
        return dict(staff)
    by_role: dict[str, object] = {}
    for user in staff or []:
        role = getattr(getattr(user, "staff", None), "role", None)
        if role and role not in by_role:
            by_role[role] = user
    return by_role


def _span(rt: RequestType, area: str) -> timedelta:
    from .sla import Timeline, due_at

    start = clock.now()
    due = due_at(start, Timeline(rt.unit, rt.timeline_value(area)), _calendar_for_demo())
    return due - start


def _calendar_for_demo():
    from urja.core.calendars import WorkingCalendar

    return WorkingCalendar()


@transaction.atomic
def populate(accounts: Iterable, staff, *, seed: int = 6) -> dict[str, int]:
    """Register the demo requests on `accounts` (a list or queryset of customers.Account);
    `staff` is a mapping role → user or a list of staff users (a CRE registers, an engineer is
    assigned, a manager decides hearings). Returns counts."""
    schedule = _ensure_catalogue()
    rng = random.Random(seed)
    people = _pick_staff(staff)
    cre = people.get("cre") or next(iter(people.values()), None)
    engineer = people.get("engineer")
    manager = people.get("manager") or cre
    pool = [a for a in list(accounts)[:400] if a.status == "active"]
    if not pool:
        return {"requests": 0}
    rng.shuffle(pool)
    created = escalated_ready = handed_over = 0
    used: set[tuple[int, str]] = set()
    for i, (type_code, subtype, used_fraction) in enumerate(PLAN):
        rt = RequestType.objects.get(schedule=schedule, type_code=type_code, subtype_code=subtype)
        account = next((a for a in pool if (a.pk, type_code) not in used), pool[i % len(pool)])
        used.add((account.pk, type_code))
        channel = rng.choice(rt.channels)
        registered_at = clock.now() - _span(rt, account.area) * used_fraction
        try:
            result = services.register_request(
                actor=cre,
                channel=channel,
                type_code=type_code,
                subtype_code=subtype,
                account=account,
                description=SAID.get(subtype, f"Demo: {rt.name.lower()} reported through {channel.replace('_', ' ')}."),
                registered_at=registered_at,
            )
        except DomainError:
            continue
        if result.handed_over is not None:  # a shifting: a change request of connections, its clock and no other
            handed_over += result.created
            continue
        created += result.created
        escalated_ready += used_fraction >= 0.45
        sr = result.request
        assignable = engineer is not None and office_covers(engineer, sr.office_path)  # only in its division
        if assignable and result.created and i % 3 == 0 and services.is_open(sr):
            services.assign(actor=cre, channel="backoffice", request=sr, user=engineer)
    # a closed, late complaint: compensation credited to the ledger
    first_late = (
        ServiceRequest.objects.filter(
            type_code="no_power_supply", status__in=["registered", "assigned"], due_at__lt=clock.now()
        )
        .order_by("registered_at")
        .first()
    )
    if first_late is not None:
        services.close_request(
            actor=engineer or cre,
            channel="backoffice",
            request=first_late,
            resolution_notes="Demo: jumper replaced on the LT pole; supply restored.",
        )
    # a billing dispute with a hearing scheduled
    dispute = ServiceRequest.objects.filter(type_code="bill_revision", status="registered").first()
    if dispute is not None:
        services.schedule_hearing(
            actor=manager,
            channel="backoffice",
            request=dispute,
            scheduled_for=clock.now() + timedelta(days=3),
            venue=f"Hearing & counselling cell, {dispute.office.name}",
        )
    # a known outage on a DT with a complaint linked to it
    outage_account = next((a for a in pool if a.transformer_id), None)
    outages = 0
    if outage_account is not None:
        services.declare_outage(
            actor=engineer or cre,
            channel="backoffice",
            kind="unplanned",
            reason="Demo: DT fuse blown after a storm",
            transformer=outage_account.transformer,
            expected_restore_at=clock.now() + timedelta(hours=3),
        )
        services.register_request(
            actor=cre,
            channel="whatsapp",
            type_code="no_power_supply",
            subtype_code="no_power_supply",
            account=outage_account,
            description="Demo: no supply in the lane since the storm.",
        )
        outages = 1
    return {"requests": created, "near_or_past_due": escalated_ready, "outages": outages, "shiftings": handed_over}
