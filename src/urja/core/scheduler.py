"""Periodic jobs. Each app declares PERIODIC_TASKS = {name: {"task": dotted, "schedule": seconds}}
in its tasks.py; Celery beat runs them in production, `urja run`'s scheduler thread otherwise."""

import logging
import threading
import time

from django.db import close_old_connections

from urja.apps_registry import app_modules

log = logging.getLogger(__name__)


def collect() -> dict[str, dict]:
    schedule: dict[str, dict] = {}
    for _app, module in app_modules("tasks"):  # urja.apps_registry: the one list of apps
        schedule.update(getattr(module, "PERIODIC_TASKS", {}))
    return schedule


class EmbeddedScheduler(threading.Thread):
    """Runs the periodic tasks in-process (no broker): the embedded default's Celery beat."""

    def __init__(self, schedule: dict[str, dict] | None = None, tick: float = 1.0):
        super().__init__(name="urja-scheduler", daemon=True)
        self.schedule = schedule if schedule is not None else collect()
        self.tick = tick
        self.stopped = threading.Event()

    def run(self) -> None:
        from urja.celery import app

        next_run = {name: time.monotonic() + 2 for name in self.schedule}
        while not self.stopped.is_set():
            now = time.monotonic()
            for name, entry in self.schedule.items():
                if now >= next_run[name]:
                    next_run[name] = now + float(entry["schedule"])
                    try:
                        close_old_connections()
                        app.tasks[entry["task"]].apply(kwargs=entry.get("kwargs", {}))
                    except Exception:  # a failing job must not stop the others
                        log.exception("periodic task %s failed", name)
                    finally:
                        close_old_connections()
            self.stopped.wait(self.tick)
