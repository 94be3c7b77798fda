"""Fixtures shared by the whole suite."""

import os

import pytest

from urja.demo import testing


@pytest.fixture
def offices(db):
    return testing.office_tree()


@pytest.fixture
def cre(offices):
    return testing.staff_user("cre", offices["division1"])


@pytest.fixture
def admin_user(db):
    return testing.staff_user("admin", None)


@pytest.fixture
def account(offices):
    return testing.domestic_account(offices["section1"])


@pytest.fixture
def on_postgres() -> bool:
    return os.environ.get("URJA_TEST_ON_POSTGRES") == "1"


def pytest_configure(config):
    # Staff users are created in many tests; the production hasher costs ~0.3 s each.
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Background work (core.jobs.enqueue_background) runs inline after commit in tests, so a test sees
    # its result; the embedded default's worker thread has its own test (core/tests/test_jobs.py).
    settings.URJA_BACKGROUND_THREADS = False
