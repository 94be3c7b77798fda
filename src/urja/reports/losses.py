"""Loss hunting (issue 14.3): suspect accounts per DT, the inspection list, the outcome.

A DT's suspects for a month (thresholds in data/reports/energy.toml [loss_hunting]):

* `drop_own`     — this month's metered units below `drop_vs_own_history` × the average of its previous
                   `history_months` bills (that average above zero);
* `drop_peers`   — below `drop_vs_peers` × the median of the same DT and category this month;
* `zero`         — `zero_months` bills in a row with zero units on an active metered account;
* `tamper`       — tamper, cover-open or magnet events of its meter in the month;
* `md_over_load` — recorded MD above the sanctioned load on `md_over_sanctioned_times` bills or more in
                   the financial year (April–March): the Supply Code's revision of the contract demand →
                   a load-change request is proposed (connections) for the highest MD.

`build_inspections` puts the suspects of the worst DTs on the field teams' list (one per account and
month); `record_outcome` closes one: theft books an assessment (a debit through billing's ledger, at the
category's assessment energy × the rate given), a load excess proposes the load change.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.db.models import Avg, Count, F, Max, Q
from django.utils import timezone

from urja.billing.models import Bill
from urja.core.errors import Conflict, DomainError
from urja.core.states import transition
from urja.customers.models import Account
from urja.metering.models import Installation, SmartMeterEvent

from .models import INSPECTION_STATUS, EnergyBalance, Inspection, Level
from .services import config, month_bounds, parse_period, previous_period


def _cfg() -> dict:
    return config()["loss_hunting"]


def financial_year(day: date) -> tuple[date, date]:
    start = date(day.year if day.month >= 4 else day.year - 1, 4, 1)
    return start, date(start.year + 1, 3, 31)


def suspects(*, period: str, transformer_id: int) -> dict[int, list[dict]]:
    """{account id: [{code, message}]} for the DT's accounts in the month (set-based per rule)."""
    first, last = parse_period(period)
    cfg = _cfg()
    accounts = Account.objects.filter(transformer_id=transformer_id)
    reasons: dict[int, list[dict]] = defaultdict(list)
    bills = Bill.objects.filter(account__in=accounts, kind=Bill.Kind.BILL, metered=True)
    now_units = dict(
        bills.filter(period_end__gte=first, period_end__lte=last).values_list("account_id").annotate(u=Max("units"))
    )
    # own history
    months = int(cfg["history_months"])
    since, _ = parse_period(previous_period(period, months))
    history = dict(
        bills.filter(period_end__gte=since, period_end__lt=first).values_list("account_id").annotate(a=Avg("units"))
    )
    ratio = Decimal(str(cfg["drop_vs_own_history"]))
    for acc, units in now_units.items():
        avg = history.get(acc)
        if avg and avg > 0 and units < ratio * Decimal(str(avg)):
            reasons[acc].append(
                {"code": "drop_own", "message": f"{units} kWh against {Decimal(str(avg)):.0f} kWh on average before"}
            )
    # peers: same DT and category this month
    peers = Decimal(str(cfg["drop_vs_peers"]))
    by_cat: dict[str, list[tuple[int, Decimal]]] = defaultdict(list)
    cats = dict(accounts.values_list("id", "category"))
    for acc, units in now_units.items():
        by_cat[cats.get(acc, "")].append((acc, units))
    for rows in by_cat.values():
        if len(rows) < 3:
            continue
        median = Decimal(str(statistics.median(u for _, u in rows)))
        for acc, units in rows:
            if median > 0 and units < peers * median:
                reasons[acc].append({"code": "drop_peers", "message": f"{units} kWh against the DT's median {median}"})
    # long zero consumption
    zero_months = int(cfg["zero_months"])
    since_zero, _ = parse_period(previous_period(period, zero_months - 1))
    recent = bills.filter(period_end__gte=since_zero, period_end__lte=last, account__status="active")
    for acc, n, zeros in recent.values_list("account_id").annotate(n=Count("id"), z=Count("id", filter=Q(units=0))):
        if n >= zero_months and zeros == n:
            reasons[acc].append({"code": "zero", "message": f"zero consumption for {n} months on an active account"})
    # tamper events of the account's meter in the month
    start, end = month_bounds(period)
    kinds = list(cfg["tamper_events"])
    meter_account = dict(
        Installation.objects.filter(account__in=accounts).filter(Q(removed_at__isnull=True) | Q(removed_at__gte=start))
        .values_list("meter_id", "account_id")
    )  # fmt: skip
    for meter_id, kind, n in (
        SmartMeterEvent.objects.filter(meter_id__in=meter_account, kind__in=kinds, at__gte=start, at__lt=end)
        .values_list("meter_id", "kind")
        .annotate(n=Count("id"))
    ):
        reasons[meter_account[meter_id]].append({"code": "tamper", "message": f"{n} {kind} event(s) this month"})
    # MD above the sanctioned load, again and again in the financial year
    fy_start, fy_end = financial_year(last)
    times = int(cfg["md_over_sanctioned_times"])
    for acc, n, top in (
        Bill.objects.filter(account__in=accounts, period_end__gte=fy_start, period_end__lte=min(fy_end, last))
        .filter(recorded_md__gt=F("sanctioned_load"))
        .values_list("account_id")
        .annotate(n=Count("id"), top=Max("recorded_md"))
    ):
        if n >= times:
            message = f"MD above the sanctioned load on {n} bills this year (up to {top})"
            reasons[acc].append({"code": "md_over_load", "message": message, "top_md": str(top)})
    return dict(reasons)


@transaction.atomic
def build_inspections(*, period: str, worst_dts: int = 20) -> int:
    """Put the suspects of the `worst_dts` DTs by AT&C loss on the inspection list (idempotent)."""
    parse_period(period)
    dts = list(
        EnergyBalance.objects.filter(period=period, level=Level.DT, category="", atc_loss__isnull=False)
        .order_by("-atc_loss")
        .values_list("node_id", flat=True)[:worst_dts]
    )
    created = 0
    for dt in dts:
        for account_id, why in suspects(period=period, transformer_id=dt).items():
            _, new = Inspection.objects.get_or_create(
                account_id=account_id, period=period, defaults={"transformer_id": dt, "reasons": why}
            )
            created += new
    return created


@transaction.atomic
def record_outcome(
    *,
    inspection: Inspection,
    outcome: str,
    actor,
    channel: str,
    remarks: str = "",
    assessed_kwh: Decimal | None = None,
    rate: Decimal | None = None,
) -> Inspection:
    """Close an inspection. Theft: an assessment (assessed kWh × rate) debited through billing's ledger.
    Load excess: a load-change request proposed for the highest recorded MD."""
    inspection = Inspection.objects.select_for_update().get(pk=inspection.pk)
    if not INSPECTION_STATUS.can(inspection.status, Inspection.Status.DONE):
        raise Conflict("the inspection is closed already", code="inspection_closed")
    if outcome not in Inspection.Outcome.values:
        raise DomainError(f"outcome must be one of {', '.join(Inspection.Outcome.values)}", code="invalid_outcome")
    if outcome == Inspection.Outcome.THEFT:
        if not assessed_kwh or assessed_kwh <= 0 or not rate or rate <= 0:
            raise DomainError("theft needs the assessed kWh and the rate", code="assessment_required")
        from urja.billing.ledger import post_entry

        amount = (assessed_kwh * rate).quantize(Decimal("0.01"))
        entry = post_entry(
            account=inspection.account,
            entry_type="debit_note",
            amount=amount,
            description=f"Assessment: unauthorised use found on inspection ({assessed_kwh} kWh × Rs {rate})",
            actor=actor,
            channel=channel,
            reference_type="inspection",
            reference_id=str(inspection.pk),
            idempotency_key=f"inspection_assessment:{inspection.pk}",
        )
        inspection.assessed_kwh, inspection.assessed_amount = assessed_kwh, amount
        inspection.ledger_reference = str(entry.pk)
    if outcome == Inspection.Outcome.LOAD_EXCEEDED:
        propose_load_change(inspection=inspection, actor=actor, channel=channel)
    inspection.outcome = outcome
    inspection.remarks = remarks[:2000]
    inspection.inspected_at = timezone.now()
    inspection.inspected_by = actor if getattr(actor, "pk", None) else None
    transition(
        inspection, INSPECTION_STATUS, Inspection.Status.DONE, actor=actor, channel=channel, reason=outcome,
        extra_fields=("outcome", "remarks", "inspected_at", "inspected_by", "assessed_kwh", "assessed_amount",
                      "ledger_reference"),
        action="reports.inspection_outcome",
        changes={"outcome": outcome, "assessed_amount": str(inspection.assessed_amount or "")},
    )  # fmt: skip
    return inspection


def propose_load_change(*, inspection: Inspection, actor, channel: str):
    """A load-change request for the highest MD recorded (rounded up to a whole kW)."""
    from urja.connections import changes

    top = next((Decimal(r["top_md"]) for r in inspection.reasons if r.get("code") == "md_over_load"), None)
    if top is None:
        raise DomainError("no MD above the sanctioned load on record", code="no_md_excess")
    load = top.to_integral_value(rounding="ROUND_CEILING")
    return changes.request_change(
        actor=actor, channel=channel, account=inspection.account, kind="load_change",
        details={"load": str(load), "unit": inspection.account.load_unit},
    )  # fmt: skip
