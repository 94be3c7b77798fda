"""`urja demo [--consumers N]`: build (or top up) the demo utility. Idempotent; see docs/demo.md."""

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Load demo data: a TPNODL-like utility, consumers, staff logins (password urja-demo)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--consumers", type=int, default=3000, help="household/business consumers wanted in total (default 3000)"
        )
        parser.add_argument("--seed", type=int, default=2025, help="random seed (same seed, same demo)")
        path = parser.add_mutually_exclusive_group()
        path.add_argument("--bulk", dest="bulk", action="store_true", default=None, help="force the bulk path")
        path.add_argument("--services", dest="bulk", action="store_false", help="force the service path")
        parser.add_argument("--chunk", type=int, default=25_000, help="consumers per bulk transaction")
        parser.add_argument(
            "--fast-load",
            dest="fast",
            action="store_true",
            default=None,
            help="PostgreSQL: drop and rebuild indexes around the load (default from 100,000 consumers)",
        )
        parser.add_argument("--no-hooks", action="store_true", help="skip other apps' demo data")
        parser.add_argument(
            "--strict-hooks",
            action="store_true",
            help="fail when an app's demo hook fails or an invariant is broken anywhere in the demo",
        )
        parser.add_argument(
            "--simulate",
            type=int,
            default=None,
            help="consumers whose last 12 months are simulated through the services (default: DEMO_SIMULATED; 0: none)",
        )
        parser.add_argument("--simulate-months", type=int, default=12, help="months the simulation lives")

    def handle(
        self, *args, consumers, seed, bulk, chunk, fast, no_hooks, strict_hooks, simulate, simulate_months, **options
    ):
        import logging

        from urja.demo import DEMO_SIMULATED, LOGINS, build

        # thousands of eager task results and dev-channel messages would drown the demo's lines
        for name in ("celery", "urja.notifications", "urja.billing", "urja.metering", "urja.payments"):
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger("urja.core.jobs").setLevel(logging.ERROR)
        from urja.demo.staff import DEMO_PASSWORD

        if consumers < 0 or consumers >= 10_000_000:
            raise CommandError("--consumers must be between 0 and 9,999,999")
        if chunk < 1:
            raise CommandError("--chunk must be positive")
        if simulate is None:
            simulate = 0 if no_hooks else DEMO_SIMULATED
        if simulate < 0 or not 3 <= simulate_months <= 24:
            raise CommandError("--simulate must be 0 or more and --simulate-months between 3 and 24")
        result = build(
            consumers=consumers,
            seed=seed,
            bulk=bulk,
            chunk=chunk,
            fast=fast,
            hooks=not no_hooks,
            strict_hooks=strict_hooks,
            stdout=lambda line: self.stdout.write(line),
            simulate=simulate,
            simulate_months=simulate_months,
        )
        self.stdout.write(
            f"Demo ready in {result.seconds:.1f}s: {result.consumers_created:,} new consumers "
            f"({result.path} path), {result.accounts_created:,} new accounts; "
            f"{result.consumers_total:,} demo consumers in all."
        )
        if result.timings:
            self.stdout.write("Fast load: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))
        failed = [name for name, outcome in result.hooks.items() if outcome.startswith("FAILED")]
        if failed:
            self.stderr.write(f"Demo hooks that failed (their data is missing): {', '.join(failed)}")
        if result.violations:
            self.stderr.write(
                f"Invariants broken in the demo: {len(result.violations)} (first: {result.violations[0]})"
            )
        self.stdout.write(f"Demo logins (password '{DEMO_PASSWORD}'):")
        for login in LOGINS:
            self.stdout.write(f"  {login.username:<10} {login.role:<20} {login.note}")
