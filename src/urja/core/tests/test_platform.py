"""The platform's real parts: settings from the environment, Celery through a real Redis broker."""

import os
import subprocess
import sys

import pytest

from urja.core.scheduler import EmbeddedScheduler, collect


def _settings_check(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; django.setup(); from django.conf import settings; "
            "print(settings.DATABASES['default']['ENGINE'], settings.CELERY_TASK_ALWAYS_EAGER)",
        ],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "urja.settings", **env},
        capture_output=True,
        text=True,
    )


def test_production_requires_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**env, "DJANGO_SETTINGS_MODULE": "urja.settings", "URJA_ENV": "production"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_database_and_broker_come_from_the_environment(tmp_path):
    embedded = _settings_check({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", "CELERY_BROKER_URL": ""})
    assert embedded.stdout.split() == ["django.db.backends.sqlite3", "True"], embedded.stderr
    prod = _settings_check({"DATABASE_URL": "postgres://u@127.0.0.1/x", "CELERY_BROKER_URL": "redis://127.0.0.1/0"})
    assert prod.stdout.split() == ["django.db.backends.postgresql", "False"], prod.stderr


def test_every_periodic_task_is_a_registered_task():
    from urja.celery import app

    app.loader.import_default_modules()
    schedule = collect()
    for name, entry in schedule.items():
        assert entry["task"] in app.tasks, f"periodic job {name} names unknown task {entry['task']}"
        assert float(entry["schedule"]) > 0


def test_embedded_scheduler_runs_due_jobs():
    scheduler = EmbeddedScheduler(schedule={"ping": {"task": "urja.core.tasks.ping", "schedule": 0.05}}, tick=0.01)
    runs = []
    from urja.celery import app

    original = app.tasks["urja.core.tasks.ping"].apply

    def counting_apply(*args, **kwargs):
        runs.append(1)
        return original(*args, **kwargs)

    app.tasks["urja.core.tasks.ping"].apply = counting_apply
    try:
        scheduler.start()
        import time

        deadline = time.monotonic() + 5
        while len(runs) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.stopped.set()
        scheduler.join(2)
        app.tasks["urja.core.tasks.ping"].apply = original
    assert len(runs) >= 2


@pytest.mark.services
def test_task_round_trip_through_a_real_redis_broker():
    url = os.environ.get("URJA_TEST_REDIS_URL")
    if not url:
        pytest.skip("URJA_TEST_REDIS_URL not set (CI sets it after starting Redis)")
    from celery import Celery
    from celery.contrib.testing.worker import start_worker

    from urja.core.tasks import ping

    # A separate app with the project's Celery settings and a real Redis broker and result
    # backend; the shared app may already have cached its (disabled) result backend.
    app = Celery("urja-redis-check")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(broker_url=url, result_backend=url, task_always_eager=False)
    task = app.task(name="urja.core.tasks.ping")(ping.run)
    import celery.contrib.testing.tasks  # noqa: F401  (the worker helper expects celery.ping)

    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        result = task.delay("through-redis")
        assert result.get(timeout=20) == "through-redis"
