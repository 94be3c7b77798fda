"""`urja tariffs load [FILE ...]` and `urja tariffs calculate …` (the bill calculator)."""

import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from urja.core.errors import DomainError
from urja.tariffs import services


class Command(BaseCommand):
    help = "Tariff schedules: load files from data/tariffs/, list them, or calculate a bill."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        load = sub.add_parser("load", help="load tariff files (default: every file in data/tariffs/)")
        load.add_argument("files", nargs="*")
        sub.add_parser("list", help="list the loaded versions")
        calc = sub.add_parser("calculate", help="line-by-line bill for given inputs")
        calc.add_argument("--from", dest="period_start", required=True, help="YYYY-MM-DD")
        calc.add_argument("--to", dest="period_end", required=True, help="YYYY-MM-DD (inclusive)")
        calc.add_argument("--units", default="0")
        calc.add_argument("--category", default="domestic")
        calc.add_argument("--sub-category", default="general")
        calc.add_argument("--area", default="urban")
        calc.add_argument("--schedule", default="")
        calc.add_argument("--package", default="")
        calc.add_argument("--load", default="1")
        calc.add_argument("--load-unit", default="kW")
        calc.add_argument("--md", default=None)
        calc.add_argument("--meter-type", default="static")
        calc.add_argument("--e-bill", action="store_true")
        calc.add_argument("--prepaid", action="store_true")
        calc.add_argument("--unmetered", action="store_true")
        calc.add_argument("--tod", action="append", default=[], help="WINDOW=kWh, e.g. TOD_PEAK=120")
        calc.add_argument("--json", action="store_true")

    def handle(self, *args, action, **o):
        try:
            if action == "load":
                results = [services.load_file(path=f) for f in o["files"]] if o["files"] else services.load_all()
                for r in results:
                    state = "loaded" if r.created else "unchanged"
                    self.stdout.write(f"{r.order.code}: {state} ({r.versions} schedules) from {r.order.file_name}")
            elif action == "list":
                from urja.tariffs.models import TariffVersion

                for v in TariffVersion.objects.select_related("order"):
                    self.stdout.write(
                        f"{v.schedule_code:28} {v.category:16} {v.effective_from} .. {v.effective_to or 'open':10} "
                        f"{v.order.code} {v.package_id}"
                    )
            else:
                tod = {}
                for item in o["tod"]:
                    key, _, value = item.partition("=")
                    tod[key] = value
                bill = services.calculate(
                    period_start=date.fromisoformat(o["period_start"]),
                    period_end=date.fromisoformat(o["period_end"]),
                    units=o["units"],
                    category=o["category"],
                    sub_category=o["sub_category"],
                    area=o["area"],
                    schedule=o["schedule"],
                    package_code=o["package"],
                    sanctioned_load=o["load"],
                    load_unit=o["load_unit"],
                    recorded_md=o["md"],
                    tod_units=tod,
                    meter_type=o["meter_type"],
                    metered=not o["unmetered"],
                    e_bill=o["e_bill"],
                    prepaid=o["prepaid"],
                )
                if o["json"]:
                    self.stdout.write(json.dumps(services.bill_as_dict(bill), indent=2, ensure_ascii=False))
                    return
                for seg in bill.segments:
                    self.stdout.write(f"# {seg.schedule.name} [{seg.schedule.order_code}] {seg.start} .. {seg.end}")
                for ln in bill.lines:
                    self.stdout.write(f"{ln.code:14} {ln.amount:>12}  {ln.description}: {ln.explanation}")
                self.stdout.write(f"{'TOTAL':14} {bill.total:>12}")
                if bill.conditional("by_due_date"):
                    self.stdout.write(f"{'BY DUE DATE':14} {bill.payable_by_due_date:>12}")
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
