"""Mini-grid accounts were opened without a DT: each site gets its node on the network (a feeder for the
plant's LT bus and a DT for its distribution point, data/minigrid/rules.toml [network]) and its accounts
are placed on it, so energy accounting and outages see them. The same as network.services.site_transformer,
on the historical models."""

from decimal import Decimal

from django.db import migrations


def _rules():
    try:
        from urja.core import regdata

        return regdata.load("minigrid/rules.toml")["network"]
    except Exception:  # the data file is not there (an old checkout): Urja's convention
        return {"node_code": "MG-{site}", "bus_kv": "0.40"}


def place(apps, schema_editor):
    Site = apps.get_model("network", "MiniGridSite")
    Feeder = apps.get_model("network", "Feeder")
    DT = apps.get_model("network", "DistributionTransformer")
    Account = apps.get_model("customers", "Account")
    rules = _rules()
    for site in Site.objects.all():
        if site.transformer_id is None:
            code = rules["node_code"].format(site=site.code)
            feeder, _ = Feeder.objects.get_or_create(
                code=code,
                defaults={"name": f"{site.name} mini-grid bus", "office_id": site.office_id,
                          "voltage_kv": Decimal(rules["bus_kv"])},
            )  # fmt: skip
            dt, _ = DT.objects.get_or_create(code=code, defaults={"feeder": feeder, "capacity_kva": site.capacity_kw})
            site.transformer = dt
            site.save(update_fields=["transformer"])
        dt = DT.objects.get(pk=site.transformer_id)
        Account.objects.filter(minigrid_site=site, transformer__isnull=True).update(
            transformer=dt, feeder_id=dt.feeder_id
        )


class Migration(migrations.Migration):
    dependencies = [
        ("minigrid", "0002_site_customer_package_is_the_accounts"),
        ("network", "0002_minigrid_site_node"),
        ("customers", "0002_account_status_pending"),
    ]

    operations = [migrations.RunPython(place, migrations.RunPython.noop)]
