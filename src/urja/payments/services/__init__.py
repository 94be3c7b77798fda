"""Payment services: the only code that changes payments state.

Every money movement goes to the ledger (urja.billing.ledger.post_entry) inside the same
transaction that records the payment, with the account row locked (select_for_update), and with an
idempotency key derived from the channel's own unique key, so a replay posts once and parallel
payments keep the balance exact.

One module per subdomain; the read-only queries (channel rules, account lookup, receipt check, cash
in hand, allocation of what is owed, hand-over report, wallet balance, overdue amounts, the
disconnection list, and `allocate_payments`: how payments split over what is owed) are in
`urja.payments.selectors` (import them from there). The services are re-exported here:

    posting      take_payment, resolve_suspense, refund_suspense, bounce_cheque,
                 refund (and _post, the one posting pipeline, which settlement files use)
    receipts     receipt_series, issue_receipts (allocate_receipt_numbers + verification_codes)
    cash         open_session, close_session, record_deposit
    online       create_order, handle_webhook, process_gateway_event, simulate_gateway,
                 dev_gateway_event, reconcile_upi, WebhookResult
    files        import_settlement
    interest     accrue_advance_interest
    prepaid      ensure_wallet, evaluate_wallet, charge_prepaid_day, run_prepaid_day,
                 sweep_prepaid_supply, register_payg_device, issue_payg_token
    collection   sweep_collections, settle_collection_cases, issue_disconnection_notices,
                 start_collections_sweep, collections_sweep_job
    _base        the amount rule and the idempotency-key check (shared)
"""

# Reads are in urja.payments.selectors (every caller imports them from there): none is re-exported.
from urja.payments.services._base import (
    validate_amount,
)
from urja.payments.services.cash import (
    close_session,
    open_session,
    record_deposit,
)
from urja.payments.services.collection import (
    COLLECTIONS_SWEEP,
    SWEEP_PROGRESS_EVERY,
    collections_sweep_job,
    issue_disconnection_notices,
    settle_collection_cases,
    start_collections_sweep,
    sweep_collections,
)
from urja.payments.services.files import (
    import_settlement,
)
from urja.payments.services.interest import (
    accrue_advance_interest,
)
from urja.payments.services.online import (
    WebhookResult,
    create_order,
    dev_gateway_event,
    handle_webhook,
    process_gateway_event,
    reconcile_upi,
    simulate_gateway,
)
from urja.payments.services.posting import (
    _post,
    bounce_cheque,
    refund,
    refund_suspense,
    resolve_suspense,
    take_payment,
)
from urja.payments.services.prepaid import (
    _after_prepaid_recharge,
    charge_prepaid_day,
    ensure_wallet,
    evaluate_wallet,
    issue_payg_token,
    register_payg_device,
    run_prepaid_day,
    sweep_prepaid_supply,
)
from urja.payments.services.receipts import (
    allocate_receipt_numbers,
    issue_receipts,
    receipt_series,
    verification_codes,
)

__all__ = [
    "COLLECTIONS_SWEEP",
    "SWEEP_PROGRESS_EVERY",
    "WebhookResult",
    "_after_prepaid_recharge",
    "_post",
    "accrue_advance_interest",
    "allocate_receipt_numbers",
    "bounce_cheque",
    "charge_prepaid_day",
    "close_session",
    "collections_sweep_job",
    "create_order",
    "dev_gateway_event",
    "ensure_wallet",
    "evaluate_wallet",
    "handle_webhook",
    "import_settlement",
    "issue_disconnection_notices",
    "issue_payg_token",
    "issue_receipts",
    "open_session",
    "process_gateway_event",
    "receipt_series",
    "reconcile_upi",
    "record_deposit",
    "refund",
    "refund_suspense",
    "register_payg_device",
    "resolve_suspense",
    "run_prepaid_day",
    "settle_collection_cases",
    "simulate_gateway",
    "start_collections_sweep",
    "sweep_collections",
    "sweep_prepaid_supply",
    "take_payment",
    "validate_amount",
    "verification_codes",
]
