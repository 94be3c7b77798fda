"""Absolute links for what leaves the system: SMS and WhatsApp messages, printed bills and receipts."""

from django.conf import settings


def public_url(path: str) -> str:
    """`path` (starting with /) under the public address consumers use (URJA_PUBLIC_URL)."""
    return settings.URJA_PUBLIC_URL + path
