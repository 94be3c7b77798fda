"""The connections services' refusals in the reader's language (issue 12 part 8, issue 13).

A refusal's `message` is shown to consumers as it is — on the portal's forms, in a WhatsApp or SMS
reply, in the API's `{code, message, details}` — so it is a label of data/core/labels.toml
(`conn_<key>`, English, Hindi and Odia) rendered in the active language: the portal runs in the
consumer's language, the bot's job activates the consumer's (`translation.override`), the API
follows Accept-Language. `{name}` placeholders take the values given; codes among them (document
types, applicant types, channels, statuses) are passed through `label` so they read as words too.

    raise refuse("arrears", details={...})
    raise refuse("documents_missing", applicant_type=label("tenant"), missing="...")
    raise refuse("pause_reason_required", code="reason_required")   # one code, several messages
"""

from __future__ import annotations

from typing import Any

from urja.core.errors import DomainError
from urja.core.labels import label

PREFIX = "conn_"


class _Values(dict):
    def __missing__(self, key: str) -> str:  # a placeholder the caller did not give stays visible
        return "{" + key + "}"


def text(key: str, language: str | None = None, **values: Any) -> str:
    """The refusal `key` in `language` (default: the active language) with its values filled in."""
    words = label(PREFIX + key, language)
    try:
        return words.format_map(_Values({k: str(v) for k, v in values.items()}))
    except (ValueError, IndexError):  # a stray brace in a translation: the words as they are
        return words


def refuse(
    key: str,
    *,
    code: str | None = None,
    error: type[DomainError] = DomainError,
    details: Any = None,
    status: int | None = None,
    **values: Any,
) -> DomainError:
    """The error to raise (`error`: DomainError, Conflict, NotFound …): `code` (default `key`) for
    machines, the message in words for people."""
    return error(text(key, **values), code=code or key, details=details, status=status)


def words(codes: list[str] | tuple[str, ...]) -> str:
    """Codes as words in the active language, comma separated (document types, proofs …)."""
    return ", ".join(label(c) for c in codes)
