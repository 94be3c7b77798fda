"""Service-desk services: the only code that changes requests, outages, hearings and feedback.

Every function is keyword-only, runs in one transaction, raises a DomainError with a specific
code on bad input (and then changes nothing), records an audit event for status and money
changes and a RequestEvent on the request's timeline.

One module per subdomain; the read-only queries are in `urja.servicedesk.selectors`. The names
every caller used as `services.<name>` are re-exported here, so `from urja.servicedesk import
services` keeps working:

    registration   register_request, check_channel, Registration
    workflow       transition, add_note, pause_clock, resume_clock, assign, bulk_assign, transfer,
                   close_request, reopen_request
    escalations    consumer_escalate, staff_escalate, notice_holders
    awards         award_compensation
    outages        declare_outage, restore_outage, cancel_outage, activate_planned_outages
    disputes       schedule_hearing, record_hearing_outcome
    feedback       submit_feedback
    _base          the request timeline, consumer messages, the escalation pointer (shared)
"""

# reads, re-exported for the callers of services.<name> (new code imports selectors)
from urja.servicedesk.selectors import (
    FEEDBACK_SALT,
    NOT_FOUND_MESSAGE,
    affected_accounts,
    clock_state,
    compensation_report,
    division_of,
    feedback_token,
    feedback_url,
    find_for_consumer,
    find_office,
    forums_text,
    grievance_forums,
    holder_office,
    holders,
    is_open,
    known_outage,
    open_states,
    outage_area,
    owning_office,
    queue,
    request_from_token,
    schedule_of,
    setting,
    sla_colour,
    sla_compliance,
    states_of,
    status_view,
    timeline,
    track,
)
from urja.servicedesk.services._base import (
    notify_consumer,
    send,
)
from urja.servicedesk.services.awards import (
    award_compensation,
)
from urja.servicedesk.services.disputes import (
    record_hearing_outcome,
    schedule_hearing,
)
from urja.servicedesk.services.escalations import (
    consumer_escalate,
    notice_holders,
    staff_escalate,
)
from urja.servicedesk.services.feedback import (
    submit_feedback,
)
from urja.servicedesk.services.outages import (
    activate_planned_outages,
    cancel_outage,
    declare_outage,
    restore_outage,
)
from urja.servicedesk.services.registration import (
    Registration,
    check_channel,
    register_request,
)
from urja.servicedesk.services.workflow import (
    add_note,
    assign,
    bulk_assign,
    close_request,
    pause_clock,
    reopen_request,
    resume_clock,
    transfer,
    transition,
)

__all__ = [
    "FEEDBACK_SALT",
    "NOT_FOUND_MESSAGE",
    "Registration",
    "activate_planned_outages",
    "add_note",
    "affected_accounts",
    "assign",
    "award_compensation",
    "bulk_assign",
    "cancel_outage",
    "check_channel",
    "clock_state",
    "close_request",
    "compensation_report",
    "consumer_escalate",
    "declare_outage",
    "division_of",
    "feedback_token",
    "feedback_url",
    "find_for_consumer",
    "find_office",
    "forums_text",
    "grievance_forums",
    "holder_office",
    "holders",
    "is_open",
    "known_outage",
    "notice_holders",
    "notify_consumer",
    "open_states",
    "outage_area",
    "owning_office",
    "pause_clock",
    "queue",
    "record_hearing_outcome",
    "register_request",
    "reopen_request",
    "request_from_token",
    "restore_outage",
    "resume_clock",
    "schedule_hearing",
    "schedule_of",
    "send",
    "setting",
    "sla_colour",
    "sla_compliance",
    "staff_escalate",
    "states_of",
    "status_view",
    "submit_feedback",
    "timeline",
    "track",
    "transfer",
    "transition",
]
