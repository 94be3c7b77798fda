"""Event templates (data/notifications/templates.toml) and their rendering. No database access.

Texts are Django templates rendered without autoescape (SMS and WhatsApp are plain text). The
consumer's language is used when the event has it, English otherwise (logged).
"""

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.template import Context, Engine, Template

from urja.core import regdata
from urja.core.errors import DomainError

log = logging.getLogger(__name__)

TEMPLATES_FILE = "notifications/templates.toml"
LANGUAGES = ("en", "hi", "or")
FALLBACK_LANGUAGE = "en"
CHANNELS = ("sms", "whatsapp", "email")

ENGINE = Engine(autoescape=False, builtins=["urja.notifications.filters"], string_if_invalid="")


@dataclass(frozen=True)
class Rendered:
    event: str
    channel: str
    language: str  # the language actually used
    subject: str
    body: str
    fell_back: bool  # the requested language was missing and English was used


@lru_cache(maxsize=2048)
def _compile(text: str) -> Template:
    return ENGINE.from_string(text)


def _render(text: str, context: dict[str, Any]) -> str:
    return _compile(text).render(Context(context, autoescape=False)).strip()


def catalogue() -> dict[str, Any]:
    return regdata.load(TEMPLATES_FILE)


def events() -> dict[str, dict]:
    return catalogue().get("events", {})


def event_spec(event: str) -> dict:
    spec = events().get(event)
    if spec is None:
        raise DomainError(
            f"unknown notification event {event!r}",
            code="unknown_event",
            details={"event": event, "known": sorted(events())},
        )
    return spec


def default_channels(event: str) -> list[str]:
    return list(event_spec(event).get("channels", CHANNELS))


def validate(doc: dict | None = None) -> list[str]:
    """Problems in a templates document (empty list = fine): every event has English with sms and
    email_subject, every language table has both, every text compiles."""
    doc = doc if doc is not None else catalogue()
    problems: list[str] = []
    if "source" not in doc:
        problems.append("missing [source]")
    for lang in LANGUAGES:
        if "email" not in doc.get("layout", {}).get(lang, {}):
            problems.append(f"layout.{lang}.email missing")
    for name, spec in doc.get("events", {}).items():
        if FALLBACK_LANGUAGE not in spec:
            problems.append(f"{name}: no English ({FALLBACK_LANGUAGE}) texts")
        for channel in spec.get("channels", []):
            if channel not in CHANNELS:
                problems.append(f"{name}: unknown channel {channel!r}")
        for lang, texts in spec.items():
            if not isinstance(texts, dict):
                continue
            if lang not in LANGUAGES:
                problems.append(f"{name}: unknown language {lang!r}")
            for key in ("sms", "email_subject"):
                if not texts.get(key):
                    problems.append(f"{name}.{lang}: {key} missing")
            for key, text in texts.items():
                try:
                    _compile(text)
                except Exception as exc:  # TemplateSyntaxError and friends
                    problems.append(f"{name}.{lang}.{key}: {exc}")
    return problems


def check_context(event: str, context: dict[str, Any], spec: dict | None = None) -> None:
    """Raise DomainError missing_context when a key the event requires is absent or empty."""
    spec = spec if spec is not None else event_spec(event)
    missing = [key for key in spec.get("required", []) if context.get(key) in (None, "")]
    if missing:
        raise DomainError(
            f"notification {event!r} needs {', '.join(missing)} in its context",
            code="missing_context",
            details={"event": event, "missing": missing},
        )


def render(*, event: str, channel: str, language: str, context: dict[str, Any]) -> Rendered:
    """Render `event` for `channel` in `language` (English when missing). Raises DomainError
    unknown_event / unknown_channel / missing_context."""
    spec = event_spec(event)
    if channel not in CHANNELS:
        raise DomainError(
            f"unknown notification channel {channel!r}", code="unknown_channel", details={"allowed": list(CHANNELS)}
        )
    check_context(event, context, spec)
    used, fell_back = language, False
    if not isinstance(spec.get(language), dict):
        log.warning("notification %s has no %r template; falling back to English", event, language)
        used, fell_back = FALLBACK_LANGUAGE, True
    texts = spec[used]
    doc = catalogue()
    ctx = {"utility_name": settings.URJA_UTILITY_NAME, **doc.get("defaults", {}), **context}
    subject = ""
    if channel == "sms":
        body = _render(texts["sms"], ctx)
    elif channel == "whatsapp":
        body = _render(texts.get("whatsapp") or texts["sms"], ctx)
    else:
        subject = " ".join(_render(texts["email_subject"], ctx).split())
        if texts.get("email_body"):
            body = _render(texts["email_body"], ctx)
        else:
            layout = doc.get("layout", {}).get(used, {}).get("email", "{{ content }}")
            body = _render(layout, {**ctx, "content": _render(texts["sms"], ctx)})
    return Rendered(event=event, channel=channel, language=used, subject=subject, body=body, fell_back=fell_back)
