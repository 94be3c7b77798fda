import pytest


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # Staff users are created in most tests; PBKDF2 costs ~0.3 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
