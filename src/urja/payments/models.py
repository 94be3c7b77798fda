"""Payments: payments and their receipts, cashier sessions and agent deposits, gateway orders and
events, settlement-file imports, prepaid wallets, PAYG devices and tokens, collection flags."""

from django.conf import settings
from django.db import models

from urja.core.states import StateMachine


class PaymentChannel(models.TextChoices):
    COUNTER = "counter", "Cash counter (care centre)"
    FIELD_AGENT = "field_agent", "Field agent"
    ONLINE = "online", "Online gateway (card / net banking)"
    UPI = "upi", "UPI"
    WALLET = "wallet", "Mobile wallet"
    CARD = "card", "Card (POS)"
    ATP = "atp", "Any-time-payment machine"
    FILE = "file", "Bank / collection-agency file"


class PaymentMethod(models.TextChoices):
    CASH = "cash", "Cash"
    CHEQUE = "cheque", "Cheque"
    DD = "dd", "Demand draft"
    CARD = "card", "Card"
    NETBANKING = "netbanking", "Net banking"
    UPI = "upi", "UPI"
    WALLET = "wallet", "Wallet"
    BANK = "bank", "Bank transfer"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    POSTED = "posted", "Posted"
    FAILED = "failed", "Failed"
    IN_SUSPENSE = "in_suspense", "In suspense (for review)"
    REVERSED = "reversed", "Reversed (cheque dishonoured)"
    REFUNDED = "refunded", "Refunded"


PAYMENT_STATUS = StateMachine(
    "payment status",
    {
        PaymentStatus.PENDING: {PaymentStatus.POSTED, PaymentStatus.FAILED, PaymentStatus.IN_SUSPENSE},
        PaymentStatus.IN_SUSPENSE: {PaymentStatus.POSTED, PaymentStatus.REFUNDED},
        PaymentStatus.POSTED: {PaymentStatus.REVERSED},
        PaymentStatus.FAILED: set(),
        PaymentStatus.REVERSED: set(),
        PaymentStatus.REFUNDED: set(),
    },
)


class SuspenseCode(models.TextChoices):
    """Why money received is held in suspense (a payment row, a receipt, no ledger entry)."""

    ACCOUNT_CLOSED = "account_closed", "Account permanently disconnected"
    AMOUNT_MISMATCH = "amount_mismatch", "Amount differs from the order"
    UNKNOWN_ORDER = "unknown_order", "Gateway order not known"
    DUPLICATE_CAPTURE = "duplicate_capture", "Second capture for an order already paid"
    AMOUNT_TOO_LARGE = "amount_too_large", "Above the single-payment limit"
    POSTING_FAILED = "posting_failed", "Could not be posted to the account"
    UNKNOWN_ACCOUNT = "unknown_account", "No account with the consumer number of the order"
    MANUAL = "manual", "Held for review"


class TimeOrderIndex(models.Index):
    """An index on a column that grows with the table (when a row arrives): BRIN on PostgreSQL — a few
    pages that summarise each block range, next to nothing to maintain per inserted row — and a B-tree
    elsewhere (SQLite has no BRIN). Range queries (a day's, a month's payments) use either."""

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor == "postgresql":
            using = " USING brin"
        return super().create_sql(model, schema_editor, using=using, **kwargs)


class Payment(models.Model):
    """Money received for an account. Posted = one ledger entry of type payment (negative)."""

    channel = models.CharField(max_length=12, choices=PaymentChannel.choices)
    method = models.CharField(max_length=12, choices=PaymentMethod.choices, default=PaymentMethod.CASH)
    # Unique per channel: client-generated (field agent), gateway txn id, file row key, …
    idempotency_key = models.CharField(max_length=100)
    # Indexed by (account, received_at) below. No per-row database FK check (a settlement file
    # inserts a million rows): a posted payment's ledger entry carries the same account under a real
    # FK, the account id always comes from a lookup in the same transaction, and accounts are never
    # deleted (PROTECT).
    account = models.ForeignKey(
        "customers.Account",
        null=True,
        on_delete=models.PROTECT,
        related_name="payments",
        db_index=False,
        db_constraint=False,
    )
    consumer_number = models.CharField(max_length=20, help_text="as given by the payer")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    status = models.CharField(max_length=12, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    # indexed by TimeOrderIndex below (BRIN on PostgreSQL: docs/payments.md, ADR "Indexes of a file payment")
    received_at = models.DateTimeField()
    posted_at = models.DateTimeField(null=True, blank=True)
    # No database FK check (a settlement file inserts a million of these): the entry is written in the
    # same transaction by the same code, and ledger entries are never deleted (append-only).
    ledger_entry = models.OneToOneField(
        "billing.LedgerEntry",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payment",
        db_constraint=False,
    )
    reference = models.CharField(max_length=64, blank=True, help_text="gateway txn / UTR / bank reference")
    instrument_number = models.CharField(max_length=20, blank=True, help_text="cheque / DD number")
    instrument_bank = models.CharField(max_length=80, blank=True)
    instrument_date = models.DateField(null=True, blank=True)
    # Few indexes on purpose: settlement files insert a million rows at a time. No database FK checks
    # on the collector and the session either: PostgreSQL queues a check for every inserted row even
    # when the column is NULL (as it is for every file row), about 0.4 µs each. Both are set from
    # objects the same code has just loaded, and users and sessions are protected from deletion here.
    office = models.ForeignKey(
        "network.Office", null=True, blank=True, on_delete=models.PROTECT, db_index=False, db_constraint=False
    )
    collected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_index=False,
        db_constraint=False,
    )
    session = models.ForeignKey(
        "CashierSession",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payments",
        db_index=False,
        db_constraint=False,
    )
    # the batch is created in the same transaction as its rows: no per-row FK check needed
    batch = models.ForeignKey(
        "ImportBatch",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="payments",
        db_index=False,
        db_constraint=False,
    )
    receipt_number = models.CharField(max_length=32, null=True, blank=True)
    verification_code = models.CharField(max_length=16, blank=True)
    allocation = models.JSONField(default=dict, blank=True)
    balance_after = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    suspense_reason = models.CharField(max_length=200, blank=True)
    # why the money is in suspense, as a code (SuspenseCode) for reports; the reason is the words
    suspense_code = models.CharField(max_length=24, blank=True, default="")
    payg_token = models.CharField(max_length=24, blank=True)
    notes = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "idempotency_key"], name="payment_channel_key_unique"),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_amount_positive"),
            models.UniqueConstraint(
                fields=["receipt_number"],
                condition=models.Q(receipt_number__isnull=False),
                name="payment_receipt_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "received_at"]),
            TimeOrderIndex(fields=["received_at"], name="payment_received_at_idx"),
            models.Index(
                fields=["collected_by", "received_at"],
                condition=models.Q(collected_by__isnull=False),
                name="payment_collector_idx",
            ),
            models.Index(fields=["session"], condition=models.Q(session__isnull=False), name="payment_session_idx"),
            models.Index(
                fields=["status", "received_at"], condition=~models.Q(status="posted"), name="payment_open_status_idx"
            ),
        ]
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.receipt_number or self.pk} {self.consumer_number} {self.amount}"


class CashierSession(models.Model):
    """A cashier's shift at a counter (or a field agent's day): opening float and counted close."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    cashier = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="cash_sessions")
    office = models.ForeignKey("network.Office", on_delete=models.PROTECT)
    status = models.CharField(max_length=6, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField()
    opening_balance = models.DecimalField(max_digits=12, decimal_places=2)
    closed_at = models.DateTimeField(null=True, blank=True)
    expected_cash = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    counted_cash = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    shortage = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    cheques_count = models.IntegerField(default=0)
    cheques_total = models.DecimalField(max_digits=12, decimal_places=2, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["cashier"], condition=models.Q(status="open"), name="one_open_session_per_cashier"
            )
        ]
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        return f"session {self.pk} {self.cashier} {self.opened_at:%Y-%m-%d}"


# A counter session is opened once and closed once, with the counted cash (close_session).
CASHIER_SESSION_STATUS = StateMachine(
    "cashier session", {CashierSession.Status.OPEN: {CashierSession.Status.CLOSED}, CashierSession.Status.CLOSED: set()}
)


class CashDeposit(models.Model):
    """Cash handed over by a field agent (or a cashier) to the bank / the office: frees cash-in-hand."""

    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="cash_deposits")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    deposited_at = models.DateTimeField()
    reference = models.CharField(max_length=64, help_text="bank slip / hand-over note number")
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent", "reference"], name="deposit_reference_unique")]

    def __str__(self) -> str:
        return f"{self.agent_id} deposited {self.amount} ({self.reference})"


class GatewayOrder(models.Model):
    """A payment started online (gateway page, UPI intent/QR): reconciled by its reference."""

    class Status(models.TextChoices):
        CREATED = "created", "Created"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"

    reference = models.CharField(max_length=32, unique=True)
    gateway = models.CharField(max_length=20, default="dev")
    channel = models.CharField(max_length=12, choices=PaymentChannel.choices, default=PaymentChannel.ONLINE)
    # None: no account has the number typed. An anonymous quick pay answers alike whether or not the
    # number exists (no existence oracle); the money of such an order is held in suspense.
    account = models.ForeignKey(
        "customers.Account", null=True, blank=True, on_delete=models.PROTECT, related_name="gateway_orders"
    )
    consumer_number = models.CharField(max_length=20, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.CREATED)
    created_at = models.DateTimeField(auto_now_add=True)
    payment = models.OneToOneField(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="order")
    failure_reason = models.CharField(max_length=200, blank=True)
    # The payment aggregator's own id for this order (payments.gateways; empty for the development gateway).
    gateway_order_id = models.CharField(max_length=64, blank=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.reference} {self.amount} [{self.status}]"


GS = GatewayOrder.Status
# created → paid (captured by the webhook or matched from the bank's UPI line) | failed (the
# gateway's failure event); failed → paid: a capture after a failure (the payer tried again on the
# same order) — the money was taken, so the order is paid. A paid order never changes again.
GATEWAY_ORDER_STATUS = StateMachine(
    "gateway order", {GS.CREATED: {GS.PAID, GS.FAILED}, GS.FAILED: {GS.PAID}, GS.PAID: set()}
)


class GatewayEvent(models.Model):
    """Every verified webhook, once (event id unique): a replay returns the first outcome."""

    gateway = models.CharField(max_length=20)
    event_id = models.CharField(max_length=80)
    received_at = models.DateTimeField(auto_now_add=True)
    payload = models.JSONField()
    outcome = models.CharField(max_length=40, blank=True)
    # A capture (payment.succeeded): the gateway's transaction and the amount it took, and the payment
    # (posted or in suspense) that holds that money. The first event of a transaction counts it.
    kind = models.CharField(max_length=40, blank=True)
    txn_id = models.CharField(max_length=80, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="gateway_events")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["gateway", "event_id"], name="gateway_event_unique")]
        indexes = [models.Index(fields=["gateway", "txn_id"], name="gateway_event_txn_idx")]

    def __str__(self) -> str:
        return f"{self.gateway}:{self.event_id} {self.outcome}"


class ImportBatch(models.Model):
    """One bank / collection-agency settlement file."""

    source = models.CharField(max_length=40, help_text="bank or agency code; part of each row's key")
    filename = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64)
    imported_at = models.DateTimeField(auto_now_add=True)
    imported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    rows = models.IntegerField(default=0)
    posted = models.IntegerField(default=0)
    duplicates = models.IntegerField(default=0)
    suspense = models.IntegerField(default=0)
    errors = models.IntegerField(default=0)
    total_posted = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    # per-row report: [{"line", "key", "code", "message"}] for every row not posted (capped)
    report = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-imported_at"]

    def __str__(self) -> str:
        return f"{self.source} {self.filename} ({self.rows} rows)"


class PrepaidWallet(models.Model):
    """The prepaid side of an account. The balance is the ledger's (credit = money in the wallet);
    this row keeps the supply state, alert state and daily-charge pointer."""

    class Supply(models.TextChoices):
        CONNECTED = "connected", "Connected"
        DISCONNECTED = "disconnected", "Disconnected"

    account = models.OneToOneField("customers.Account", on_delete=models.PROTECT, related_name="wallet")
    supply = models.CharField(max_length=12, choices=Supply.choices, default=Supply.CONNECTED)
    # lowest alert threshold already sent in this run-down ("" = none)
    alerted_threshold = models.CharField(max_length=12, blank=True)
    charged_through = models.DateField(null=True, blank=True)
    last_command_at = models.DateTimeField(null=True, blank=True)
    last_command = models.CharField(max_length=12, blank=True)
    last_command_id = models.CharField(max_length=40, blank=True)
    commands_sent = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"wallet {self.account_id} ({self.supply})"


# The wallet's supply state follows the remote switch commands the daily charge job sends.
WALLET_SUPPLY = StateMachine(
    "prepaid supply",
    {
        PrepaidWallet.Supply.CONNECTED: {PrepaidWallet.Supply.DISCONNECTED},
        PrepaidWallet.Supply.DISCONNECTED: {PrepaidWallet.Supply.CONNECTED},
    },
)


class PrepaidCharge(models.Model):
    """One day's consumption charged to a prepaid wallet (one row per account and day)."""

    wallet = models.ForeignKey(PrepaidWallet, on_delete=models.PROTECT, related_name="charges")
    day = models.DateField()
    kwh = models.DecimalField(max_digits=12, decimal_places=3)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    ledger_entry = models.OneToOneField("billing.LedgerEntry", null=True, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=40, default="tariff")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["wallet", "day"], name="prepaid_charge_day_unique")]
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.wallet_id} {self.day} {self.amount}"


class PaygDevice(models.Model):
    """A mini-grid load limiter / PAYG device driven by OpenPAYGO tokens. The secret is stored
    encrypted (Fernet); the counter only moves forward, so no token is ever reused."""

    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="payg_devices")
    serial = models.CharField(max_length=40, unique=True)
    secret_encrypted = models.BinaryField()
    starting_code = models.BigIntegerField()
    token_count = models.IntegerField(default=1)
    restricted_digit_set = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.serial


class PaygToken(models.Model):
    class Kind(models.TextChoices):
        ADD_TIME = "add_time", "Add time"
        SET_TIME = "set_time", "Set time"
        DISABLE = "disable", "Unlock permanently"

    device = models.ForeignKey(PaygDevice, on_delete=models.PROTECT, related_name="tokens")
    count = models.IntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    days = models.IntegerField(default=0)
    token = models.CharField(max_length=24)
    payment = models.OneToOneField(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="token")
    issued_at = models.DateTimeField(auto_now_add=True)
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["device", "count"], name="payg_token_count_unique")]
        ordering = ["-count"]

    def __str__(self) -> str:
        return f"{self.device_id}#{self.count} {self.kind} {self.days}d"


class CollectionCase(models.Model):
    """An account flagged for collection: overdue past grace, or above its credit limit. Carries
    the disconnection notice (15 working days, data) and feeds the service desk's disconnection list."""

    class Reason(models.TextChoices):
        OVERDUE = "overdue", "Overdue after grace period"
        CREDIT_LIMIT = "credit_limit", "Above credit limit"
        PREPAID = "prepaid", "Prepaid wallet exhausted"

    class Status(models.TextChoices):
        FLAGGED = "flagged", "Flagged"
        NOTICE_SENT = "notice_sent", "Disconnection notice sent"
        DISCONNECTION_DUE = "due", "Due for disconnection"
        SETTLED = "settled", "Settled (paid)"
        CLOSED = "closed", "Closed"

    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="collection_cases")
    reason = models.CharField(max_length=12, choices=Reason.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.FLAGGED)
    amount_due = models.DecimalField(max_digits=14, decimal_places=2)
    flagged_on = models.DateField()
    notice_number = models.CharField(max_length=32, blank=True)
    notice_date = models.DateField(null=True, blank=True)
    pay_by = models.DateField(null=True, blank=True)
    closed_on = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=models.Q(status__in=["flagged", "notice_sent", "due"]),
                name="one_open_collection_case",
            )
        ]
        ordering = ["pay_by", "id"]

    def __str__(self) -> str:
        return f"{self.account_id} {self.reason} [{self.status}]"


COLLECTION_STATUS = StateMachine(
    "collection case",
    {
        CollectionCase.Status.FLAGGED: {
            CollectionCase.Status.NOTICE_SENT,
            CollectionCase.Status.SETTLED,
            CollectionCase.Status.CLOSED,
        },
        CollectionCase.Status.NOTICE_SENT: {
            CollectionCase.Status.DISCONNECTION_DUE,
            CollectionCase.Status.SETTLED,
            CollectionCase.Status.CLOSED,
        },
        CollectionCase.Status.DISCONNECTION_DUE: {CollectionCase.Status.SETTLED, CollectionCase.Status.CLOSED},
        CollectionCase.Status.SETTLED: set(),
        CollectionCase.Status.CLOSED: set(),
    },
)


class AdvanceInterestRun(models.Model):
    """One accrual of interest on advances for a period (YYYY-MM): runs once."""

    period = models.CharField(max_length=7, unique=True)
    run_at = models.DateTimeField(auto_now_add=True)
    accounts = models.IntegerField(default=0)
    total = models.DecimalField(max_digits=16, decimal_places=2, default=0)

    def __str__(self) -> str:
        return f"advance interest {self.period}"


class GroupPayment(models.Model):
    """One payment for an account group (issue 15.6: a government department or an industry with
    many connections), spread over its connections' open items (payments.group). Each part is an
    ordinary Payment under the key `G<id>:<consumer number>`; `spread` keeps the plan, so a replay
    posts nothing twice and a half-posted one is finished with the same parts."""

    group = models.ForeignKey("customers.AccountGroup", on_delete=models.PROTECT, related_name="payments")
    channel = models.CharField(max_length=12, choices=PaymentChannel.choices)
    method = models.CharField(max_length=12, choices=PaymentMethod.choices)
    idempotency_key = models.CharField(max_length=100)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    reference = models.CharField(max_length=64, blank=True, help_text="UTR / bank reference")
    instrument_number = models.CharField(max_length=20, blank=True)
    received_at = models.DateTimeField()
    taken_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    # [{"consumer_number": "...", "account_id": 1, "amount": "12.34", "by_category": {...}}, ...]
    spread = models.JSONField(default=list)
    posted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "idempotency_key"], name="one_group_payment_per_key")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"group payment {self.pk} of {self.group_id}: {self.amount}"
