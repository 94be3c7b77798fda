"""Metering services: the only code that changes meters, installations, readings and commands.

What other apps call:

* `billing_consumption(account=, period_start=, period_end=)` → `BillingConsumption` (billing).
* `send_command(meter=|account=, command=, params=, actor=, channel=)` → `MeterCommand`
  (payments: prepaid disconnect/reconnect; service desk; mini-grid package changes).
* meter-side actions for service requests: `record_meter_test`, `replace_meter`, `change_seals`, `shift_meter`.

Reads other apps call are in `urja.metering.selectors`: `current_installation`, `get_meter`,
`meters_config`, `read_day`, `day_consumption`, `meter_rent_applies` (billing: no rent for
consumer-owned meters; `billing_consumption` carries it too).

One module per subdomain; the read-only queries (configuration, installations, consumption over a
chain of readings, the reading schedule, the readers' book, consumption series) are in
`urja.metering.selectors` (import them from there). The services are re-exported here:

    registry       register_meter, change_meter_status, install_meter, remove_meter, replace_meter,
                   change_seals, send_test_notice, record_meter_test
    readings       record_reading, estimate_reading, review_reading, validate_reading, VeeLookups,
                   run_vee_pending, validate_many, validate_one_by_one
    billing_feed   billing_consumption, BillingConsumption
    commands       send_command, command_payload, claim_commands, record_ack, sweep_command_timeouts,
                   retry_command, cancel_command
    shifting       shift_meter
    smart_data     store_smart_batch, dead_letter
    _base          register and coordinate parsing, the meter sheet entry (shared)
"""

# Reads are in urja.metering.selectors (every caller imports them from there): none is re-exported.
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
)
from urja.metering.services.shifting import shift_meter
from urja.metering.services.smart_data import (
    dead_letter,
    store_smart_batch,
)

__all__ = [
    "CLOCK_SKEW",
    "MAX_REGISTER",
    "BillingConsumption",
    "VeeLookups",
    "billing_consumption",
    "cancel_command",
    "change_meter_status",
    "change_seals",
    "claim_commands",
    "command_payload",
    "dead_letter",
    "estimate_reading",
    "install_meter",
    "record_ack",
    "record_meter_test",
    "record_reading",
    "register_meter",
    "remove_meter",
    "replace_meter",
    "retry_command",
    "review_reading",
    "run_vee_pending",
    "send_command",
    "send_test_notice",
    "shift_meter",
    "store_smart_batch",
    "sweep_command_timeouts",
    "validate_many",
    "validate_one_by_one",
    "validate_reading",
]
