"""The production gunicorn settings: what the master builds before forking touches neither the
database nor the broker (a connection made there would be shared by every worker)."""

import os
import subprocess
import sys

CHECK = """
import django, os
os.environ["DJANGO_SETTINGS_MODULE"] = "urja.settings"
django.setup()
from urja import gunicorn_conf
gunicorn_conf.warm()
from django.db import connections
from urja.celery import app
assert all(c.connection is None for c in connections.all(initialized_only=True)), "database touched"
assert app._pool is None, "broker pool created"
print(gunicorn_conf.worker_class, gunicorn_conf.workers, gunicorn_conf.preload_app)
"""


def test_master_warm_up_opens_no_connection():
    env = {
        **os.environ,
        # unreachable on purpose: warm() must not try them
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
        "WEB_WORKERS": "3",
        "WEB_THREADS": "",
    }
    done = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["sync", "3", "True"]


def test_threads_switch_to_the_threaded_worker():
    env = {**os.environ, "WEB_THREADS": "4"}
    code = "from urja import gunicorn_conf as g; print(g.worker_class, g.threads)"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["gthread", "4"]
