"""Metering services: the only code that changes meters, installations, readings and commands.

What other apps call:

* `billing_consumption(account=, period_start=, period_end=)` → `BillingConsumption` (billing).
* `send_command(meter=|account=, command=, params=, actor=, channel=)` → `MeterCommand`
  (payments: prepaid disconnect/reconnect; service desk; mini-grid package changes).
* `meter_rent_applies(account)` → bool (billing: no rent for consumer-owned meters).
* meter-side actions for service requests: `record_meter_test`, `replace_meter`, `change_seals`, `shift_meter`.

One module per subdomain; the read-only queries (configuration, installations, consumption over a
chain of readings, the reading schedule, the readers' book, consumption series) are in
`urja.metering.selectors`. Every name callers used as `services.<name>` is re-exported here:

    registry       register_meter, change_meter_status, install_meter, remove_meter, replace_meter,
                   change_seals, shift_meter, send_test_notice, record_meter_test
    readings       record_reading, estimate_reading, review_reading, validate_reading, VeeLookups,
                   run_vee_pending, validate_many, validate_one_by_one
    billing_feed   billing_consumption, BillingConsumption
    commands       send_command, command_payload, claim_commands, record_ack, sweep_command_timeouts,
                   retry_command, cancel_command
    smart_data     store_smart_batch, dead_letter
    _base          register and coordinate parsing, the meter sheet entry (shared)
"""

# reads, re-exported for the callers of services.<name> (new code imports selectors); Meter: callers
# reached the model as services.Meter when this was one module (new code imports models)
from urja.metering.models import Meter
from urja.metering.selectors import (
    _day_end,
    _in_window,
    consumption_between,
    consumption_series,
    current_installation,
    day_consumption,
    get_meter,
    history_of,
    installation_at,
    meter_rent_applies,
    meters_config,
    monthly_history,
    next_reading,
    previous_reading,
    read_day,
    reading_config,
    reading_window,
    rollover_margin,
    route_book,
    vee_config,
    vee_rules,
)
from urja.metering.services._base import (
    CLOCK_SKEW,
    MAX_REGISTER,
)
from urja.metering.services.billing_feed import (
    BillingConsumption,
    billing_consumption,
)
from urja.metering.services.commands import (
    cancel_command,
    claim_commands,
    command_payload,
    record_ack,
    retry_command,
    send_command,
    sweep_command_timeouts,
)
from urja.metering.services.readings import (
    VeeLookups,
    estimate_reading,
    record_reading,
    review_reading,
    run_vee_pending,
    validate_many,
    validate_one_by_one,
    validate_reading,
)
from urja.metering.services.registry import (
    change_meter_status,
    change_seals,
    install_meter,
    record_meter_test,
    register_meter,
    remove_meter,
    replace_meter,
    send_test_notice,
    shift_meter,
)
from urja.metering.services.smart_data import (
    dead_letter,
    store_smart_batch,
)

__all__ = [
    "CLOCK_SKEW",
    "MAX_REGISTER",
    "BillingConsumption",
    "Meter",
    "VeeLookups",
    "_day_end",
    "_in_window",
    "billing_consumption",
    "cancel_command",
    "change_meter_status",
    "change_seals",
    "claim_commands",
    "command_payload",
    "consumption_between",
    "consumption_series",
    "current_installation",
    "day_consumption",
    "dead_letter",
    "estimate_reading",
    "get_meter",
    "history_of",
    "install_meter",
    "installation_at",
    "meter_rent_applies",
    "meters_config",
    "monthly_history",
    "next_reading",
    "previous_reading",
    "read_day",
    "reading_config",
    "reading_window",
    "record_ack",
    "record_meter_test",
    "record_reading",
    "register_meter",
    "remove_meter",
    "replace_meter",
    "retry_command",
    "review_reading",
    "rollover_margin",
    "route_book",
    "run_vee_pending",
    "send_command",
    "send_test_notice",
    "shift_meter",
    "store_smart_batch",
    "sweep_command_timeouts",
    "validate_many",
    "validate_one_by_one",
    "validate_reading",
    "vee_config",
    "vee_rules",
]
