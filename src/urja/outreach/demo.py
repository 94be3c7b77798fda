"""Demo data of outreach (a hook of `urja demo`): in the CRE's division (Balasore, BED) a monthly RWA
meeting and a quarterly IWA meeting held and followed up, a Nishta camp of this week with requests
registered on the spot, an Anubhav Kendra session and the annual customer meet planned. Everything
through the services; a rerun adds nothing."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from urja.core.errors import DomainError

from . import services
from .models import OutreachEvent

log = logging.getLogger("urja.demo")


def _plan(cre, office, kind, days_ago, venue, partner=""):
    return services.plan_event(
        actor=cre,
        channel="backoffice",
        kind=kind,
        office=office,
        held_on=timezone.localdate() - timedelta(days=days_ago),
        venue=venue,
        partner=partner,
    )


def populate(*, accounts, staff, rng) -> None:
    cre, engineer, manager = staff.get("cre"), staff.get("engineer"), staff.get("manager")
    if cre is None or engineer is None or OutreachEvent.objects.exists():
        return
    division = cre.staff.office
    sections = list(division.__class__.objects.filter(path__startswith=division.path, level="section").order_by("code"))
    section = sections[0] if sections else division
    pool = [
        a
        for a in accounts
        if a.status == "active" and a.office_path.startswith(division.path) and not a.minigrid_site_id
    ]
    rng.shuffle(pool)
    today = timezone.localdate()
    ch = "backoffice"

    rwa = _plan(cre, division, "rwa_meeting", 20, "Community hall, Station Road, Balasore", "Station Road RWA")
    services.record_attendance(actor=cre, channel=ch, event=rwa, attendance=34, notes="Minutes shared with the RWA.")
    tripping = services.raise_issue(
        actor=cre,
        channel=ch,
        event=rwa,
        text="Evening tripping on the Station Road 11 kV feeder",
        owner_username=engineer.username,
        raised_by="RWA secretary",
        due_on=today - timedelta(days=2),
    )
    services.set_issue_status(actor=engineer, channel=ch, issue=tripping, to_status="in_progress", note="Patrolling")
    streetlight = services.raise_issue(
        actor=cre,
        channel=ch,
        event=rwa,
        text="Leaning pole near the school gate",
        owner_username=engineer.username,
        raised_by="Ward member",
    )
    services.set_issue_status(
        actor=engineer, channel=ch, issue=streetlight, to_status="resolved", note="Pole straightened and guyed"
    )

    iwa = _plan(
        cre, division, "iwa_meeting", 50, "Balasore Industrial Estate office", "Balasore Industries Association"
    )
    services.record_attendance(actor=cre, channel=ch, event=iwa, attendance=18)
    pf = services.raise_issue(
        actor=cre,
        channel=ch,
        event=iwa,
        text="Explain the power-factor incentive on HT bills",
        owner_username=(manager or cre).username,
        raised_by="Association president",
    )
    if manager is not None:
        services.set_issue_status(actor=manager, channel=ch, issue=pf, to_status="resolved", note="Note circulated")
    services.close_event(actor=cre, channel=ch, event=iwa, note="Next meeting in three months")

    camp = _plan(cre, section, "nishta_camp", 3, "Gram panchayat office", "Sahadevkhunta GP")
    services.record_attendance(actor=cre, channel=ch, event=camp, attendance=86)
    services.raise_issue(
        actor=cre,
        channel=ch,
        event=camp,
        text="New connections pending in the Harijan basti",
        owner_username=engineer.username,
        raised_by="Sarpanch",
    )
    for account, (type_code, subtype) in zip(
        pool[:3],
        [
            ("bill_revision", "disputed_bill"),
            ("meter_testing", "meter_running_fast"),
            ("contact_update", "contact_update"),
        ],
        strict=False,
    ):
        try:
            services.register_request(
                actor=cre,
                event=camp,
                type_code=type_code,
                subtype_code=subtype or None,
                consumer_number=account.consumer_number,
                description="Registered at the Nishta camp.",
            )
        except DomainError as exc:  # a type the catalogue names differently: the camp keeps the rest
            log.info("outreach demo: request %s not registered: %s", type_code, exc)

    _plan(cre, section, "anubhav_kendra", -4, "Anubhav Kendra, Remuna", "Remuna block")
    _plan(cre, division, "customer_meet", -30, "Hotel Torrento, Balasore", "Udyam: industrial customers")
