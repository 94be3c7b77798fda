"""The smart-meter head-end: `urja mqtt-gateway`.

Subscribes to readings, events and acks; stores them in bulk; publishes queued commands and
sweeps command timeouts. Anything it cannot use goes to the dead-letter table with the reason;
the gateway never crashes on input. paho's network thread only enqueues messages; all database
work happens in `drain()`, `dispatch()` and `sweep()` (called by `run()` or directly by tests).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid

from django.db import close_old_connections
from django.utils import timezone

from urja.core.errors import DomainError

from . import boundary, mqtt, services
from .models import Meter, Reading, ReadingSource, VeeStatus

log = logging.getLogger(__name__)


class Gateway:
    def __init__(self, url: str, *, batch_size: int = 2000, sweep_every: float = 15.0):
        self.url = url
        self.batch_size = batch_size
        self.sweep_every = sweep_every
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=200_000)
        self.client, self.host, self.port = mqtt.make_client(url, f"urja-gateway-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self.stats = {"received": 0, "stored": 0, "dead_letters": 0, "acks": 0, "published": 0}

    # paho callbacks (network thread): no database here
    def _on_connect(self, client, userdata, flags, reason_code, properties=None):
        if reason_code.is_failure:
            log.warning("MQTT connect failed: %s", reason_code)
            return
        client.subscribe([(t, 1) for t in mqtt.SUBSCRIPTIONS])
        self.connected.set()

    def _on_message(self, client, userdata, message):
        self.inbox.put((message.topic, bytes(message.payload)))

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def wait_connected(self, timeout: float = 10) -> bool:
        return self.connected.wait(timeout)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    # database work (caller's thread)
    def _dead(self, topic: str, payload: bytes, code: str, reason: str) -> None:
        self.stats["dead_letters"] += 1
        try:
            services.dead_letter(topic=topic, payload=payload, code=code, reason=reason)
        except Exception:  # never crash on input
            log.exception("could not store a dead letter for %s", topic)

    def drain(self, max_items: int | None = None) -> dict:
        """Store what has arrived (up to max_items). Returns counts."""
        items: list[tuple[str, bytes]] = []
        limit = max_items or self.batch_size
        while len(items) < limit:
            try:
                items.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        if not items:
            return {"messages": 0}
        self.stats["received"] += len(items)
        now = timezone.now()
        readings, intervals, events, acks = [], [], [], []
        parsed: list[tuple[str, bytes, str, list]] = []  # for the fallback path
        serials = set()
        for topic, payload in items:
            try:
                serial, kind = mqtt.parse_topic(topic)
                if kind == "readings":
                    reading, rows = mqtt.parse_readings(serial, payload, now)
                    chunk = ([reading] if reading else []) + rows
                    parsed.append((topic, payload, kind, chunk))
                    if reading:
                        readings.append(reading)
                    intervals.extend(rows)
                elif kind == "events":
                    event = mqtt.parse_event(serial, payload, now)
                    parsed.append((topic, payload, kind, [event]))
                    events.append(event)
                else:
                    acks.append((topic, payload, mqtt.parse_ack(serial, payload)))
                    continue
                serials.add(serial)
            except mqtt.PayloadError as exc:
                self._dead(topic, payload, exc.code, str(exc))
        known = set(Meter.objects.filter(serial__in=serials).values_list("serial", flat=True))
        if serials - known:
            keep = []
            for topic, payload, kind, chunk in parsed:
                serial = mqtt.parse_topic(topic)[0]
                if serial in known:
                    keep.append((topic, payload, kind, chunk))
                else:
                    self._dead(topic, payload, "unknown_meter", f"no meter with serial {serial}")
            parsed = keep
            readings = [r for r in readings if r["serial"] in known]
            intervals = [r for r in intervals if r["serial"] in known]
            events = [e for e in events if e["serial"] in known]
        try:
            # feeder-head and DT meters' registers are stored as boundary readings (metering.boundary)
            readings = boundary.take_boundary_readings(readings)
            stored = services.store_smart_batch(readings=readings, intervals=intervals, events=events)
        except Exception as exc:  # one bad message must not lose the others: retry one by one
            log.warning("bulk store failed (%s); storing message by message", exc)
            stored = self._store_one_by_one(parsed)
        self.stats["stored"] += len(readings) + len(intervals) + len(events)
        self._validate(readings)
        for topic, payload, ack in acks:
            try:
                services.record_ack(
                    serial=ack["serial"], command_id=ack["command_id"], ok=ack["ok"], reason=ack["reason"]
                )
                self.stats["acks"] += 1
            except DomainError as exc:
                self._dead(topic, payload, exc.code, exc.message)
            except Exception as exc:
                log.exception("ack failed")
                self._dead(topic, payload, "internal_error", str(exc)[:300])
        return {"messages": len(items), **stored, "acks": len(acks)}

    def _store_one_by_one(self, parsed) -> dict:
        for topic, payload, kind, chunk in parsed:
            try:
                services.store_smart_batch(
                    readings=[c for c in chunk if kind == "readings" and "minutes" not in c],
                    intervals=[c for c in chunk if "minutes" in c],
                    events=chunk if kind == "events" else [],
                )
            except Exception as exc:
                self._dead(topic, payload, "store_failed", str(exc)[:300])
        return {}

    def _validate(self, readings: list[dict]) -> None:
        if not readings:
            return
        try:
            ids = list(
                Reading.objects.filter(
                    meter__serial__in={r["serial"] for r in readings},
                    read_at__in={r["ts"] for r in readings},
                    source=ReadingSource.SMART_METER,
                    vee_status=VeeStatus.PENDING,
                ).values_list("id", flat=True)
            )
            services.validate_many(ids)
        except Exception:
            log.exception("VEE of smart readings failed; the metering.vee_pending job retries them")

    def dispatch(self) -> int:
        """Publish queued commands (QoS 1). Returns how many were sent."""
        if not self.connected.is_set():
            return 0
        sent = 0
        for serial, payload in services.claim_commands():
            self.client.publish(mqtt.topic(serial, "commands"), json.dumps(payload), qos=1)
            sent += 1
        self.stats["published"] += sent
        return sent

    def sweep(self) -> dict:
        return services.sweep_command_timeouts()

    def run(self, stop: threading.Event, tick: float = 0.25) -> None:
        self.start()
        last_sweep = 0.0
        while not stop.is_set():
            try:
                close_old_connections()
                while self.drain().get("messages"):
                    pass
                self.dispatch()
                if time.monotonic() - last_sweep > self.sweep_every:
                    self.sweep()
                    last_sweep = time.monotonic()
            except Exception:  # database hiccup: log, wait, carry on
                log.exception("gateway loop error")
                stop.wait(2)
            stop.wait(tick)
        self.stop()
        close_old_connections()
