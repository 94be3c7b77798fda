"""Keys and signatures (pure apart from reading settings/env): receipt verification codes,
gateway webhook signatures, and the Fernet key that encrypts PAYG device secrets.

Keys come from settings or the environment (URJA_RECEIPT_KEY, URJA_GATEWAY_SECRET,
URJA_DEVICE_KEY); without them each is derived from SECRET_KEY with its own label, so a
development install works and production sets real keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from datetime import date
from decimal import Decimal

import numpy as np
from django.conf import settings


def _key(name: str, label: bytes) -> bytes:
    value = getattr(settings, name, None) or os.environ.get(name)
    if value:
        return value.encode() if isinstance(value, str) else value
    return hmac.new(settings.SECRET_KEY.encode(), label, hashlib.sha256).digest()


def receipt_key() -> bytes:
    return _key("URJA_RECEIPT_KEY", b"urja.payments.receipt")


def gateway_secret(gateway: str = "dev") -> bytes:
    return _key(f"URJA_GATEWAY_SECRET_{gateway.upper()}", b"urja.payments.gateway." + gateway.encode())


def device_fernet():
    from cryptography.fernet import Fernet

    raw = getattr(settings, "URJA_DEVICE_KEY", None) or os.environ.get("URJA_DEVICE_KEY")
    if raw:
        return Fernet(raw)
    derived = hmac.new(settings.SECRET_KEY.encode(), b"urja.payments.device", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


# --- receipt verification codes ---------------------------------------------------------------


def receipt_message(*, receipt_number: str, consumer_number: str, amount: Decimal, day: date) -> bytes:
    return f"{receipt_number}|{consumer_number}|{amount:.2f}|{day.isoformat()}".encode()


def receipt_code(*, receipt_number: str, consumer_number: str, amount: Decimal, day: date, key: bytes) -> str:
    """A 10-character code (50 bits of HMAC-SHA256) printed as XXXXX-XXXXX."""
    digest = hmac.new(
        key,
        receipt_message(receipt_number=receipt_number, consumer_number=consumer_number, amount=amount, day=day),
        hashlib.sha256,
    ).digest()
    text = base64.b32encode(digest[:8]).decode()[:10]
    return f"{text[:5]}-{text[5:]}"


_B32 = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", dtype="S1")
_SHIFTS = np.arange(59, 13, -5, dtype=np.uint64)  # the first 50 bits, 5 at a time


def receipt_codes(messages: list[bytes], *, key: bytes) -> list[str]:
    """receipt_code for many receipt_messages at once (settlement files): one-shot HMACs, then the
    base32 of their first 50 bits over numpy arrays."""
    if not messages:
        return []
    digest = hmac.digest
    words = np.frombuffer(b"".join([digest(key, m, "sha256")[:8] for m in messages]), dtype=">u8")
    chars = _B32[(words[:, None] >> _SHIFTS) & np.uint64(31)]
    text = np.concatenate([chars[:, :5], np.full((len(words), 1), b"-", dtype="S1"), chars[:, 5:]], axis=1)
    return text.view("S11").ravel().astype("U11").tolist()


def normalise_code(code: str) -> str:
    text = "".join(ch for ch in code.upper() if ch.isalnum())
    # people misread these on paper
    text = text.replace("0", "O").replace("1", "I").replace("8", "B")
    return f"{text[:5]}-{text[5:]}" if len(text) == 10 else text


def codes_match(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), normalise_code(given).encode())


# --- gateway webhooks -------------------------------------------------------------------------


def webhook_signature(*, secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(*, secret: bytes, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={webhook_signature(secret=secret, timestamp=timestamp, body=body)}"


def parse_signature_header(header: str) -> tuple[int, list[str]]:
    timestamp, sigs = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            sigs.append(value)
    if timestamp is None or not sigs:
        raise ValueError("malformed signature header")
    return timestamp, sigs


def verify_webhook(*, secret: bytes, header: str, body: bytes, now: int, tolerance: int = 300) -> int:
    """Raise ValueError unless the header signs `body` within `tolerance` seconds; return the timestamp."""
    timestamp, sigs = parse_signature_header(header)
    if abs(now - timestamp) > tolerance:
        raise ValueError("signature timestamp outside the tolerance")
    expected = webhook_signature(secret=secret, timestamp=timestamp, body=body)
    if not any(hmac.compare_digest(expected, s) for s in sigs):
        raise ValueError("signature does not match")
    return timestamp
