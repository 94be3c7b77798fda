"""Urja settings, read from the environment (see .env.example).

Embedded default: SQLite under var/, no broker (tasks run in-process, periodic jobs run in
`urja run`). Production: URJA_ENV=production, DATABASE_URL=postgres://..., CELERY_BROKER_URL.
"""

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from urja.apps_registry import installed_apps

SRC_DIR = Path(__file__).resolve().parent.parent
BASE_DIR = SRC_DIR.parent
VAR_DIR = Path(os.environ.get("URJA_VAR_DIR", BASE_DIR / "var"))
DATA_DIR = Path(os.environ.get("URJA_DATA_DIR", BASE_DIR / "data"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

URJA_ENV = os.environ.get("URJA_ENV", "development")
PRODUCTION = URJA_ENV == "production"

# The placeholder written in .env.example: copying the example unchanged must not give a working production.
SECRET_KEY_PLACEHOLDER = "change-me"


def weak_secret_key(key: str) -> str:
    """Why `key` is too weak to sign sessions and password-reset links, or '' when it is not.
    The bounds are Django's own (the W009 deploy check), so `check --deploy` and this agree."""
    from django.core.checks.security.base import (
        SECRET_KEY_INSECURE_PREFIX,
        SECRET_KEY_MIN_LENGTH,
        SECRET_KEY_MIN_UNIQUE_CHARACTERS,
    )

    if not key:
        return "is not set"
    if key == SECRET_KEY_PLACEHOLDER or key.startswith(SECRET_KEY_INSECURE_PREFIX) or "insecure" in key:
        return "is the example placeholder or a development key"
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"has {len(key)} characters (at least {SECRET_KEY_MIN_LENGTH} are needed)"
    if len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        return f"has only {len(set(key))} distinct characters (at least {SECRET_KEY_MIN_UNIQUE_CHARACTERS})"
    return ""


SECRET_KEY = os.environ.get("SECRET_KEY", "")
if PRODUCTION:
    if reason := weak_secret_key(SECRET_KEY):
        raise ImproperlyConfigured(
            f"SECRET_KEY {reason}; with URJA_ENV=production set a random one, e.g. "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(64))'`"
        )
elif not SECRET_KEY:
    SECRET_KEY = "dev-insecure-urja-key-not-for-production"

DEBUG = os.environ.get("DEBUG", "0" if PRODUCTION else "1") == "1"
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "ninja",  # its templates and static files: Swagger UI from here, not a CDN (offline, under the CSP)
    *installed_apps(),  # Urja's apps, lowest layer first: the one list is urja.apps_registry.URJA_APPS
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "urja.core.middleware.SecurityHeadersMiddleware",
    # innermost: the input boundary, DomainError pages, {code, message, details} for every API error
    "urja.core.errorpages.BoundaryMiddleware",
]
# @paginate's limit/offset within data/core/boundary.toml's bounds (negative or huge: 422, never a 500)
NINJA_PAGINATION_CLASS = "urja.core.boundary.BoundedLimitOffsetPagination"

ROOT_URLCONF = "urja.urls"
WSGI_APPLICATION = "urja.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [SRC_DIR / "urja" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # |rupees |inr |indian |day |when |label on every page (issue 15: one format everywhere)
            "builtins": ["urja.core.templatetags.urja_format"],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'urja.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL + a busy timeout let the web server, the scheduler thread and the MQTT gateway share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Tests on a file too, not the shared-cache in-memory default: there a second thread (the
    # embedded background worker) meets "database table is locked" at once, with no busy wait.
    # One file per test process (pytest-xdist adds its worker suffix), so two runs never share one.
    _name = Path(DATABASES["default"]["NAME"])
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"test_{os.getpid()}_{_name.name}")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# The portal's backend loads a signed-in consumer and their role in one query (urja/portal/auth.py).
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend", "urja.portal.auth.ConsumerBackend"]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/backoffice/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("hi", "हिन्दी"), ("or", "ଓଡ଼ିଆ")]
LOCALE_PATHS = [SRC_DIR / "urja" / "locale"]
TIME_ZONE = "Asia/Kolkata"
# One date format everywhere, dd-mm-yyyy (issue 15): Django's locale formats (hi: "j F Y") yield to ours.
FORMAT_MODULE_PATH = ["urja.formats"]
DATE_FORMAT = SHORT_DATE_FORMAT = "d-m-Y"
DATETIME_FORMAT = SHORT_DATETIME_FORMAT = "d-m-Y H:i"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [SRC_DIR / "urja" / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("URJA_MEDIA_ROOT", VAR_DIR / "media"))
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- security (docs/architecture.md "Security") ---------------------------------------------
# Production is served over HTTPS behind a reverse proxy (gunicorn binds 127.0.0.1): the proxy
# terminates TLS and says so in X-Forwarded-Proto, and appends the client to X-Forwarded-For.
URJA_HTTPS = os.environ.get("URJA_HTTPS", "1" if PRODUCTION else "0") == "1"
# How many reverse proxies in front of Urja append to X-Forwarded-For (0: use REMOTE_ADDR). The
# login throttle counts per client address, so it must see the client, not the proxy.
URJA_PROXY_COUNT = int(os.environ.get("URJA_PROXY_COUNT", "1" if PRODUCTION else "0"))
if URJA_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if URJA_HTTPS:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = os.environ.get("URJA_SSL_REDIRECT", "1") == "1"
    SECURE_HSTS_SECONDS = int(os.environ.get("URJA_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = os.environ.get("URJA_HSTS_INCLUDE_SUBDOMAINS", "1") == "1"
    SECURE_HSTS_PRELOAD = os.environ.get("URJA_HSTS_PRELOAD", "1") == "1"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- sessions and cache ------------------------------------------------------------------
# Sessions live in the database (revocable: logging out deletes the row). With a Redis shared by all
# web workers (URJA_REDIS_URL, e.g. redis://127.0.0.1:6379/1 — not the Celery broker's database),
# they are read through it (`cached_db`): a signed-in page skips the session query, and logging out
# still deletes both copies. Signed cookies are not an option (docs/portal.md "Per-request cost").
# The embedded default has no Redis: database sessions, and the per-process default cache.
URJA_REDIS_URL = os.environ.get("URJA_REDIS_URL", "")
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if URJA_REDIS_URL:
    CACHES["sessions"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": URJA_REDIS_URL,
        "KEY_PREFIX": "urja",
        # a Redis that stops answering costs a page at most this long (the session is then read from
        # the database: urja.portal.sessions), not a worker stuck until gunicorn's timeout
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
    SESSION_ENGINE = "urja.portal.sessions"  # cached_db, still signing in while Redis is unreachable
    SESSION_CACHE_ALIAS = "sessions"
# Bearer tokens for the API expire after this many hours (a staff app logs in once a shift).
URJA_API_TOKEN_TTL = timedelta(hours=float(os.environ.get("URJA_API_TOKEN_TTL_HOURS", "12")))

# --- background work -------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
# No broker configured: tasks run in-process (eagerly, after commit) — the embedded default.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
# Periodic jobs: each app's tasks.PERIODIC_TASKS (see core.scheduler).

# --- notifications ---------------------------------------------------------------------
# Channel backends by channel name; "dev" keeps messages in the outbox for the back office.
URJA_NOTIFICATION_CHANNELS = {
    "sms": os.environ.get("URJA_SMS_BACKEND", "urja.notifications.channels.DevChannel"),
    "whatsapp": os.environ.get("URJA_WHATSAPP_BACKEND", "urja.notifications.channels.DevChannel"),
    "email": os.environ.get("URJA_EMAIL_BACKEND", "urja.notifications.channels.DevChannel"),
}
URJA_SMS_GATEWAY_URL = os.environ.get("URJA_SMS_GATEWAY_URL", "")
URJA_SMS_GATEWAY_TOKEN = os.environ.get("URJA_SMS_GATEWAY_TOKEN", "")
URJA_SMS_SENDER_ID = os.environ.get("URJA_SMS_SENDER_ID", "URJAEL")
URJA_WHATSAPP_API_URL = os.environ.get("URJA_WHATSAPP_API_URL", "")
URJA_WHATSAPP_TOKEN = os.environ.get("URJA_WHATSAPP_TOKEN", "")
URJA_WHATSAPP_PHONE_NUMBER_ID = os.environ.get("URJA_WHATSAPP_PHONE_NUMBER_ID", "")
# Inbound webhooks (channels app): Meta's GET verification token and app secret (X-Hub-Signature-256),
# and the SMS gateway's shared token (X-Urja-Gateway-Token). Empty in production: every call refused.
_DEV_SECRET = "" if PRODUCTION else "urja-dev-"
URJA_WHATSAPP_VERIFY_TOKEN = os.environ.get("URJA_WHATSAPP_VERIFY_TOKEN", _DEV_SECRET and _DEV_SECRET + "verify")
URJA_WHATSAPP_APP_SECRET = os.environ.get("URJA_WHATSAPP_APP_SECRET", _DEV_SECRET and _DEV_SECRET + "app-secret")
URJA_SMS_INBOUND_TOKEN = os.environ.get("URJA_SMS_INBOUND_TOKEN", _DEV_SECRET and _DEV_SECRET + "sms-token")
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "care@urja.example")

# --- smart meters ----------------------------------------------------------------------
URJA_MQTT_URL = os.environ.get("URJA_MQTT_URL", "")  # empty: embedded broker in `urja run`
# Where consumers reach Urja: links in SMS/WhatsApp and the verification address printed on bills.
URJA_PUBLIC_URL = os.environ.get("URJA_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

# --- utility identity (shown on bills, receipts, notifications) --------------------------
URJA_UTILITY_NAME = os.environ.get("URJA_UTILITY_NAME", "Urja Demo DISCOM")
URJA_STATE = os.environ.get("URJA_STATE", "OD")  # holidays subdivision (ISO 3166-2:IN)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # a 403/404 raised in a view is logged as one line, without its traceback (core.logfilters)
    "filters": {"client_errors": {"()": "urja.core.logfilters.ClientErrorsWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["client_errors"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "django.request": {"filters": ["client_errors"]}},
}
