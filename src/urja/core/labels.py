"""Codes in words (issue 15 part 5): a status, type, channel or unit code is never shown raw.

`label("on_track")` → "On track" (or its Hindi / Odia words in that language), from
data/core/labels.toml; a code the table does not know is humanised ("site_visit" → "Site visit"),
so a new code shows as words at once and its translations can follow.
"""

from __future__ import annotations

from django.utils.translation import get_language

from . import regdata

LANGUAGES = ("en", "hi", "or")


def _table() -> dict[str, dict[str, str]]:
    return regdata.load("core/labels.toml")["labels"]


def humanise(code: str) -> str:
    text = str(code).replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:] if text else ""


def label(code: object, language: str | None = None) -> str:
    """The words for `code` in `language` (default: the active language)."""
    if code is None or code == "":
        return ""
    key = str(code)
    language = (language or get_language() or "en").split("-")[0]
    words = _table().get(key)
    if words is None:
        return humanise(key)
    return words.get(language) or words.get("en") or humanise(key)
