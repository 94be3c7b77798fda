"""Celery application. Without CELERY_BROKER_URL tasks run eagerly in-process."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "urja.settings")

app = Celery("urja")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _periodic(sender, **kwargs):
    from urja.core.scheduler import collect

    sender.conf.beat_schedule = collect()
