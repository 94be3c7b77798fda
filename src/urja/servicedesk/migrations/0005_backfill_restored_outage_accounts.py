"""Restored outages declared before `OutageAccount` existed have no stored accounts (0003 filled only those
announced or in force then), so the reliability indices (reports.operations: SAIFI/SAIDI from the stored
rows) would not count them. Their rows are built from the network as it is now — the accounts on the
outage's DT (else its whole feeder) that had a supply (not pending or disconnected) and were opened
before the outage began — plus any account that was paid compensation for it (it was affected, wherever
it is now). Each row has the outage's start and end as its own times (no meter reported either).

Nothing is paid again: a row of a restored unplanned outage is stored as judged — with the award that
outage compensation credited then (`reports.OutageAward`), else nothing — so the compensation job never
picks it up. Set-based: ONE `INSERT … SELECT … ON CONFLICT DO NOTHING` for every such outage; an outage
that has rows already is left as it is (rerunning adds nothing)."""

from django.db import migrations

# customers.AccountStatus without a supply (servicedesk.selectors.NO_SUPPLY_STATUSES when written)
NO_SUPPLY = ("pending", "temp_disconnected", "perm_disconnected")


def backfill_restored_outages(apps, schema_editor):
    connection = schema_editor.connection
    Outage = apps.get_model("servicedesk", "Outage")
    OutageAccount = apps.get_model("servicedesk", "OutageAccount")
    Account = apps.get_model("customers", "Account")
    OutageAward = apps.get_model("reports", "OutageAward")
    oa, out = OutageAccount._meta.db_table, Outage._meta.db_table
    acc, award = Account._meta.db_table, OutageAward._meta.db_table
    no_supply = ", ".join(["%s"] * len(NO_SUPPLY))
    # the outages to fill: restored, with no stored row
    todo = f"o.status = %s AND o.restored_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {oa} r WHERE r.outage_id = o.id)"
    judged = "o.kind = %s"
    sql = (
        f"INSERT INTO {oa} (outage_id, account_id, transformer_id, meter_id, failed_at, fail_reported, restored_at, "
        f"restore_reported, supplied, award, units_late, judged_at) "
        f"SELECT o.id, a.id, a.transformer_id, NULL, o.starts_at, %s, o.restored_at, %s, %s, "
        f"CASE WHEN {judged} THEN COALESCE(w.amount, 0) END, "
        f"CASE WHEN {judged} THEN w.units_late END, "
        f"CASE WHEN {judged} THEN COALESCE(w.created_at, o.restored_at) END "
        f"FROM ("
        f" SELECT o.id AS outage_id, a.id AS account_id FROM {out} o JOIN {acc} a ON "
        f"  (o.transformer_id IS NOT NULL AND a.transformer_id = o.transformer_id) "
        f"  OR (o.transformer_id IS NULL AND a.feeder_id = o.feeder_id) "
        f" WHERE {todo} AND a.status NOT IN ({no_supply}) AND a.created_at <= o.starts_at "
        f" UNION "
        f" SELECT w.outage_id, w.account_id FROM {award} w JOIN {out} o ON o.id = w.outage_id WHERE {todo}"
        f") pair "
        f"JOIN {out} o ON o.id = pair.outage_id JOIN {acc} a ON a.id = pair.account_id "
        f"LEFT JOIN {award} w ON w.outage_id = pair.outage_id AND w.account_id = pair.account_id "
        f"WHERE 1 = 1 "
        f"ON CONFLICT (outage_id, account_id) DO NOTHING"
    )
    params = [False, False, False, "unplanned", "unplanned", "unplanned",
              "restored", *NO_SUPPLY, "restored"]  # fmt: skip
    with connection.cursor() as c:
        c.execute(sql, params)


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0002_account_status_pending"),
        ("reports", "0002_outage_awards"),
        ("servicedesk", "0004_outage_accounts_lean"),
    ]

    operations = [migrations.RunPython(backfill_restored_outages, migrations.RunPython.noop)]
