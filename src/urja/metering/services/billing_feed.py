"""What billing calls: the energy to bill for one account and period (`billing_consumption`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from urja.core.calendars import IST
from urja.core.errors import DomainError, NotFound
from urja.core.models import Channel
from urja.customers.models import Account
from urja.metering import consumption as calc
from urja.metering.models import (
    USABLE_VEE,
    Installation,
    Reading,
    ReadingStatus,
    VeeStatus,
)
from urja.metering.selectors import (
    _day_end,
    _segments,
    _usable,
    meter_rent_applies,
    rollover_margin,
)
from urja.metering.services.readings import (
    _estimate,
    validate_reading,
)


@dataclass
class BillingConsumption:
    """Energy for one account and billing period. Decimals; kWh to 3 places; MD already × MF."""

    consumer_number: str
    period_start: date
    period_end: date
    kwh: Decimal  # units to bill for the period, never negative
    kvah: Decimal | None
    md_kw: Decimal | None
    md_kva: Decimal | None
    tod: dict[str, Decimal]
    status: str  # "actual" | "estimated" | "provisional"
    exceptions: list[dict] = field(default_factory=list)
    held: bool = False  # a reading of the period waits in the VEE review queue
    md_exceeded: bool = False  # bill this cycle on the actual MD (Rights of Consumers Rules)
    estimation_method: str = ""
    opening: dict | None = None
    closing: dict | None = None
    reconciliation: dict | None = None  # when an actual reading settles earlier estimates
    meter_serial: str | None = None
    meter_rent_applies: bool = False
    meters: list[str] = field(default_factory=list)
    # Over-estimated units the actual reading withdraws from the estimates since the last actual
    # reading (≥ 0; `kwh` is then 0): billing credits their charges back (billing/trueup.py).
    withdrawn: Decimal = Decimal(0)
    last_actual_at: datetime | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _reading_brief(r: Reading) -> dict:
    return {
        "id": r.pk,
        "read_at": r.read_at.isoformat(),
        "kwh": r.kwh,
        "status": r.status,
        "source": r.source,
        "meter": r.meter.serial,
    }


def billing_consumption(
    *,
    account: Account,
    period_start: date,
    period_end: date,
    estimate_missing: bool = True,
    billed_at: datetime | None = None,
) -> BillingConsumption:
    """Units to bill for (period_start, period_end] (local dates, Asia/Kolkata).

    Opening reading: the last usable reading read on or before period_start (or the first of the
    period, e.g. the installation reading of a new connection). Closing: the last usable reading of
    the period; when there is none, an estimated reading is made at period_end (estimate_missing).
    Exact across meter replacements and register rollover. Raises DomainError `no_meter`,
    `no_reading`, or a register error code (e.g. `negative_consumption`).

    `billed_at`: when the account was last billed (billing passes its previous bill's `created_at`).
    The previous bill closed on the last usable reading recorded by then, so the opening (and the
    last actual reading that anchors a true-up of estimates) is chosen among those. A reading dated
    before the period but recorded after that bill — a late reading, a meter replacement recorded
    after the fact and backdated into a period billed on an estimate — is not an opening: its units
    are reached through the register chain from the true opening (old meter to its final reading,
    new meter from its installation reading), so nothing between the two is lost or billed twice.
    None: every reading counts (no earlier bill, or a preview).
    """
    if period_end <= period_start:
        raise DomainError("period_end must be after period_start", code="invalid_period")
    start_dt, end_dt = _day_end(period_start), _day_end(period_end)
    pending = Reading.objects.filter(account=account, vee_status=VeeStatus.PENDING, read_at__lt=end_dt)
    if pending.exists():
        for r in pending.select_related("account", "meter", "installation").order_by("read_at", "id"):
            with transaction.atomic():
                validate_reading(r)
    base = _usable(Reading.objects.select_related("installation", "meter").filter(account=account))
    # the readings the previous bill saw (every reading when there is none)
    known = base.filter(created_at__lte=billed_at) if billed_at is not None else base
    opening = known.filter(read_at__lt=start_dt).order_by("-read_at", "-id").first()
    if opening is None and billed_at is not None:
        opening = base.filter(read_at__lt=start_dt).order_by("-read_at", "-id").first()
    if opening is None:
        opening = base.filter(read_at__lt=end_dt).order_by("read_at", "id").first()
    if opening is None:
        if not Installation.objects.filter(account=account).exists():
            raise NotFound("the account has no meter", code="no_meter")
        raise DomainError("no reading to start the period from", code="no_reading")
    closing = base.filter(read_at__gte=start_dt, read_at__lt=end_dt).order_by("-read_at", "-id").first()
    if closing is None or closing.pk == opening.pk:
        if not estimate_missing:
            raise DomainError("no reading in the period", code="no_reading")
        at = min(datetime.combine(period_end, time(12), IST), timezone.now())
        with transaction.atomic():
            closing = _estimate(account=account, at=at, door_locked=False, actor=None, channel=Channel.SYSTEM)
        closing = Reading.objects.select_related("installation", "meter").get(pk=closing.pk)
    margin = rollover_margin()
    reconciliation = None
    last_actual = None
    withdrawn = Decimal(0)
    if opening.status != ReadingStatus.ACTUAL:
        last_actual = (
            known.filter(status=ReadingStatus.ACTUAL, read_at__lt=opening.read_at).order_by("-read_at", "-id").first()
        )
    if last_actual is not None:
        # Settling estimates: units since the last measured reading, less what the estimates billed.
        actual_units = calc.consumption(_segments(last_actual, closing), margin)
        billed = calc.consumption(_segments(last_actual, opening), margin)
        kwh = actual_units - billed
        if closing.status == ReadingStatus.ACTUAL:
            reconciliation = {
                "last_actual_reading": last_actual.pk,
                "actual_kwh_since_last_actual": actual_units,
                "estimated_kwh_already_billed": billed,
            }
        # Estimates above what the register later showed are withdrawn, never billed as negative
        # units: the period bills 0 and the surplus goes back to the estimated bills' charges.
        if kwh < 0:
            withdrawn, kwh = -kwh, Decimal(0)
            if reconciliation is not None:
                reconciliation["estimated_kwh_withdrawn"] = withdrawn
    else:
        kwh = calc.consumption(_segments(opening, closing, "kwh"), margin)
    try:
        kvah = calc.consumption(_segments(opening, closing, "kvah"), margin) if closing.kvah is not None else None
    except (calc.RegisterError, TypeError):
        kvah = None
    tod: dict[str, Decimal] = {}
    if opening.tod and closing.tod and opening.installation_id == closing.installation_id:
        tod = calc.tod_consumption(
            [(opening.tod, closing.tod, closing.meter.register_digits, closing.meter.multiplying_factor)], margin
        )
    period = Reading.objects.filter(account=account, read_at__gte=start_dt, read_at__lt=end_dt).select_related("meter")
    md_kw = md_kva = None
    exceptions: list[dict] = []
    held = False
    for r in period:
        if r.vee_status == VeeStatus.REVIEW:
            held = True
            exceptions.append(
                {"rule": "under_review", "severity": "review", "message": f"reading {r.pk} waits for review"}
            )
        if r.vee_status not in USABLE_VEE:
            continue
        for ex in r.exceptions or []:
            exceptions.append(ex)
        mf = r.meter.multiplying_factor
        if r.md_kw is not None:
            md_kw = max(md_kw or Decimal(0), r.md_kw * mf)
        if r.md_kva is not None:
            md_kva = max(md_kva or Decimal(0), r.md_kva * mf)
    meters = list(
        Installation.objects.filter(account=account, installed_at__lt=end_dt)
        .filter(Q(removed_at__isnull=True) | Q(removed_at__gte=start_dt))
        .order_by("installed_at")
        .values_list("meter__serial", flat=True)
    )
    status = {ReadingStatus.ACTUAL: "actual", ReadingStatus.PROVISIONAL: "provisional"}.get(closing.status, "estimated")
    return BillingConsumption(
        consumer_number=account.consumer_number,
        period_start=period_start,
        period_end=period_end,
        kwh=kwh.quantize(Decimal("0.001")),
        kvah=kvah.quantize(Decimal("0.001")) if kvah is not None else None,
        md_kw=md_kw,
        md_kva=md_kva,
        tod={k: v.quantize(Decimal("0.001")) for k, v in tod.items()},
        status=status,
        exceptions=exceptions,
        held=held,
        md_exceeded=any(e.get("rule") == "md_exceeded" for e in exceptions),
        estimation_method=closing.estimation_method,
        opening=_reading_brief(opening),
        closing=_reading_brief(closing),
        reconciliation=reconciliation,
        meter_serial=closing.meter.serial,
        meter_rent_applies=meter_rent_applies(account),
        meters=meters,
        withdrawn=withdrawn.quantize(Decimal("0.001")),
        last_actual_at=last_actual.read_at if last_actual is not None else None,
    )
