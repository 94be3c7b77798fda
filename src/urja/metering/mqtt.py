"""MQTT topics and payloads of smart meters (documented in docs/mqtt.md). Pure: no database.

Topics (one meter per topic level):
  urja/meters/{serial}/readings   meter → head-end   registers and/or interval energy
  urja/meters/{serial}/events     meter → head-end   tamper, cover open, power fail/restore, …
  urja/meters/{serial}/acks       meter → head-end   acknowledgement of a command (echoes command_id)
  urja/meters/{serial}/commands   head-end → meter   disconnect, reconnect, set_load_limit, …
"""

from __future__ import annotations

import json
import math
import socket
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import urlparse

PREFIX = "urja/meters"
SUBSCRIPTIONS = [f"{PREFIX}/+/readings", f"{PREFIX}/+/events", f"{PREFIX}/+/acks"]
EVENTS = ("tamper", "cover_open", "magnet", "power_fail", "power_restore", "relay_open", "relay_closed", "overload")
MAX_INTERVALS = 2000
CLOCK_SKEW = timedelta(minutes=5)

# Set by runtime.start() when it runs the embedded broker (no URJA_MQTT_URL configured).
EMBEDDED_URL: str | None = None


class PayloadError(ValueError):
    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.code = code


def broker_url() -> str | None:
    from django.conf import settings

    return settings.URJA_MQTT_URL or EMBEDDED_URL


def parse_url(url: str) -> tuple[str, int, str | None, str | None]:
    parsed = urlparse(url if "://" in url else f"mqtt://{url}")
    return parsed.hostname or "127.0.0.1", parsed.port or 1883, parsed.username, parsed.password


def port_open(url: str, timeout: float = 1.0) -> bool:
    host, port, _, _ = parse_url(url)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def topic(serial: str, kind: str) -> str:
    return f"{PREFIX}/{serial}/{kind}"


def parse_topic(name: str) -> tuple[str, str]:
    parts = name.split("/")
    if len(parts) != 4 or "/".join(parts[:2]) != PREFIX or parts[3] not in ("readings", "events", "acks"):
        raise PayloadError(f"unexpected topic {name!r}", code="bad_topic")
    serial = parts[2].strip().upper()
    if not serial:
        raise PayloadError("empty meter serial in topic", code="bad_topic")
    return serial, parts[3]


def _json(payload: bytes) -> dict:
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"not valid JSON: {exc}", code="invalid_json") from exc
    if not isinstance(data, dict):
        raise PayloadError("payload must be a JSON object", code="schema_error")
    return data


def _ts(value, now: datetime, field: str = "ts") -> datetime:
    if not isinstance(value, str):
        raise PayloadError(f"{field} must be an ISO 8601 string", code="schema_error")
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise PayloadError(f"{field} {value!r} is not ISO 8601", code="schema_error") from exc
    if ts.tzinfo is None:
        raise PayloadError(f"{field} needs a UTC offset", code="schema_error")
    if ts > now + CLOCK_SKEW:
        raise PayloadError(f"{field} {value} is in the future", code="timestamp_in_future")
    return ts


def _num(value, field: str, *, required: bool = False) -> Decimal | None:
    if value is None:
        if required:
            raise PayloadError(f"{field} is required", code="schema_error")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PayloadError(f"{field} must be a number", code="schema_error")
    if isinstance(value, float) and not math.isfinite(value):
        raise PayloadError(f"{field} must be finite", code="schema_error")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise PayloadError(f"{field} must be a number", code="schema_error") from exc
    if not number.is_finite():
        raise PayloadError(f"{field} must be finite", code="schema_error")
    if number < 0:
        raise PayloadError(f"{field} must not be negative", code="negative_register")
    if number >= Decimal("1e11"):
        raise PayloadError(f"{field} is too large", code="schema_error")
    return number.quantize(Decimal("0.0001"))


def parse_readings(serial: str, payload: bytes, now: datetime) -> tuple[dict | None, list[dict]]:
    """(register reading or None, intervals). At least one of "registers" and "intervals"."""
    data = _json(payload)
    unknown = set(data) - {"ts", "registers", "intervals"}
    if unknown:
        raise PayloadError(f"unknown fields: {', '.join(sorted(unknown))}", code="schema_error")
    registers, intervals = data.get("registers"), data.get("intervals")
    if registers is None and intervals is None:
        raise PayloadError("registers or intervals required", code="schema_error")
    reading = None
    if registers is not None:
        if not isinstance(registers, dict):
            raise PayloadError("registers must be an object", code="schema_error")
        extra = set(registers) - {"kwh", "kvah", "md_kw", "md_kva", "tod"}
        if extra:
            raise PayloadError(f"unknown registers: {', '.join(sorted(extra))}", code="schema_error")
        tod = registers.get("tod")
        if tod is not None and not isinstance(tod, dict):
            raise PayloadError("tod must be an object", code="schema_error")
        reading = {
            "serial": serial,
            "ts": _ts(data.get("ts"), now),
            "kwh": _num(registers.get("kwh"), "kwh", required=True).quantize(Decimal("0.001")),
            "kvah": _q3(_num(registers.get("kvah"), "kvah")),
            "md_kw": _q3(_num(registers.get("md_kw"), "md_kw")),
            "md_kva": _q3(_num(registers.get("md_kva"), "md_kva")),
            "tod": {str(z): str(_q3(_num(v, f"tod.{z}", required=True))) for z, v in tod.items()} if tod else None,
        }
    rows = []
    if intervals is not None:
        if not isinstance(intervals, list) or len(intervals) > MAX_INTERVALS:
            raise PayloadError(f"intervals must be a list of at most {MAX_INTERVALS}", code="schema_error")
        for i, item in enumerate(intervals):
            if not isinstance(item, dict):
                raise PayloadError(f"intervals[{i}] must be an object", code="schema_error")
            minutes = item.get("minutes", 30)
            if minutes not in (1, 5, 15, 30, 60):
                raise PayloadError(f"intervals[{i}].minutes must be 1, 5, 15, 30 or 60", code="schema_error")
            rows.append(
                {
                    "serial": serial,
                    "ts": _ts(item.get("ts"), now, f"intervals[{i}].ts"),
                    "minutes": minutes,
                    "kwh": _num(item.get("kwh"), f"intervals[{i}].kwh", required=True),
                    "kvah": _num(item.get("kvah"), f"intervals[{i}].kvah"),
                }
            )
    return reading, rows


def _q3(value: Decimal | None) -> Decimal | None:
    return value.quantize(Decimal("0.001")) if value is not None else None


def parse_event(serial: str, payload: bytes, now: datetime) -> dict:
    data = _json(payload)
    event = data.get("event")
    if event not in EVENTS:
        raise PayloadError(f"event must be one of {', '.join(EVENTS)}", code="schema_error")
    details = data.get("details") or {}
    if not isinstance(details, dict):
        raise PayloadError("details must be an object", code="schema_error")
    return {"serial": serial, "ts": _ts(data.get("ts"), now), "event": event, "details": details}


def parse_ack(serial: str, payload: bytes) -> dict:
    data = _json(payload)
    command_id, status = data.get("command_id"), data.get("status")
    if not isinstance(command_id, str) or not command_id:
        raise PayloadError("command_id required", code="schema_error")
    if status not in ("ok", "failed"):
        raise PayloadError('status must be "ok" or "failed"', code="schema_error")
    return {"serial": serial, "command_id": command_id, "ok": status == "ok", "reason": str(data.get("reason", ""))}


def make_client(url: str, client_id: str):
    import paho.mqtt.client as paho

    host, port, user, password = parse_url(url)
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    if user:
        client.username_pw_set(user, password)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client, host, port
