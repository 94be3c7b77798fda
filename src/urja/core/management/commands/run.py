"""`urja run`: migrate, load demo data the first time, start the background jobs and serve."""

import logging
import threading

from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from urja.apps_registry import app_modules
from urja.core.scheduler import EmbeddedScheduler

log = logging.getLogger("urja.run")


def start_background_services(stop: threading.Event) -> list[str]:
    """Each app may offer runtime.start(stop) for its long-running parts (MQTT gateway, …)."""
    started = []
    for _app, runtime in app_modules("runtime"):  # the apps of urja.apps_registry, lowest layer first
        started.extend(runtime.start(stop) or [])
    return started


def first_start() -> bool:
    """No office yet: a new database. Offices are network's; core sits below it and imports no app,
    so the model is named through Django's app registry (a renamed model fails loudly here)."""
    return not apps.get_model("network", "Office").objects.exists()


class Command(BaseCommand):
    help = "Run Urja: web UI and API, background jobs and (in the embedded default) the demo."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--no-demo", action="store_true", help="do not load demo data on first start")
        parser.add_argument("--no-background", action="store_true", help="serve only (jobs run elsewhere)")

    def handle(self, *args, addr, no_demo, no_background, **options):
        call_command("migrate", interactive=False, verbosity=0)
        if not no_demo and first_start():
            self.stdout.write("First start: loading demo data (urja demo)…")
            call_command("demo")
        stop = threading.Event()
        if not no_background:
            if settings.CELERY_TASK_ALWAYS_EAGER:
                EmbeddedScheduler().start()
                self.stdout.write("Background jobs: in-process scheduler (no broker configured).")
            else:
                self.stdout.write("Background jobs: start `celery -A urja worker -B` (broker configured).")
            for name in start_background_services(stop):
                self.stdout.write(f"Started: {name}")
        self.stdout.write(f"Urja is serving on http://{addr}/  (back office /backoffice/, API /api/v1/docs)")
        self.stdout.write(
            f"Consumer portal: http://{addr}/portal/  (sign in with the mobile number; in the embedded default "
            "the one-time code is in the back office's message outbox)"
        )
        try:
            call_command("runserver", addr, use_reloader=False, use_threading=True)
        finally:
            stop.set()
