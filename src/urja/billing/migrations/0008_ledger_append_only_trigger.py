"""The ledger is append-only in the database too: on PostgreSQL a trigger refuses UPDATE and DELETE on
billing_ledgerentry, whoever issues them (raw SQL, another app, a console). A correction is a new
entry (billing.ledger.reverse_entry). TRUNCATE (test teardown, bench resets) is not a row operation
and is not blocked. Nothing on SQLite: the model's save/delete guards are the check there."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION billing_ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'billing_ledgerentry is append-only: % refused (post a correcting entry instead)', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_ledger_append_only
    BEFORE UPDATE OR DELETE ON billing_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION billing_ledger_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS billing_ledger_append_only ON billing_ledgerentry;
DROP FUNCTION IF EXISTS billing_ledger_append_only();
"""


def _run(schema_editor, sql: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    # no parameters: the '%' of RAISE's format must reach the server as written
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(sql)


def create(apps, schema_editor):
    _run(schema_editor, CREATE)


def drop(apps, schema_editor):
    _run(schema_editor, DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0007_exception_implausible_demand"),
    ]

    operations = [migrations.RunPython(create, drop)]
