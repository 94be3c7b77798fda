"""The rules a simulated month must leave true (issue 10, part 2). Each check returns violations
naming the account (consumer number), the month and the rule; most are one set-based query over
what the month added (bills created since the last check), so 20,000 consumers stay fast.

A check never repairs anything: it reads. `Checker.run(month=…)` runs them all for the data added
since the previous call; `CHECKS` lists them by rule name (the tests plant one violation of each)."""

from __future__ import annotations

import itertools
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal

from django.db.models import DecimalField, Exists, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce

ZERO = Decimal("0.00")
PAISA = Decimal("0.01")
# Bill-line recomputation is per bill (the scalar engine), so above this many bills a month a
# seeded sample is recomputed — plus every HT bill and every bill that settles estimates.
LINE_CHECK_SAMPLE = 400


@dataclass(frozen=True)
class Violation:
    rule: str
    month: str
    consumer_number: str
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.month} {self.consumer_number or '-'} [{self.rule}] {self.detail}"


@dataclass
class Scope:
    """What a check looks at: bills with id > bill_after, payments with id > payment_after …"""

    month: str
    bill_after: int = 0
    payment_after: int = 0
    entry_after: int = 0
    audit_after: int = 0
    rng: random.Random | None = None
    # what the driver saw as it went (BBPS fetches, periods recomputed): {kind: [value, ...]}
    observations: dict = field(default_factory=dict)


def _money(field: str = "amount"):
    return Coalesce(Sum(field), Value(ZERO), output_field=DecimalField(max_digits=16, decimal_places=2))


def _paise(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(PAISA)


def _cn(account) -> str:
    return getattr(account, "consumer_number", "") or ""


# ---- units --------------------------------------------------------------------------------------


def units_never_negative(scope: Scope) -> list[Violation]:
    from urja.billing.models import Bill

    rows = (
        Bill.objects.filter(pk__gt=scope.bill_after)
        .filter(Q(units__lt=0) | Q(units_withdrawn__lt=0))
        .values_list("account__consumer_number", "bill_number", "units", "units_withdrawn")
    )
    return [
        Violation("units_never_negative", scope.month, cn, f"bill {num}: units {u}, units withdrawn {w}")
        for cn, num, u, w in rows
    ]


def estimates_trued_up(scope: Scope) -> list[Violation]:
    """Over the bills since the last actual one, Σ units − Σ units withdrawn equals the register
    advance between the two actual readings (metering.selectors.consumption_between)."""
    from urja.billing.models import Bill
    from urja.metering import selectors as metering
    from urja.metering.models import USABLE_VEE, Reading, ReadingStatus

    new_actual = Bill.objects.filter(pk__gt=scope.bill_after, kind=Bill.Kind.BILL, units_status="actual")
    # only chains: the account's previous bill was not actual
    prev_not_actual = Bill.objects.filter(
        account=OuterRef("account"), kind=Bill.Kind.BILL, period_end__lt=OuterRef("period_start")
    ).order_by("-period_end")
    candidates = new_actual.annotate(prev_status=Subquery(prev_not_actual.values("units_status")[:1])).exclude(
        prev_status="actual"
    )
    out = []
    for bill in candidates.exclude(prev_status=None).select_related("account"):
        history = list(
            Bill.objects.filter(account=bill.account, kind=Bill.Kind.BILL, period_end__lte=bill.period_end).order_by(
                "-period_end"
            )
        )
        chain = [history[0]]
        anchor = None
        for b in history[1:]:
            if b.units_status == "actual":
                anchor = b
                break
            chain.append(b)
        usable = Reading.objects.filter(
            account=bill.account, status=ReadingStatus.ACTUAL, vee_status__in=USABLE_VEE
        ).select_related("installation", "meter")
        # opening: the actual reading that closed the last actual bill, or (no such bill: the
        # account's first bills) the last actual reading before the oldest estimated period — among
        # the readings recorded when that bill was made: one recorded later and dated into its period
        # (a late reading, a backdated meter replacement) did not close it, and the units from the
        # true closing reading through it are part of the chain's advance
        seen_by = anchor or chain[-1]
        opening_before = metering._day_end(anchor.period_end if anchor else chain[-1].period_start)
        known = usable.filter(created_at__lte=seen_by.created_at)
        if anchor is None and not known.filter(read_at__lt=opening_before).exists():
            continue
        opening = known.filter(read_at__lt=opening_before).order_by("-read_at", "-id").first()
        closing = usable.filter(read_at__lt=metering._day_end(bill.period_end), created_at__lte=bill.created_at)
        closing = closing.order_by("-read_at", "-id").first()
        if opening is None or closing is None or opening.pk == closing.pk:
            continue
        try:
            advance = metering.consumption_between(opening, closing)
        except Exception as exc:  # a register error is itself worth naming
            out.append(Violation("estimate_trued_up", scope.month, _cn(bill.account), f"register error: {exc}"))
            continue
        billed = sum((b.units - b.units_withdrawn for b in chain), Decimal(0))
        if abs(billed - advance) > Decimal("0.01"):
            out.append(
                Violation(
                    "estimate_trued_up",
                    scope.month,
                    _cn(bill.account),
                    f"bills {', '.join(b.bill_number for b in reversed(chain))} bill {billed} kWh net of "
                    f"withdrawals; the register advanced {advance} kWh between the actual readings of "
                    f"{anchor.period_end if anchor else 'before ' + str(chain[-1].period_start)} and "
                    f"{bill.period_end}",
                )
            )
    return out


# ---- ledger ----------------------------------------------------------------------------------


def arrears_equal_ledger(scope: Scope) -> list[Violation]:
    """Bill.arrears = the ledger's balance just before the bill was written (entries posted before
    its created_at), and the overdue principal never contains surcharge (no DPS on DPS)."""
    from urja.billing.models import Bill, EntryType, LedgerEntry

    before = LedgerEntry.objects.filter(account=OuterRef("account"), posted_at__lt=OuterRef("created_at"))
    total = before.values("account").annotate(s=Sum("amount")).values("s")[:1]
    principal = before.exclude(entry_type=EntryType.DPS).values("account").annotate(s=Sum("amount")).values("s")[:1]
    money = DecimalField(max_digits=16, decimal_places=2)
    rows = (
        Bill.objects.filter(pk__gt=scope.bill_after)
        .exclude(kind=Bill.Kind.STATEMENT)
        .annotate(
            ledger=Coalesce(Subquery(total, output_field=money), Value(ZERO), output_field=money),
            principal=Coalesce(Subquery(principal, output_field=money), Value(ZERO), output_field=money),
        )
        .values_list("account__consumer_number", "bill_number", "arrears", "ledger", "overdue_principal", "principal")
    )
    out = []
    for cn, num, arrears, ledger_sum, overdue, principal_sum in rows:
        # SQLite sums decimals as floats: back to paise before comparing
        ledger_sum, principal_sum = _paise(ledger_sum), _paise(principal_sum)
        if abs(Decimal(arrears) - Decimal(ledger_sum)) > PAISA / 2:
            out.append(
                Violation(
                    "arrears_equal_ledger",
                    scope.month,
                    cn,
                    f"bill {num} shows arrears {arrears}, the ledger before it sums to {ledger_sum} "
                    f"(differs by {Decimal(ledger_sum) - Decimal(arrears)})",
                )
            )
        if Decimal(overdue) > max(Decimal(principal_sum), ZERO) + PAISA / 2:
            out.append(
                Violation(
                    "no_surcharge_on_surcharge",
                    scope.month,
                    cn,
                    f"bill {num}: overdue principal {overdue} exceeds the dues without surcharge {principal_sum}",
                )
            )
    return out


def payments_in_ledger_or_suspense(scope: Scope) -> list[Violation]:
    """Every rupee received is in the ledger or in suspense: a posted payment has its ledger entry of
    the same amount; a suspense payment has none; every captured gateway payment is a payment."""
    from urja.payments.models import GatewayEvent, Payment, PaymentStatus

    out = []
    posted = Payment.objects.filter(pk__gt=scope.payment_after, status=PaymentStatus.POSTED).filter(
        Q(ledger_entry__isnull=True) | ~Q(ledger_entry__amount=-F("amount"))
    )
    for p in posted.values_list("consumer_number", "receipt_number", "amount"):
        out.append(
            Violation("received_in_ledger", scope.month, p[0], f"posted payment {p[1]} of {p[2]} has no ledger entry")
        )
    suspense = Payment.objects.filter(
        pk__gt=scope.payment_after, status=PaymentStatus.IN_SUSPENSE, ledger_entry__isnull=False
    )
    for p in suspense.values_list("consumer_number", "receipt_number"):
        out.append(Violation("received_in_ledger", scope.month, p[0], f"suspense payment {p[1]} is also on the ledger"))
    if not Payment.objects.filter(status=PaymentStatus.IN_SUSPENSE).filter(suspense_reason="").exists():
        pass
    else:
        for p in Payment.objects.filter(status=PaymentStatus.IN_SUSPENSE, suspense_reason="").values_list(
            "consumer_number", "receipt_number"
        ):
            out.append(
                Violation("suspense_has_reason", scope.month, p[0], f"payment {p[1]} in suspense without reason")
            )
    # gateway: captured = posted + suspense (one payment per captured transaction)
    captured = GatewayEvent.objects.filter(payload__type="payment.succeeded")
    keys = {}
    for ev_id, gateway, payload in captured.values_list("event_id", "gateway", "payload"):
        txn = str((payload.get("data") or {}).get("txn_id") or "")
        keys[f"{gateway}:{txn}"] = (ev_id, payload)
    if keys:
        have = set(Payment.objects.filter(idempotency_key__in=list(keys)).values_list("idempotency_key", flat=True))
        for key, (ev_id, payload) in keys.items():
            if key not in have:
                ref = (payload.get("data") or {}).get("order_reference", "")
                amount = (payload.get("data") or {}).get("amount", "")
                out.append(
                    Violation(
                        "gateway_captured_recorded",
                        scope.month,
                        "",
                        f"gateway event {ev_id} captured {amount} for order {ref}; no payment or suspense row",
                    )
                )
    try:  # helper selectors (payments.selectors) when the payments app offers them
        from urja.payments import selectors  # type: ignore[attr-defined]
    except ImportError:
        selectors = None
    check = getattr(selectors, "gateway_reconciliation", None) if selectors else None
    if check is not None:
        try:
            result = check()
            gap = (
                Decimal(str(result.get("captured", 0)))
                - Decimal(str(result.get("posted", 0)))
                - Decimal(str(result.get("suspense", 0)))
            )
            if abs(gap) > PAISA / 2:
                out.append(
                    Violation("gateway_captured_recorded", scope.month, "", f"captured − posted − suspense = {gap}")
                )
        except Exception:  # a selector with another shape: the row-level check above stands
            pass
    return out


# ---- bills ---------------------------------------------------------------------------------------


def bill_lines_match_engine(scope: Scope) -> list[Violation]:
    from urja.billing import services as billing
    from urja.billing.models import Bill
    from urja.billing.runs import GROUP_FIELDS

    bills = list(
        Bill.objects.filter(pk__gt=scope.bill_after, kind=Bill.Kind.BILL, run__isnull=False).select_related("account")
    )
    if len(bills) > LINE_CHECK_SAMPLE:
        must = [b for b in bills if b.account.supply_type in ("ht", "eht") or b.units_withdrawn]
        rest = [b for b in bills if b not in must]
        rng = scope.rng or random.Random(0)
        bills = must + rng.sample(rest, max(0, LINE_CHECK_SAMPLE - len(must)))
    out = []
    for bill in bills:
        try:
            calc = billing.bill_lines(bill)
        except Exception as exc:
            out.append(
                Violation("bill_lines_match_engine", scope.month, _cn(bill.account), f"bill {bill.bill_number}: {exc}")
            )
            continue
        totals = calc.totals()
        wrong = [
            f"{field} {getattr(bill, field)} ≠ {totals[group]}"
            for group, field in GROUP_FIELDS.items()
            if group in totals and abs(getattr(bill, field) - totals[group]) > PAISA / 2
        ]
        if abs(bill.total - totals["total"]) > PAISA / 2:
            wrong.append(f"total {bill.total} ≠ {totals['total']}")
        if wrong:
            out.append(
                Violation(
                    "bill_lines_match_engine",
                    scope.month,
                    _cn(bill.account),
                    f"bill {bill.bill_number}: " + "; ".join(wrong),
                )
            )
    return out


def demand_plausible(scope: Scope) -> list[Violation]:
    """Billed (recorded) demand within the data's multiple of contract demand, else a BillException."""
    from urja.billing import runs
    from urja.billing.models import Bill

    limit = (runs.config().get("demand") or {}).get("max_multiple_of_contract")
    if limit is None:
        limit = (runs.config().get("demand") or {}).get("implausible_multiple")
    if limit is None:
        return []
    limit = Decimal(str(limit))
    rows = (
        Bill.objects.filter(pk__gt=scope.bill_after, recorded_md__isnull=False, sanctioned_load__gt=0)
        .filter(recorded_md__gt=F("sanctioned_load") * limit)
        .values_list("account__consumer_number", "bill_number", "recorded_md", "sanctioned_load", "load_unit")
    )
    return [
        Violation(
            "demand_plausible",
            scope.month,
            cn,
            f"bill {num} bills demand {md} on a contract of {load} {unit} (limit ×{limit})",
        )
        for cn, num, md, load, unit in rows
    ]


def bill_period_ended(scope: Scope) -> list[Violation]:
    from django.utils import timezone

    from urja.billing.models import Bill

    today = timezone.localdate()
    rows = (
        Bill.objects.filter(pk__gt=scope.bill_after)
        # a final bill's period ends at the disconnection, which may be its bill date
        .filter(
            Q(period_end__gte=F("bill_date"), kind__in=["bill", "statement"])
            | Q(period_end__gt=F("bill_date"), kind="final")
            | Q(period_end__gte=today)
        )
        .values_list("account__consumer_number", "bill_number", "period_end", "bill_date")
    )
    return [
        Violation("bill_period_ended", scope.month, cn, f"bill {num} dated {bd} for a period ending {pe}")
        for cn, num, pe, bd in rows
    ]


def _seq_parser(template: str) -> Callable[[str], int | None]:
    match = re.search(r"\{seq(?::0?(\d+))?\}", template)
    width = int(match.group(1)) if match and match.group(1) else None
    check = 1 if template.endswith("{check}") else 0
    after = template[match.end() :].removesuffix("{check}") if match else ""

    def parse(number: str) -> int | None:
        if not width or after:
            return None
        end = len(number) - check
        digits = number[end - width : end]
        return int(digits) if digits.isdigit() else None

    return parse


def numbers_gap_free(scope: Scope) -> list[Violation]:
    """Bill, statement, final-bill and receipt numbers: per series, the numbers held are exactly
    1 … (counter − 1) — none skipped, none twice."""
    from urja.billing.models import Bill
    from urja.core.models import NumberSeries
    from urja.network.models import Office
    from urja.payments.models import Payment

    out = []
    offices = {str(o.pk): o for o in Office.objects.all()}
    offices_by_code = {o.code: o for o in offices.values()}
    for series in NumberSeries.objects.filter(
        Q(key__startswith="bill:") | Q(key__startswith="statement:") | Q(key__startswith="receipt:")
    ):
        parse = _seq_parser(series.template)
        kind, _, rest = series.key.partition(":")
        if kind in ("bill", "statement") and rest != "final":
            office = offices.get(rest)
            if office is None:
                continue
            numbers = Bill.objects.filter(
                kind=Bill.Kind.BILL if kind == "bill" else Bill.Kind.STATEMENT,
                account__office_path__startswith=office.path,
            ).values_list("bill_number", flat=True)
        elif kind == "bill":
            numbers = Bill.objects.filter(kind=Bill.Kind.FINAL).values_list("bill_number", flat=True)
        else:
            code, _, channel = rest.partition(":")
            office = offices_by_code.get(code)
            qs = Payment.objects.filter(channel=channel)
            qs = qs.filter(office=office) if office else qs.filter(office__isnull=True)
            numbers = qs.values_list("receipt_number", flat=True)
        seqs = [parse(n) for n in numbers if n]
        if any(s is None for s in seqs):
            continue  # a template this parser does not read
        issued = series.next_value - 1
        counts: dict[int, int] = defaultdict(int)
        for s in seqs:
            counts[s] += 1
        twice = sorted(s for s, c in counts.items() if c > 1)
        missing = [s for s in range(1, issued + 1) if s not in counts]
        beyond = sorted(s for s in counts if s > issued)
        if twice or missing or beyond:
            out.append(
                Violation(
                    "numbers_gap_free",
                    scope.month,
                    "",
                    f"series {series.key}: {issued} issued; missing {missing[:5]}, twice {twice[:5]}, "
                    f"beyond the counter {beyond[:5]}",
                )
            )
    return out


def rebates_are_credits(scope: Scope) -> list[Violation]:
    from urja.billing.models import Bill, EntryType, LedgerEntry

    out = [
        Violation("rebates_are_credits", scope.month, cn, f"bill {num}: rebate {r}, by due date {d}, digital {g}")
        for cn, num, r, d, g in Bill.objects.filter(pk__gt=scope.bill_after)
        .filter(Q(rebate__gt=0) | Q(rebate_by_due_date__gt=0) | Q(rebate_digital__gt=0))
        .values_list("account__consumer_number", "bill_number", "rebate", "rebate_by_due_date", "rebate_digital")
    ]
    out += [
        Violation("rebates_are_credits", scope.month, cn, f"ledger rebate entry {pk} of {amount} is not a credit")
        for cn, pk, amount in LedgerEntry.objects.filter(
            pk__gt=scope.entry_after, entry_type=EntryType.REBATE, amount__gte=0
        ).values_list("account__consumer_number", "pk", "amount")
    ]
    return out


def compensation_once(scope: Scope) -> list[Violation]:
    from django.db.models import Count

    from urja.billing.models import EntryType, LedgerEntry

    rows = (
        LedgerEntry.objects.filter(entry_type=EntryType.COMPENSATION, reverses__isnull=True)
        .values("account__consumer_number", "reference_type", "reference_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    out = [
        Violation(
            "compensation_once",
            scope.month,
            r["account__consumer_number"],
            f"compensation for {r['reference_type']} {r['reference_id']} credited {r['n']} times",
        )
        for r in rows
    ]
    # A type the service desk hands over (shifting) is compensated by the change request that carries it:
    # an award on a service request of that type is a second clock paying for the same work.
    from urja.servicedesk.handover import handed_over_types
    from urja.servicedesk.models import ServiceRequest

    handed = [  # reference ids are text (the request's pk as written by the award)
        str(pk)
        for pk in ServiceRequest.objects.filter(request_type__type_code__in=handed_over_types()).values_list(
            "pk", flat=True
        )
    ]
    second_clock = LedgerEntry.objects.filter(
        entry_type=EntryType.COMPENSATION, reverses__isnull=True, reference_type="service_request",
        reference_id__in=handed,
    ).values_list("account__consumer_number", "reference_id")  # fmt: skip
    out += [
        Violation(
            "compensation_once",
            scope.month,
            consumer_number,
            f"compensation on service request {ref} of a type the change request carries (shifting)",
        )
        for consumer_number, ref in second_clock
    ]
    return out


def message_sent_once(scope: Scope) -> list[Violation]:
    """No message sent twice. The outbox key is unique by a constraint, so the check is on what a key
    stands for: the same text to the same address on the same channel for the same event, sent
    twice within an hour, is one notification delivered twice (a second key for one event). The
    same text weeks apart is a second event (a prepaid supply switched off again)."""
    from datetime import timedelta

    from django.db.models import Count

    from urja.notifications.models import OutboxMessage

    sent = OutboxMessage.objects.filter(status="sent")
    group = ["event", "channel", "to", "body"]
    out = []
    for r in sent.values(*group).annotate(n=Count("id")).filter(n__gt=1)[:200]:
        times = sorted(sent.filter(**{k: r[k] for k in group}).values_list("created_at", flat=True))
        if any(b - a < timedelta(hours=1) for a, b in itertools.pairwise(times)):
            out.append(
                Violation(
                    "message_sent_once",
                    scope.month,
                    "",
                    f"{r['n']} identical {r['event']} messages sent to {r['to']} on {r['channel']} within an hour",
                )
            )
    return out


def status_changes_audited(scope: Scope) -> list[Violation]:
    """Every account not active has the audit event of its change; every payment posted, in
    suspense or reversed has its own audit event (state machines are enforced by the services)."""
    from urja.core.models import AuditEvent
    from urja.customers.models import Account
    from urja.payments.models import Payment, PaymentStatus

    out = []
    # the account's latest status audit must name its present status (an account opened active, or
    # pending for a new connection's demand note, is born in that state and needs none)
    latest = AuditEvent.objects.filter(
        object_type="customers.account", action="account.status_changed", object_id=Cast_text(OuterRef("pk"))
    ).order_by("-id")
    rows = (
        Account.objects.annotate(last=Subquery(latest.values("changes")[:1]))
        .filter(~Q(status__in=["active", "pending"]) | Q(last__isnull=False))
        .values_list("consumer_number", "status", "last")
    )
    for cn, status, last in rows:
        if isinstance(last, str):  # a JSON column read through a subquery may come back as text
            import json

            last = json.loads(last)
        if last is None or last.get("to") != status:
            out.append(
                Violation(
                    "status_change_audited",
                    scope.month,
                    cn,
                    f"account is {status}; its last audited status change is {last.get('to') if last else 'none'}",
                )
            )
    # every audited account status change is one its state machine allows
    from urja.customers.models import ACCOUNT_STATUS

    changes = AuditEvent.objects.filter(
        object_type="customers.account", action="account.status_changed", pk__gt=scope.audit_after
    ).values_list("object_id", "changes")
    for object_id, change in changes:
        if isinstance(change, str):
            import json

            change = json.loads(change)
        before, after = (change or {}).get("from"), (change or {}).get("to")
        if before and after and after not in ACCOUNT_STATUS.allowed(before):
            cn = Account.objects.filter(pk=object_id).values_list("consumer_number", flat=True).first() or ""
            out.append(
                Violation("status_change_allowed", scope.month, cn, f"account went {before} → {after}, not allowed")
            )
    # a service request's present status is the one its latest audited status change names
    from urja.servicedesk.models import ServiceRequest

    latest_sr = AuditEvent.objects.filter(
        object_type="servicedesk.servicerequest", action="servicedesk.status", object_id=Cast_text(OuterRef("pk"))
    ).order_by("-id")
    rows = (
        ServiceRequest.objects.annotate(last=Subquery(latest_sr.values("changes")[:1]))
        .filter(last__isnull=False)
        .values_list("number", "status", "last", "account__consumer_number")
    )
    for number, status, last, cn in rows:
        if isinstance(last, str):
            import json

            last = json.loads(last)
        if (last or {}).get("to") != status:
            out.append(
                Violation(
                    "status_change_audited",
                    scope.month,
                    cn or "",
                    f"request {number} is {status}; its last audited change is to {(last or {}).get('to')}",
                )
            )
    actions = {
        PaymentStatus.POSTED: "payment.posted",
        PaymentStatus.IN_SUSPENSE: "payment.suspense",
    }
    for status, action in actions.items():
        audit = AuditEvent.objects.filter(
            object_type="payments.payment", action=action, object_id=Cast_text(OuterRef("pk"))
        )
        # a settlement file's payments are audited once, by the file's event (set-based import)
        batch_audit = AuditEvent.objects.filter(
            object_type="payments.importbatch",
            action="payments.file_imported",
            object_id=Cast_text(OuterRef("batch_id")),
        )
        qs = (
            Payment.objects.filter(pk__gt=scope.payment_after, status=status)
            .filter(~Exists(audit))
            .filter(~Exists(batch_audit))
        )
        for cn, receipt in qs.values_list("consumer_number", "receipt_number")[:50]:
            out.append(
                Violation("status_change_audited", scope.month, cn, f"payment {receipt} {status} without {action}")
            )
    return out


def Cast_text(expr):
    from django.db.models import CharField
    from django.db.models.functions import Cast

    return Cast(expr, output_field=CharField())


def bad_input_landed(scope: Scope, expected: Iterable[dict] = ()) -> list[Violation]:
    """Each piece of bad input the simulation fed (its record) landed in an exception or suspense
    with a reason; the driver checks them as it feeds them and passes what it saw here."""
    return [
        Violation("bad_input_landed", scope.month, e.get("consumer_number", ""), e["detail"])
        for e in expected
        if not e.get("landed")
    ]


# ---- new connections -----------------------------------------------------------------------------


def _local_day(moment):
    from django.utils import timezone

    return timezone.localdate(moment)


def demand_notes_paid_once(scope: Scope) -> list[Violation]:
    """A paid demand note is paid exactly once: the payments on its account up to the energization
    (net of reversals) sum to the note's total — a replayed payment would make it twice."""
    from django.utils import timezone

    from urja.billing.models import EntryType, LedgerEntry
    from urja.connections.models import DemandNote

    out = []
    notes = DemandNote.objects.filter(status="paid").exclude(application__status__in=["rejected", "withdrawn"])
    for note in notes.select_related("application__account"):
        app = note.application
        if app.account_id is None:
            out.append(Violation("dn_paid_once", scope.month, "", f"demand note {note.number} paid without an account"))
            continue
        until = app.energized_at or timezone.now()
        paid = LedgerEntry.objects.filter(account_id=app.account_id, posted_at__lte=until).filter(
            Q(entry_type=EntryType.PAYMENT) | Q(entry_type=EntryType.REVERSAL, reverses__entry_type=EntryType.PAYMENT)
        )
        total = -_paise(paid.aggregate(s=_money())["s"])
        if total != note.total:
            out.append(
                Violation(
                    "dn_paid_once",
                    scope.month,
                    app.account.consumer_number,
                    f"demand note {note.number} of {note.total}: payments on its account up to the "
                    f"energization sum to {total}",
                )
            )
    return out


def energized_account_and_deposit(scope: Scope) -> list[Violation]:
    """Every energized application has exactly one account (opened for it, active since the
    energization day, its meter installed) and the demand note's deposit held once."""
    from datetime import timedelta

    from urja.billing.models import EntryType, LedgerEntry
    from urja.connections.models import Application
    from urja.customers.models import Account
    from urja.metering.models import Installation

    out = []
    for app in Application.objects.filter(status="energized").select_related("account", "demand_note"):
        cn = app.account.consumer_number if app.account_id else ""

        def bad(detail: str, cn=cn, app=app) -> None:
            out.append(Violation("energized_account", scope.month, cn, f"application {app.number}: {detail}"))

        if app.account_id is None:
            bad("energized without an account")
            continue
        opened = Account.objects.filter(
            consumer_id=app.consumer_id, created_at__gte=app.registered_at, created_at__lte=app.energized_at
        ).exclude(pk__in=Application.objects.exclude(pk=app.pk).exclude(account=None).values("account_id"))
        if list(opened.values_list("pk", flat=True)) != [app.account_id]:
            bad(f"accounts opened for it: {sorted(opened.values_list('consumer_number', flat=True))}")
        if app.account.status == "pending" or app.account.connected_on != _local_day(app.energized_at):
            bad(f"account {app.account.status}, connected on {app.account.connected_on}, energized {app.energized_at}")
        # installed as it was energized (metering stamps its own now, a moment after the application's)
        installed = Installation.objects.filter(
            account_id=app.account_id, installed_at__lte=app.energized_at + timedelta(minutes=5)
        )
        if not installed.exists():
            bad("no meter installed on its account")
        deposits = LedgerEntry.objects.filter(
            account_id=app.account_id, entry_type=EntryType.DEPOSIT, posted_at__lte=app.energized_at
        ).exclude(reversals__isnull=False)
        amounts = sorted(deposits.values_list("amount", flat=True))
        note = getattr(app, "demand_note", None)
        if note is None or amounts != [note.deposit]:
            bad(f"deposit entries {amounts}, the demand note's deposit {note.deposit if note else None}")
    return out


def no_bill_before_energization(scope: Scope) -> list[Violation]:
    """An application's account is billed only once energized: no bill for it before (or without)
    the energization, none for a period that ended before the connection day."""
    from urja.billing.models import Bill
    from urja.connections.models import Application

    apps = {
        a.account_id: a
        for a in Application.objects.exclude(account=None).only("account_id", "number", "status", "energized_at")
    }
    out = []
    rows = Bill.objects.filter(pk__gt=scope.bill_after, account_id__in=list(apps)).values_list(
        "account_id", "account__consumer_number", "bill_number", "period_start", "period_end", "created_at"
    )
    for account_id, cn, number, start, end, created in rows:
        app = apps[account_id]
        if app.energized_at is None:
            detail = f"bill {number} for application {app.number}, which is {app.status} (not energized)"
        elif created < app.energized_at or end < _local_day(app.energized_at):
            detail = f"bill {number} ({start} – {end}, made {created}) before the energization of {app.energized_at}"
        else:
            continue
        out.append(Violation("no_bill_before_energization", scope.month, cn, detail))
    return out


# ---- BBPS ----------------------------------------------------------------------------------------------


def bbps_once_per_reference(scope: Scope) -> list[Violation]:
    """One payment per BBPS reference (a replay returns the first)."""
    from django.db.models import Count

    from urja.payments.models import Payment

    rows = (
        Payment.objects.filter(reference__startswith="BBPS ")
        .values("reference")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("reference", "n")
    )
    out = []
    for reference, n in rows:
        cns = sorted(set(Payment.objects.filter(reference=reference).values_list("consumer_number", flat=True)))
        out.append(
            Violation("bbps_once_per_reference", scope.month, cns[0] if cns else "", f"{reference}: {n} payments")
        )
    return out


def bbps_fetch_matches_bill(scope: Scope) -> list[Violation]:
    """What BBPS fetched is the account's latest bill and what it owed at that moment: the amount is
    the ledger's balance then and, with nothing paid since the bill, the bill's net payable."""
    from datetime import datetime

    from urja.billing.models import Bill, EntryType, LedgerEntry

    out = []
    for seen in scope.observations.get("bbps_fetch", []):
        at = datetime.fromisoformat(seen["at"])
        cn = seen["consumer_number"]
        bill = Bill.objects.filter(bill_number=seen["bill_number"], account_id=seen["account_id"]).first()
        latest = (
            Bill.objects.filter(account_id=seen["account_id"], created_at__lte=at)
            .order_by("-period_start", "-id")
            .first()
        )
        if bill is None or latest is None or bill.pk != latest.pk:
            out.append(
                Violation(
                    "bbps_fetch_matches_bill",
                    scope.month,
                    cn,
                    f"fetched bill {seen['bill_number']}; the latest bill then was "
                    f"{latest.bill_number if latest else 'none'}",
                )
            )
            continue
        entries = LedgerEntry.objects.filter(account_id=seen["account_id"], posted_at__lte=at)
        owed = max(_paise(entries.aggregate(s=_money())["s"]), ZERO)
        fetched = Decimal(seen["bill_amount"])
        since = entries.filter(posted_at__gte=bill.created_at).exclude(entry_type=EntryType.BILL_CHARGE)
        problems = []
        if fetched != owed:
            problems.append(f"fetched {fetched}, the ledger owed {owed}")
        if not since.exists() and fetched != max(bill.net_payable, ZERO):
            problems.append(f"nothing paid since the bill, whose net payable is {bill.net_payable}")
        if Decimal(seen["late_payment_amount"]) != min(max(bill.net_payable, ZERO), owed):
            problems.append(f"late amount {seen['late_payment_amount']} ≠ min(net payable {bill.net_payable}, owed)")
        if problems:
            out.append(
                Violation(
                    "bbps_fetch_matches_bill", scope.month, cn, f"bill {bill.bill_number}: " + "; ".join(problems)
                )
            )
    return out


# ---- WhatsApp and SMS ------------------------------------------------------------------------------------


def bot_answered_once(scope: Scope) -> list[Violation]:
    """Every message the consumers sent is answered (not waiting, not failed) with exactly one reply
    queued in the outbox."""
    from urja.channels.models import InboundMessage
    from urja.notifications.models import OutboxMessage

    seen = scope.observations.get("bot_message", [])
    if not seen:
        return []
    messages = InboundMessage.objects.in_bulk([s["message_pk"] for s in seen])
    keys = {m.pk: f"reply:{m.channel}:{m.pk}:{m.channel}" for m in messages.values()}
    replies = defaultdict(int)
    for key in OutboxMessage.objects.filter(idempotency_key__in=keys.values()).values_list(
        "idempotency_key", flat=True
    ):
        replies[key] += 1
    out = []
    for s in seen:
        message = messages.get(s["message_pk"])
        if message is None:
            problem = "not stored"
        elif message.intent in ("", "failed"):
            problem = f"{message.channel} {message.message_id}: {'failed' if message.intent else 'never answered'}"
        elif replies[keys[message.pk]] != 1:
            problem = f"{message.channel} {message.message_id}: {replies[keys[message.pk]]} replies queued"
        else:
            continue
        out.append(Violation("bot_answered_once", scope.month, s["consumer_number"], problem))
    return out


def bot_bill_matches_ledger(scope: Scope) -> list[Violation]:
    """A bill reply names the account's latest bill and what the ledger said was owed when it was
    answered (the entries and bills up to that moment: `entry_upto`, `bill_upto`)."""
    from urja.billing.models import Bill, LedgerEntry
    from urja.channels.models import InboundMessage

    out = []
    for seen in scope.observations.get("bot_bill", []):
        message = InboundMessage.objects.filter(pk=seen["message_pk"]).first()
        if message is None:
            continue  # bot_answered_once names it
        latest = (
            Bill.objects.filter(account_id=seen["account_id"], pk__lte=seen["bill_upto"])
            .order_by("-period_start", "-id")
            .first()
        )
        entries = LedgerEntry.objects.filter(account_id=seen["account_id"], pk__lte=seen["entry_upto"])
        owed = max(_paise(entries.aggregate(s=_money())["s"]), ZERO)
        problems = []
        if message.intent != "bill":
            problems.append(f"answered {message.intent or 'nothing'}, not the bill")
        if latest is not None and latest.bill_number not in message.reply:
            problems.append(f"the latest bill {latest.bill_number} not named")
        if f"{owed:.2f}" not in message.reply:
            problems.append(f"the ledger owed {owed:.2f}")
        if problems:
            out.append(
                Violation(
                    "bot_bill_matches_ledger",
                    scope.month,
                    seen["consumer_number"],
                    f"{message.channel} {message.message_id} replied {message.reply!r}: " + "; ".join(problems),
                )
            )
    return out


# ---- outages -------------------------------------------------------------------------------------------


def outage_compensated_once(scope: Scope) -> list[Violation]:
    """Every account stored as affected by a restored unplanned outage (servicedesk.OutageAccount, filled
    when it was declared) is judged once it is restored, and compensated exactly once when the
    restoration was late for it: its award is the schedule's for the delay from the outage's start to
    its OWN restoration (its meter's restore, else the outage's; nothing when its meter proved supply),
    less what a linked complaint earned; one ledger credit per (outage, account), equal to the award;
    no credit to an account the outage did not store, nor to one without supply (pending, or closed
    before the outage). (The credit is in the arrears of the next bill: arrears_equal_ledger.)"""
    from datetime import timedelta

    from django.db.models import Count

    from urja.billing.models import EntryType, LedgerEntry
    from urja.core import regdata
    from urja.core.models import AuditEvent
    from urja.customers.models import Account
    from urja.reports.models import OutageAward
    from urja.servicedesk import catalogue, sla
    from urja.servicedesk import compensation as comp
    from urja.servicedesk.models import CompensationAward, Outage, OutageAccount

    out = []
    restored = Outage.objects.filter(
        kind="unplanned", status="restored", restored_at__isnull=False, pk__in=OutageAccount.objects.values("outage_id")
    )
    if not restored.exists():
        return out
    schedule = catalogue.active_schedule()
    cfg = regdata.load("reports/energy.toml").get("outage_compensation", {})
    threshold = int((schedule.document.get("settings") or {}).get("many_affected_threshold", 50))
    number_of: dict[int, str] = {}

    def cn(account_id: int) -> str:
        if account_id not in number_of:
            number_of[account_id] = (
                Account.objects.filter(pk=account_id).values_list("consumer_number", flat=True).first() or ""
            )
        return number_of[account_id]

    def flag(account_id: int, text: str) -> None:
        out.append(Violation("outage_compensated_once", scope.month, cn(account_id), text))

    for outage in restored.order_by("pk"):
        entries = LedgerEntry.objects.filter(
            entry_type=EntryType.COMPENSATION, reference_type="outage", reference_id=str(outage.pk)
        ).exclude(reversals__isnull=False)
        twice = entries.values("account_id").annotate(n=Count("id")).filter(n__gt=1).values_list("account_id", "n")
        for account_id, n in twice:
            flag(account_id, f"outage {outage.number}: credited {n} times")
        credited = dict(entries.values_list("account_id", "amount"))
        awards = dict(OutageAward.objects.filter(outage=outage).values_list("account_id", "amount"))
        rows = {
            r.account_id: r
            for r in OutageAccount.objects.filter(outage=outage).select_related("account").only(
                "account_id", "restored_at", "supplied", "award", "judged_at", "account__area",
                "account__supply_type", "account__created_at",
            )
        }  # fmt: skip
        for account_id in (set(credited) | set(awards)) - set(rows):
            flag(account_id, f"outage {outage.number}: award off its area (not among the accounts it stored)")
        subtype = cfg.get("feeder_subtype", "line_breakdown") if outage.transformer_id is None else cfg.get(
            "dt_subtype", "no_power_supply"
        )  # fmt: skip
        rt = catalogue.find_type(type_code="no_power_supply", subtype_code=subtype, schedule=schedule)
        rule = schedule.document.get("compensation", {}).get(rt.compensation_key)
        rule = comp.for_subtype(rule, subtype) if rule else None
        per = "hour" if rule and rule["basis"] == "per_hour" else "day"
        many = outage.affected_accounts >= threshold
        by_request: dict[int, Decimal] = defaultdict(Decimal)
        for account_id, amount in CompensationAward.objects.filter(request__outage=outage).values_list(
            "account_id", "amount"
        ):
            by_request[account_id] += amount
        for account_id, row in rows.items():
            if row.account.created_at > outage.created_at:
                flag(account_id, f"outage {outage.number}: stored an account opened after it was declared")
            if row.restored_at is None:
                continue  # its meter's restore still awaited (the grace closes it)
            if row.judged_at is None:
                flag(account_id, f"outage {outage.number}: restored {row.restored_at:%Y-%m-%d %H:%M}, never judged")
                continue
            owed = Decimal(0)
            late = 0
            if rule is not None and not row.supplied:
                due = outage.starts_at + timedelta(hours=rt.timeline_value(row.account.area))
                late = sla.units_late(due=due, closed_at=row.restored_at, per=per)
                supply_class = comp.supply_class_of(row.account.supply_type)
                full = comp.compute(rule, units_late=late, supply_class=supply_class, many_affected=many).amount
                owed = max(full - by_request.get(account_id, Decimal(0)), Decimal(0))
            if row.award != owed:
                flag(account_id, f"outage {outage.number} ({outage.starts_at:%Y-%m-%d %H:%M} – its restoration "
                                 f"{row.restored_at:%Y-%m-%d %H:%M}, {late} {per}(s) late): awarded {row.award}, "
                                 f"{owed} due")  # fmt: skip
            paid = -credited[account_id] if account_id in credited else None
            if owed > 0 and (paid is None or awards.get(account_id) is None):
                flag(account_id, f"outage {outage.number}: no compensation; {owed} owed (award "
                                 f"{awards.get(account_id)}, ledger credit {credited.get(account_id)})")  # fmt: skip
            elif (paid is not None or account_id in awards) and (paid, awards.get(account_id)) != (row.award,) * 2:
                flag(account_id, f"outage {outage.number}: award {awards.get(account_id)}, ledger credit "
                                 f"{credited.get(account_id)}, judged {row.award}")  # fmt: skip
        # no award to an account without supply at the outage: pending (never energized) or
        # permanently disconnected before it started (its audited status change)
        for account_id, status in Account.objects.filter(
            pk__in=list(awards), status__in=["pending", "perm_disconnected"]
        ).values_list("pk", "status"):
            closed_before = AuditEvent.objects.filter(
                object_type="customers.account",
                object_id=str(account_id),
                action="account.status_changed",
                changes__to="perm_disconnected",
                at__lt=outage.starts_at,
            ).exists()
            if status == "pending" or closed_before:
                flag(account_id, f"outage {outage.number}: {awards[account_id]} awarded to an account without supply "
                                 f"({status})")  # fmt: skip
    return out


# ---- energy accounting ---------------------------------------------------------------------------------


def energy_accounting_adds_up(scope: Scope) -> list[Violation]:
    """For each period recomputed: every DT's billed energy and amount are its accounts' bills; a
    feeder's are its DTs' plus its accounts without a DT; an office's are its child offices' plus its
    own accounts'; the utility's billed energy (less assessment) is the sum of the period's bills' units."""
    from urja.billing.models import Bill
    from urja.reports import services as reports
    from urja.reports.models import EnergyBalance

    out = []
    tol = Decimal("0.002")
    for period in sorted(set(scope.observations.get("accounting_period", []))):
        first, last = reports.parse_period(period)
        bills = Bill.objects.filter(period_end__gte=first, period_end__lte=last)
        rows = {
            (r["level"], r["node_id"]): r
            for r in EnergyBalance.objects.filter(period=period, category="").values(
                "level", "node_id", "code", "parent_level", "parent_id", "billed_kwh", "assessed_kwh", "billed_amount"
            )
        }
        if not rows:
            out.append(Violation("energy_accounting_adds_up", scope.month, "", f"{period}: no energy balance stored"))
            continue
        direct: dict[tuple, list] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        grouped = bills.values("account__transformer_id", "account__feeder_id", "account__section_id").annotate(
            kwh=_money("units"), amount=_money("total")
        )
        dt_feeder = {nid: r["parent_id"] for (lvl, nid), r in rows.items() if lvl == "dt"}
        office_of = {nid: (lvl, nid) for (lvl, nid) in rows if lvl not in ("dt", "feeder")}
        for g in grouped:
            dt, feeder, section = g["account__transformer_id"], g["account__feeder_id"], g["account__section_id"]
            kwh, amount = Decimal(str(g["kwh"] or 0)), Decimal(str(g["amount"] or 0))
            if dt is not None and ("dt", dt) in rows:
                key = ("dt", dt)
            else:
                feeder = feeder if feeder is not None else dt_feeder.get(dt)
                key = ("feeder", feeder) if feeder is not None else None
            if key is not None:
                direct[key][0] += kwh
                direct[key][1] += amount
            office_key = office_of.get(section)
            if office_key is not None:
                direct[("office", *office_key)][0] += kwh
                direct[("office", *office_key)][1] += amount
        children: dict[tuple, list] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        for (lvl, _nid), r in rows.items():
            if r["parent_id"] is None:
                continue
            parent = (r["parent_level"], r["parent_id"])
            if lvl == "feeder":  # feeders roll into their feeder total only; offices sum offices
                continue
            children[parent][0] += r["billed_kwh"] - r["assessed_kwh"]
            children[parent][1] += r["billed_amount"]
        for (lvl, nid), r in rows.items():
            if lvl in ("dt", "feeder"):
                expect = direct[(lvl, nid)]
                if lvl == "feeder":
                    expect = [expect[0] + children[(lvl, nid)][0], expect[1] + children[(lvl, nid)][1]]
            else:
                own = direct[("office", lvl, nid)]
                expect = [own[0] + children[(lvl, nid)][0], own[1] + children[(lvl, nid)][1]]
            got = [r["billed_kwh"] - r["assessed_kwh"], r["billed_amount"]]
            if abs(got[0] - expect[0]) > tol or abs(got[1] - expect[1]) > PAISA:
                out.append(
                    Violation(
                        "energy_accounting_adds_up",
                        scope.month,
                        "",
                        f"{period} {lvl} {r['code']}: billed {got[0]} kWh / {got[1]}; its parts sum to "
                        f"{expect[0].quantize(Decimal('0.001'))} kWh / {expect[1].quantize(PAISA)}",
                    )
                )
        roots = [r for r in rows.values() if r["parent_id"] is None and r["level"] not in ("dt", "feeder")]
        units = Decimal(str(bills.aggregate(s=_money("units"))["s"] or 0))
        billed = sum((r["billed_kwh"] - r["assessed_kwh"] for r in roots), Decimal(0))
        if abs(billed - units) > tol:
            out.append(
                Violation(
                    "energy_accounting_adds_up",
                    scope.month,
                    "",
                    f"{period}: the utility's billed energy {billed} kWh ≠ the period's bills' units {units}",
                )
            )
    return out


# ---- prepaid wallets and the mini-grid ----------------------------------------------------------------


def wallets_add_up(scope: Scope) -> list[Violation]:
    """A prepaid wallet's balance (payments.selectors.wallet_balance) is what was recharged (posted
    payments) less what was charged (each day's PrepaidCharge, once a day, and the other debits:
    deposits, package top-ups, instalments) plus other credits (rebates, compensation)."""
    from urja.billing.models import EntryType, LedgerEntry
    from urja.payments import selectors as pay
    from urja.payments.models import Payment, PaymentStatus, PrepaidCharge, PrepaidWallet

    out = []
    for wallet in PrepaidWallet.objects.select_related("account"):
        account = wallet.account
        recharged = _paise(
            Payment.objects.filter(account=account, status=PaymentStatus.POSTED).aggregate(s=_money())["s"]
        )
        charges = PrepaidCharge.objects.filter(wallet=wallet)
        charged = _paise(charges.aggregate(s=_money())["s"])
        entries = LedgerEntry.objects.filter(account=account)
        # every other movement: not a payment (or its reversal) nor a day's charge
        other = entries.exclude(entry_type=EntryType.PAYMENT).exclude(reference_type="prepaid_day")
        other = other.exclude(entry_type=EntryType.REVERSAL, reverses__entry_type=EntryType.PAYMENT)
        other = other.exclude(reverses__reference_type="prepaid_day")
        bounced = Payment.objects.filter(account=account).exclude(status=PaymentStatus.POSTED)
        bounced = bounced.exclude(status=PaymentStatus.IN_SUSPENSE)
        other_sum = _paise(other.aggregate(s=_money())["s"])
        reversed_sum = _paise(
            entries.filter(entry_type=EntryType.PAYMENT, payment__in=bounced).aggregate(s=_money())["s"]
        ) + _paise(
            entries.filter(entry_type=EntryType.REVERSAL, reverses__payment__in=bounced).aggregate(s=_money())["s"]
        )
        expect = recharged - charged - other_sum - reversed_sum
        balance = pay.wallet_balance(account=account)
        problems = []
        if balance != expect:
            problems.append(
                f"balance {balance}; recharges {recharged} − day charges {charged} − other movements {other_sum} "
                f"= {expect}"
            )
        days = entries.filter(reference_type="prepaid_day").exclude(reversals__isnull=False)
        dup = days.values("reference_id").annotate(n=Count_("id")).filter(n__gt=1)
        dup = dup.values_list("reference_id", flat=True)
        if list(dup):
            problems.append(f"days charged twice: {sorted(dup)[:5]}")
        if problems:
            out.append(Violation("wallet_adds_up", scope.month, account.consumer_number, "; ".join(problems)))
    return out


def Count_(field: str):
    from django.db.models import Count

    return Count(field)


def minigrid_package_in_force(scope: Scope) -> list[Violation]:
    """The package the account is priced on is the one its latest package change put in force."""
    from urja.minigrid.models import PackageChange

    out = []
    latest: dict[int, PackageChange] = {}
    for change in (
        PackageChange.objects.filter(status="in_force")
        .select_related("customer__account")
        .order_by("in_force_at", "pk")
    ):
        latest[change.customer_id] = change
    for change in latest.values():
        account = change.customer.account
        if account.package_code != change.to_package:
            out.append(
                Violation(
                    "minigrid_package_in_force",
                    scope.month,
                    account.consumer_number,
                    f"change {change.number} put {change.to_package} in force; "
                    f"the account is on {account.package_code}",
                )
            )
    return out


def shifting_note_settled_before_work(scope: Scope) -> list[Violation]:
    """A shifting of any kind (a meter, an LT / 11 kV / 33 kV line, a DT structure) goes to the field only
    once its demand note is paid: replaying the account's ledger up to the moment the work became due
    (`paid_at`) in the allocation order, none of the note's charges is still open — a payment of the
    monthly bill is not a payment of the note."""
    from datetime import datetime

    from urja.billing.models import EntryType, LedgerEntry
    from urja.connections.models import SHIFTING_KINDS, ChangeKind, ChangeRequest
    from urja.connections.shifting import REFERENCE_TYPE
    from urja.payments import allocation as alloc
    from urja.payments import selectors as pay

    order, entry_types = pay.allocation_order()
    out = []
    for change in ChangeRequest.objects.filter(kind__in=SHIFTING_KINDS).select_related("account"):
        outcome = change.outcome or {}
        if not outcome.get("demand_note") or not outcome.get("paid_at"):
            continue
        paid_at = datetime.fromisoformat(outcome["paid_at"])
        rows = LedgerEntry.objects.filter(account_id=change.account_id, posted_at__lte=paid_at).order_by(
            "posted_at", "id"
        )
        entries = [
            (pk, etype, amount, due, _local_day(posted))
            for pk, etype, amount, due, posted in rows.values_list(
                "pk", "entry_type", "amount", "due_date", "posted_at"
            )
        ]
        items, _ = alloc.open_items(entries, today=_local_day(paid_at), order=order, entry_types=entry_types)
        note = {
            str(pk)
            for pk in rows.filter(
                reference_type=REFERENCE_TYPE, reference_id=change.number, entry_type=EntryType.CHARGE
            ).values_list("pk", flat=True)
        }
        unpaid = sum((i.amount for i in items if i.key in note), ZERO)
        if unpaid > 0:
            what = ChangeKind(change.kind).label.lower()
            out.append(
                Violation(
                    "shifting_note_settled",
                    scope.month,
                    change.account.consumer_number,
                    f"{what} {change.number} sent to the field with {_paise(unpaid)} of its demand note "
                    f"{outcome['demand_note']['number']} unpaid",
                )
            )
    return out


# a DT's move and the work it records happen in one transaction: their times differ by at most this
DT_MOVE_SLACK_SECONDS = 300


def dt_moved_by_its_work(scope: Scope) -> list[Violation]:
    """A DT structure's geo point moves only with the field work of its shifting. The audit trail is the
    DT's point history (`network.transformer_moved`, written by `network.move_transformer`, whose reason
    names the request):

    * every move names a DT-structure shifting of that DT which is applied, at the moment its work was
      recorded (`applied_at`), not before its demand note was paid (`paid_at`), to the point the work
      recorded — a move of a request still due, or of another DT, is a move before the work was done;
    * every applied DT-structure shifting has exactly one move;
    * the moves of a DT chain (each starts where the one before ended) and the DT stands at the last
      one's point — a point changed outside a shifting shows as a break;
    * a DT whose structure shifting is still open (not applied) does not stand at the inspected new point.

    A never-moved DT's point has no history to compare with: a silent change of it is outside what the
    data can show."""
    from datetime import datetime

    from urja.connections.models import ChangeRequest, ChangeStatus
    from urja.core.models import AuditEvent
    from urja.network.models import DistributionTransformer

    out: list[Violation] = []
    requests = {
        c.number: c
        for c in ChangeRequest.objects.filter(kind="dt_shifting")
        .select_related("account", "inspection__transformer")
        .order_by("pk")
    }
    moves = list(
        AuditEvent.objects.filter(
            action="network.transformer_moved", object_type=DistributionTransformer._meta.label_lower
        ).order_by("at", "pk")
    )
    dts = DistributionTransformer.objects.in_bulk(
        [int(e.object_id) for e in moves] + [c.inspection.transformer_id for c in requests.values() if _inspected_dt(c)]
    )

    def point(lat, lon) -> tuple[str, str]:
        return (str(_geo(lat)), str(_geo(lon)))

    def flag(change, detail: str) -> None:
        out.append(Violation("dt_moved_by_its_work", scope.month, _cn(change.account) if change else "", detail))

    moved_by: dict[str, int] = defaultdict(int)
    last: dict[int, tuple] = {}
    for event in moves:
        dt_id = int(event.object_id)
        dt = dts.get(dt_id)
        code = dt.code if dt else f"#{dt_id}"
        changes = event.changes or {}
        to = point(changes.get("latitude"), changes.get("longitude"))
        reason = str(changes.get("reason", ""))
        number = reason.split()[-1] if reason.startswith("request ") else ""
        change = requests.get(number)
        if dt_id in last:
            before = changes.get("from") or {}
            if point(before.get("latitude"), before.get("longitude")) != last[dt_id]:
                flag(change, f"DT {code} moved from {before} at {event.at:%Y-%m-%d %H:%M}, but its last move "
                             f"left it at {last[dt_id]}: its point changed outside a shifting")  # fmt: skip
        last[dt_id] = to
        if change is None:
            flag(None, f"DT {code} moved at {event.at:%Y-%m-%d %H:%M} ({reason or 'no reason'}) by no DT-structure "
                       "shifting")  # fmt: skip
            continue
        moved_by[number] += 1
        outcome = change.outcome or {}
        problems = []
        if change.status != ChangeStatus.APPLIED or change.applied_at is None:
            problems.append(f"the request is {change.status}: moved before its work was done")
        elif abs((event.at - change.applied_at).total_seconds()) > DT_MOVE_SLACK_SECONDS:
            problems.append(
                f"moved at {event.at:%Y-%m-%d %H:%M}, its work recorded at {change.applied_at:%Y-%m-%d %H:%M}"
            )
        if outcome.get("paid_at") and event.at < datetime.fromisoformat(outcome["paid_at"]):
            problems.append(f"moved before its demand note was paid ({outcome['paid_at'][:16]})")
        if not _inspected_dt(change) or change.inspection.transformer_id != dt_id:
            problems.append("the request's inspection names another DT")
        if change.status == ChangeStatus.APPLIED and to != point(outcome.get("latitude"), outcome.get("longitude")):
            problems.append(f"moved to {to}, the work recorded {outcome.get('latitude')}, {outcome.get('longitude')}")
        if problems:
            flag(change, f"DT {code} moved for {change.number}: " + "; ".join(problems))
    for dt_id, at in last.items():
        dt = dts.get(dt_id)
        if dt is not None and point(dt.latitude, dt.longitude) != at:
            owner = next((c for c in requests.values() if _inspected_dt(c) and c.inspection.transformer_id == dt_id),
                         None)  # fmt: skip
            flag(owner, f"DT {dt.code} stands at {point(dt.latitude, dt.longitude)}, its last move left it at {at}: "
                        "its point changed outside a shifting")  # fmt: skip
    for number, change in requests.items():
        if change.status == ChangeStatus.APPLIED and moved_by[number] != 1:
            flag(change, f"DT-structure shifting {number} applied with {moved_by[number]} moves of its DT (one wanted)")
        elif change.status in OPEN_DT_SHIFTING and _inspected_dt(change):
            inspection, dt = change.inspection, dts.get(change.inspection.transformer_id)
            new = point(inspection.latitude, inspection.longitude)
            if dt is not None and inspection.latitude is not None and point(dt.latitude, dt.longitude) == new:
                flag(change, f"DT {dt.code} already stands at {new}, where {number} ({change.status}) is to move it")
    return out


# a DT-structure shifting inspected but not yet applied (its DT must still stand where it was)
OPEN_DT_SHIFTING = ("inspected", "approved", "field_work")


def _inspected_dt(change) -> bool:
    from urja.connections.models import ChangeInspection

    try:
        return change.inspection.transformer_id is not None
    except ChangeInspection.DoesNotExist:
        return False


def _geo(value) -> Decimal | None:
    if value in (None, ""):
        return None
    return Decimal(str(value)).quantize(Decimal("0.000001"))


CHECKS: dict[str, Callable[[Scope], list[Violation]]] = {
    "units_never_negative": units_never_negative,
    "estimate_trued_up": estimates_trued_up,
    "arrears_equal_ledger": arrears_equal_ledger,
    "received_in_ledger": payments_in_ledger_or_suspense,
    "bill_lines_match_engine": bill_lines_match_engine,
    "demand_plausible": demand_plausible,
    "bill_period_ended": bill_period_ended,
    "numbers_gap_free": numbers_gap_free,
    "rebates_are_credits": rebates_are_credits,
    "compensation_once": compensation_once,
    "message_sent_once": message_sent_once,
    "status_change_audited": status_changes_audited,
    "dn_paid_once": demand_notes_paid_once,
    "energized_account": energized_account_and_deposit,
    "no_bill_before_energization": no_bill_before_energization,
    "bbps_once_per_reference": bbps_once_per_reference,
    "bbps_fetch_matches_bill": bbps_fetch_matches_bill,
    "bot_answered_once": bot_answered_once,
    "bot_bill_matches_ledger": bot_bill_matches_ledger,
    "outage_compensated_once": outage_compensated_once,
    "energy_accounting_adds_up": energy_accounting_adds_up,
    "wallet_adds_up": wallets_add_up,
    "minigrid_package_in_force": minigrid_package_in_force,
    "shifting_note_settled": shifting_note_settled_before_work,
    "dt_moved_by_its_work": dt_moved_by_its_work,
}


class Checker:
    """Runs every check over what was added since the previous `run` (ids only grow)."""

    def __init__(self, *, seed: int = 0, checks: dict | None = None):
        self.rng = random.Random(f"{seed}:checks")
        self.checks = dict(checks or CHECKS)
        self.bill_after = self.payment_after = self.entry_after = self.audit_after = 0
        self.observations: dict[str, list] = defaultdict(list)

    def observe(self, kind: str, value) -> None:
        """Something the driver saw that a check verifies at the month's end (a BBPS fetch, a
        period recomputed)."""
        self.observations[kind].append(value)

    def mark(self) -> None:
        """Start from now: data already there is not checked again (a simulation over a demo)."""
        from urja.billing.models import Bill, LedgerEntry
        from urja.core.models import AuditEvent
        from urja.payments.models import Payment

        self.bill_after = Bill.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        self.payment_after = Payment.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        self.entry_after = LedgerEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        self.audit_after = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    def run(self, *, month: str, extra: Iterable[Violation] = ()) -> list[Violation]:
        scope = Scope(
            month=month,
            bill_after=self.bill_after,
            payment_after=self.payment_after,
            entry_after=self.entry_after,
            audit_after=self.audit_after,
            rng=self.rng,
            observations=dict(self.observations),
        )
        out = list(extra)
        for check in self.checks.values():
            out += check(scope)
        self.observations = defaultdict(list)
        self.mark()
        return out
