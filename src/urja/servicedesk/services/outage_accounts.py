"""The accounts of an outage, stored when it is declared (issue 14.4/14.5): who was affected does not
change when the network does afterwards (a consumer moved to another DT, an account opened later).

Every step is one set-based statement, never a loop over consumers (a feeder has 10,000+):

* `fill_outage_accounts` — ONE `INSERT … SELECT` for every outage of a declaration: the accounts on the
  DT (or the whole feeder) that have a supply to lose, each with its open smart meter and that meter's
  first last gasp since the outage's start (else the outage's start);
* `close_reported_restorations` — ONE `UPDATE`: each open row whose meter sent a restore after its failure
  is closed at that restore (the detector's pass);
* `close_outage_accounts` — when the outage is restored (by the meters' share or by the engineer): rows
  whose meter recorded energy during the outage and reported no failure never lost supply; the rows with
  no meter of their own to report take the outage's restoration; a row whose meter reported the failure
  waits for its own restore;
* `close_overdue_accounts` — a reported failure whose restore never came closes at the outage's
  restoration once `grace` has passed;
* `record_outage_awards` — each row's compensation, decided once (`judged_at`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef

from urja.customers.models import Account
from urja.metering.models import SMART_TYPES, Installation, IntervalReading, Meter, SmartMeterEvent
from urja.servicedesk.models import Outage, OutageAccount
from urja.servicedesk.selectors import NO_SUPPLY_STATUSES

FAIL, RESTORE = SmartMeterEvent.Kind.POWER_FAIL, SmartMeterEvent.Kind.POWER_RESTORE
# an interval reading proves supply only when it ended this long after the outage began (30-minute
# intervals: one that began before the failure would carry energy from before it)
PROOF_AFTER = timedelta(hours=1)
JUDGED_SLICE = 5_000


def _dt(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _in(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


@transaction.atomic
def fill_outage_accounts(*, outages: Sequence[Outage], until: datetime) -> dict[int, int]:
    """Store the affected accounts of new outages in one statement and set each outage's count;
    returns {outage: accounts}. A meter's last gasp counts from the outage's start up to `until`
    (now plus the gateway's clock skew). Idempotent: an account already stored is not stored twice."""
    if not outages:
        return {}
    ids = [o.pk for o in outages]
    on_dt = [o.pk for o in outages if o.transformer_id]
    on_feeder = [o.pk for o in outages if not o.transformer_id]
    oa, out, acc = OutageAccount._meta.db_table, Outage._meta.db_table, Account._meta.db_table
    inst, meter, event = Installation._meta.db_table, Meter._meta.db_table, SmartMeterEvent._meta.db_table
    smart, no_supply = sorted(SMART_TYPES), sorted(NO_SUPPLY_STATUSES)
    parts, params = [], []
    for where, join, chosen in (
        ("o.transformer_id IS NOT NULL", "a.transformer_id = o.transformer_id", on_dt),
        ("o.transformer_id IS NULL", "a.feeder_id = o.feeder_id", on_feeder),
    ):
        if not chosen:
            continue
        parts.append(
            f"SELECT o.id AS outage_id, a.id AS account_id, a.transformer_id AS transformer_id, "
            f"sm.meter_id AS meter_id, o.starts_at AS starts_at, "
            f"(SELECT MIN(e.at) FROM {event} e WHERE e.meter_id = sm.meter_id AND e.kind = %s "
            f" AND e.at >= o.starts_at AND e.at <= %s) AS own_fail "
            f"FROM {out} o JOIN {acc} a ON {join} "
            f"LEFT JOIN (SELECT i.account_id AS account_id, i.meter_id AS meter_id FROM {inst} i "
            f" JOIN {meter} m ON m.id = i.meter_id "
            f" WHERE i.removed_at IS NULL AND m.meter_type IN ({_in(smart)})) sm ON sm.account_id = a.id "
            f"WHERE {where} AND o.id IN ({_in(chosen)}) AND a.status NOT IN ({_in(no_supply)})"
        )
        params += [FAIL, _dt(until), *smart, *chosen, *no_supply]
    # MATERIALIZED: each meter's last gasp looked up once (inlined, PostgreSQL ran the lookup twice)
    sql = (
        f"WITH x AS MATERIALIZED ({' UNION ALL '.join(parts)}) "
        f"INSERT INTO {oa} (outage_id, account_id, transformer_id, meter_id, failed_at, fail_reported, "
        f"restore_reported, supplied) "
        f"SELECT x.outage_id, x.account_id, x.transformer_id, x.meter_id, COALESCE(x.own_fail, x.starts_at), "
        f"CASE WHEN x.own_fail IS NULL THEN %s ELSE %s END, %s, %s "
        f"FROM x WHERE 1 = 1 "
        f"ON CONFLICT (outage_id, account_id) DO NOTHING"
    )
    with connection.cursor() as c:
        c.execute(sql, [*params, False, True, False, False])
    counts = dict(
        OutageAccount.objects.filter(outage_id__in=ids).values_list("outage_id").annotate(n=Count("id")).order_by()
    )
    for o in outages:
        o.affected_accounts = counts.get(o.pk, 0)
    Outage.objects.bulk_update(outages, ["affected_accounts"])
    return counts


@transaction.atomic
def close_reported_restorations(*, until: datetime) -> set[int]:
    """Every open row whose smart meter sent a restore after the row's failure (and by `until`) is
    closed at that restore, in one statement; returns the outages whose rows closed."""
    oa, event = OutageAccount._meta.db_table, SmartMeterEvent._meta.db_table
    restore = (
        f"FROM {event} e WHERE e.meter_id = {oa}.meter_id AND e.kind = %s AND e.at >= {oa}.failed_at AND e.at <= %s"
    )
    sql = (
        f"UPDATE {oa} SET restore_reported = %s, restored_at = (SELECT MIN(e.at) {restore}) "
        f"WHERE restored_at IS NULL AND meter_id IS NOT NULL AND EXISTS (SELECT 1 {restore}) "
        f"RETURNING outage_id"
    )
    with connection.cursor() as c:
        c.execute(sql, [True, RESTORE, _dt(until), RESTORE, _dt(until)])
        return {row[0] for row in c.fetchall()}


def close_outage_accounts(*, outage: Outage) -> None:
    """The outage is restored (`outage.restored_at`): a row whose meter reported no failure but recorded
    energy while the outage lasted was never out (`supplied`, nothing due); the other rows with no
    failure of their own reported take the outage's restoration; a row whose meter reported the failure
    keeps waiting for its restore (`close_reported_restorations`, else `close_overdue_accounts`)."""
    if outage.restored_at is None:
        return
    rows = OutageAccount.objects.filter(outage=outage, restored_at__isnull=True, fail_reported=False)
    proof_from = outage.starts_at + PROOF_AFTER
    if proof_from <= outage.restored_at:
        energy = IntervalReading.objects.filter(
            meter_id=OuterRef("meter_id"), ts__gte=proof_from, ts__lte=outage.restored_at, kwh__gt=Decimal(0)
        )
        rows.filter(Exists(energy)).update(supplied=True, restored_at=outage.starts_at)
    rows.update(restored_at=outage.restored_at)


def close_overdue_accounts(*, now: datetime, grace: timedelta) -> int:
    """Rows still open `grace` after their outage was restored (a restore that never came) close at the
    outage's restoration; one statement."""
    oa, out = OutageAccount._meta.db_table, Outage._meta.db_table
    sql = (
        f"UPDATE {oa} SET restored_at = (SELECT o.restored_at FROM {out} o WHERE o.id = {oa}.outage_id) "
        f"WHERE restored_at IS NULL AND outage_id IN (SELECT o.id FROM {out} o WHERE o.status = %s "
        f"AND o.restored_at IS NOT NULL AND o.restored_at <= %s)"
    )
    with connection.cursor() as c:
        c.execute(sql, [Outage.Status.RESTORED, _dt(now - grace)])
        return c.rowcount


def record_outage_awards(*, judged: Sequence[tuple[int, Decimal, int]], at: datetime) -> int:
    """Each row's compensation decided — (row id, amount, units late); a row is judged once (a row judged
    already keeps its first judgement). One `UPDATE` per (amount, units late) — a judgement has a handful
    of distinct awards however many accounts — in slices of `JUDGED_SLICE` ids (SQLite's parameter limit),
    instead of a `CASE` per row (quadratic: every row of the statement tested against every branch)."""
    groups: dict[tuple[Decimal, int], list[int]] = defaultdict(list)
    for row_id, amount, units in judged:
        groups[(amount, units)].append(row_id)
    done = 0
    for (amount, units), ids in sorted(groups.items()):
        for i in range(0, len(ids), JUDGED_SLICE):
            done += OutageAccount.objects.filter(pk__in=ids[i : i + JUDGED_SLICE], judged_at__isnull=True).update(
                award=amount, units_late=units, judged_at=at
            )
    return done
