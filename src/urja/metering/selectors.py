"""Metering reads: configuration, meters and installations, consumption over a chain of readings,
the reading schedule and the readers' book. Nothing here writes; `urja.metering.services` re-exports
these names for the callers that use them from there."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from urja.core import regdata
from urja.core.calendars import IST
from urja.core.errors import DomainError, NotFound
from urja.customers.models import Account, AccountStatus
from urja.metering import consumption as calc
from urja.metering import schedule, vee
from urja.metering.models import (
    REGISTER_STATUSES,
    USABLE_VEE,
    Installation,
    IntervalReading,
    Meter,
    Ownership,
    ReadCycle,
    Reading,
    ReadingStatus,
)


def vee_config() -> dict:
    return regdata.load("metering/vee.toml")


def vee_rules() -> vee.Rules:
    return vee.Rules(vee_config()["rules"])


def rollover_margin() -> Decimal:
    return Decimal(str(vee_config()["register"]["rollover_margin"]))


def meters_config() -> dict:
    return regdata.load("metering/meters.toml")


def reading_config() -> dict:
    return regdata.load("metering/reading.toml")


def _local_date(moment: datetime) -> date:
    return moment.astimezone(IST).date()


def _day_end(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), IST)


def get_meter(*, serial: str) -> Meter:
    try:
        return Meter.objects.get(serial=str(serial).strip().upper())
    except Meter.DoesNotExist as exc:
        raise NotFound(f"no meter with serial {serial}", code="unknown_meter") from exc


def current_installation(account: Account) -> Installation | None:
    return Installation.objects.select_related("meter").filter(account=account, removed_at__isnull=True).first()


def installation_at(meter: Meter, at: datetime) -> Installation | None:
    return (
        Installation.objects.select_related("account")
        .filter(meter=meter, installed_at__lte=at)
        .filter(Q(removed_at__isnull=True) | Q(removed_at__gte=at))
        .order_by("-installed_at")
        .first()
    )


def meter_rent_applies(account: Account) -> bool:
    """False when the account's meter is consumer-owned (OERC Supply Code reg. 102(ii)) or it has none."""
    inst = current_installation(account)
    return bool(inst and inst.meter.ownership == Ownership.UTILITY)


def _segments(
    opening: Reading, closing: Reading, attr: str = "kwh", *, installations: list[Installation] | None = None
) -> list[calc.Segment]:
    """Register segments from `opening` to `closing`, one per meter that served the account.
    `installations`: the account's installations (meter selected, ordered by installed_at, id)
    already loaded (batch VEE); otherwise they are queried."""
    if opening.installation_id == closing.installation_id:
        meter = closing.meter
        return [
            calc.Segment(
                getattr(opening, attr), getattr(closing, attr), meter.register_digits, meter.multiplying_factor
            )
        ]
    lo, hi = opening.installation.installed_at, closing.installation.installed_at
    if installations is None:
        insts = list(
            Installation.objects.select_related("meter")
            .filter(account_id=closing.account_id, installed_at__gte=lo)
            .filter(installed_at__lte=hi)
            .order_by("installed_at", "id")
        )
    else:
        insts = [i for i in installations if i.account_id == closing.account_id and lo <= i.installed_at <= hi]
    segments = []
    for inst in insts:
        start = getattr(opening, attr) if inst.pk == opening.installation_id else getattr(inst, f"initial_{attr}")
        end = getattr(closing, attr) if inst.pk == closing.installation_id else getattr(inst, f"final_{attr}")
        if start is None or end is None:
            raise calc.RegisterError(f"{attr} missing at a replacement", code="missing_register")
        segments.append(calc.Segment(start, end, inst.meter.register_digits, inst.meter.multiplying_factor))
    return segments


def consumption_between(
    opening: Reading, closing: Reading, *, installations: list[Installation] | None = None
) -> Decimal:
    return calc.consumption(_segments(opening, closing, installations=installations), rollover_margin())


def day_consumption(*, account: Account, day: date) -> Decimal | None:
    """kWh the account used on one local day (IST midnight to midnight), for prepaid daily charging.

    From the register: the last usable reading at or before midnight opening the day and the first at
    or after the midnight closing it, when they are at most an hour off those midnights (a smart meter
    sends its daily register at midnight; exact across replacement and rollover). Otherwise from the
    day's interval energy when the intervals cover the whole day. None while the day is not complete.
    """
    start = datetime.combine(day, time(0), IST)
    end = _day_end(day)
    slack = timedelta(hours=1)
    usable = _usable(Reading.objects.select_related("installation", "meter").filter(account=account))
    opening = usable.filter(read_at__lte=start, read_at__gte=start - slack).order_by("-read_at", "-id").first()
    closing = usable.filter(read_at__gte=end, read_at__lte=end + slack).order_by("read_at", "id").first()
    if opening is not None and closing is not None:
        return consumption_between(opening, closing)
    insts = Installation.objects.select_related("meter").filter(
        Q(removed_at__isnull=True) | Q(removed_at__gt=start), account=account, installed_at__lt=end
    )
    total, minutes = Decimal(0), 0
    for inst in insts:
        lo, hi = max(start, inst.installed_at), min(end, inst.removed_at or end)
        for kwh, span in IntervalReading.objects.filter(meter=inst.meter, ts__gt=lo, ts__lte=hi).values_list(
            "kwh", "minutes"
        ):
            total += kwh * inst.meter.multiplying_factor
            minutes += span
    if minutes and minutes >= (end - start).total_seconds() / 60:
        return total
    return None


def _usable(qs):
    return qs.filter(vee_status__in=USABLE_VEE, status__in=REGISTER_STATUSES, kwh__isnull=False)


def previous_reading(reading: Reading, *, actual_only: bool = False) -> Reading | None:
    qs = _usable(Reading.objects.select_related("installation", "meter").filter(account_id=reading.account_id))
    if actual_only:
        qs = qs.filter(status=ReadingStatus.ACTUAL)
    return qs.filter(read_at__lt=reading.read_at).exclude(pk=reading.pk).order_by("-read_at", "-id").first()


def next_reading(reading: Reading) -> Reading | None:
    """The first usable actual reading after `reading`: a reading that arrives late (older than the
    latest one) has a true neighbour on each side, and must fit between them."""
    qs = _usable(Reading.objects.select_related("installation", "meter").filter(account_id=reading.account_id))
    qs = qs.filter(status=ReadingStatus.ACTUAL, read_at__gt=reading.read_at).exclude(pk=reading.pk)
    return qs.order_by("read_at", "id").first()


def monthly_history(account: Account, *, before: datetime, months: int = 13) -> list[vee.MonthUse]:
    """Monthly consumption, normalised to 30 days: each pair of consecutive usable readings gives
    units over days, attributed to the month of the later reading (several pairs in a month add up)."""
    since = before - timedelta(days=31 * (months + 1))
    readings = list(
        _usable(Reading.objects.select_related("installation", "meter").filter(account=account))
        .filter(read_at__gte=since, read_at__lt=before)
        .order_by("read_at", "id")
    )
    return history_of(readings)


def history_of(readings: list[Reading], *, consumption=consumption_between) -> list[vee.MonthUse]:
    """`monthly_history` of usable readings already selected (ordered by read_at, id)."""
    months_acc: dict[tuple[int, int], list] = {}
    for a, b in itertools.pairwise(readings):
        seconds = (b.read_at - a.read_at).total_seconds()
        if seconds < 3600:
            continue
        try:
            units = consumption(a, b)
        except calc.RegisterError:
            continue
        d = _local_date(b.read_at)
        acc = months_acc.setdefault((d.year, d.month), [Decimal(0), Decimal(0), True])
        acc[0] += units
        acc[1] += Decimal(seconds) / Decimal(86400)
        acc[2] = acc[2] and b.status == ReadingStatus.ACTUAL and a.status == ReadingStatus.ACTUAL
    return [
        vee.MonthUse(y, m, (units / days * 30).quantize(Decimal("0.001")), actual=actual)
        for (y, m), (units, days, actual) in sorted(months_acc.items())
        if days > 0
    ]


def read_day(bill_cycle: str) -> int:
    """The cycle's fixed reading day: its ReadCycle row, else data/metering/reading.toml [cycles], else the
    code's digits (C07 → 7th), capped to 28."""
    return read_days([bill_cycle])[bill_cycle]


def reading_window(*, account: Account, year: int, month: int) -> tuple[date, date, date]:
    tolerance = int(reading_config()["tolerance_working_days"])
    return schedule.reading_window(account.section.calendar(), year, month, read_day(account.bill_cycle), tolerance)


def _in_window(account: Account, day: date) -> bool:
    tolerance = int(reading_config()["tolerance_working_days"])
    return schedule.in_window(account.section.calendar(), day, read_day(account.bill_cycle), tolerance)


def read_days(bill_cycles) -> dict[str, int]:
    """`read_day` of many cycles in one query (the ReadCycle rows), the rest from reading.toml."""
    codes = sorted(set(bill_cycles))
    found = dict(ReadCycle.objects.filter(code__in=codes).values_list("code", "read_day")) if codes else {}
    cycles = reading_config().get("cycles", {})
    out = {}
    for code in codes:
        if code in found:
            out[code] = found[code]
        elif code in cycles:
            out[code] = int(cycles[code])
        else:
            digits = "".join(ch for ch in code if ch.isdigit())
            out[code] = min(max(int(digits or 1), 1), 28)
    return out


def _check_period(year: int, month: int) -> None:
    if not (1 <= month <= 12 and 1 <= year <= 9999):
        raise DomainError(f"no month {year}-{month}", code="invalid_period")


def route_book_accounts(
    *, office_path: str, bill_cycle: str | None = None, route: str | None = None, routes: list[str] | None = None
):
    """The book's accounts (a queryset, by route then number): active accounts under the office, of one
    cycle (None: every cycle), of one route and / or of a beat's routes."""
    accounts = Account.objects.filter(office_path__startswith=office_path, status=AccountStatus.ACTIVE)
    if bill_cycle is not None:
        accounts = accounts.filter(bill_cycle=bill_cycle)
    if route:
        accounts = accounts.filter(route=route)
    if routes:
        accounts = accounts.filter(route__in=routes)
    return accounts.select_related("consumer", "section").order_by("route", "consumer_number", "pk")


def last_readings(account_ids) -> dict[int, dict]:
    """{account id: {read_at, kwh}} of each account's last usable reading — one query for all of them
    (per account, the newest usable row through the (account, read_at) index)."""
    ids = list(account_ids)
    if not ids:
        return {}
    newest = _usable(Reading.objects.filter(account_id=OuterRef("pk"))).order_by("-read_at", "-id").values("pk")[:1]
    picked = Account.objects.filter(pk__in=ids).annotate(last=Subquery(newest)).values("last")
    rows = Reading.objects.filter(pk__in=picked).values("account_id", "read_at", "kwh")
    return {row["account_id"]: row for row in rows}


def route_book_rows(accounts, *, year: int, month: int) -> list[dict]:
    """The book's rows for these accounts (a page of them): meter, location, last usable reading and the
    account's own reading window (its cycle's fixed day ± tolerance on its section's calendar). Queries:
    installations, last readings and read days once each, whatever the number of accounts."""
    _check_period(year, month)
    accounts = list(accounts)
    ids = [acc.pk for acc in accounts]
    insts = {
        i.account_id: i
        for i in Installation.objects.select_related("meter").filter(account_id__in=ids, removed_at__isnull=True)
    }
    last = last_readings([pk for pk in ids if pk in insts])
    days = read_days(acc.bill_cycle for acc in accounts)
    tolerance = int(reading_config()["tolerance_working_days"])
    calendars: dict[int, object] = {}
    windows: dict[tuple[int, int], tuple[date, date, date]] = {}
    rows = []
    for acc in accounts:
        inst = insts.get(acc.pk)
        day = days[acc.bill_cycle]
        key = (acc.section_id, day)
        if key not in windows:
            if acc.section_id not in calendars:
                calendars[acc.section_id] = acc.section.calendar()
            windows[key] = schedule.reading_window(calendars[acc.section_id], year, month, day, tolerance)
        window = windows[key]
        seen = last.get(acc.pk)
        rows.append(
            {
                "route": acc.route,
                "bill_cycle": acc.bill_cycle,
                "consumer_number": acc.consumer_number,
                "name": acc.consumer.name,
                "address": acc.premises_address,
                "meter": inst.meter.serial if inst else None,
                "meter_type": inst.meter.meter_type if inst else None,
                "location": inst.location if inst else "",
                "last_read_at": seen["read_at"] if seen else None,
                "last_kwh": seen["kwh"] if seen else None,
                "window": {"earliest": window[0], "scheduled": window[1], "latest": window[2]},
            }
        )
    return rows


def route_book(*, office_path: str, bill_cycle: str, year: int, month: int, route: str | None = None) -> list[dict]:
    """The readers' book: accounts of a cycle (and route) under an office, with meter, last reading and
    each account's own reading window."""
    _check_period(year, month)
    accounts = route_book_accounts(office_path=office_path, bill_cycle=bill_cycle, route=route)
    return route_book_rows(accounts, year=year, month=month)


def consumption_series(account: Account, *, months: int = 12, today: date | None = None) -> list[dict]:
    """Units per calendar month for the last `months` months: between the last usable readings of
    consecutive months (exact across replacements). Months without a reading have kwh None."""
    keys = schedule.months_back(today or timezone.localdate(), months)
    since = datetime(keys[0][0], keys[0][1], 1, tzinfo=IST)
    last: dict[tuple[int, int], Reading] = {}
    for r in (
        _usable(Reading.objects.select_related("installation", "meter").filter(account=account))
        .filter(read_at__gte=since)
        .order_by("read_at", "id")
    ):
        d = _local_date(r.read_at)
        last[(d.year, d.month)] = r
    opening = (
        _usable(Reading.objects.select_related("installation", "meter").filter(account=account))
        .filter(read_at__lt=since)
        .order_by("-read_at")
        .first()
    )
    series = []
    prev = opening
    for key in keys:
        r = last.get(key)
        row = {"year": key[0], "month": key[1], "kwh": None, "status": None}
        if r is not None and prev is not None:
            try:
                row["kwh"] = consumption_between(prev, r)
                row["status"] = r.status
            except calc.RegisterError:
                row["status"] = "error"
        if r is not None:
            prev = r
        series.append(row)
    return series[1:]
