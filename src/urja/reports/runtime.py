"""Long-running part for `urja run` (development only): the demo's outage scenario.

When the demo marked a DT (`reports.demo`, marker row `demo:outage_scenario`) and this is not
production, the smart meters of that DT send their last gasp over MQTT every half hour and their
restore four minutes later — the outage detector (`reports.tasks.detect_outages`, every 15 s)
declares the outage by itself, tells the consumers and closes it again.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections

log = logging.getLogger(__name__)
FIRST_AFTER = 60.0
EVERY = 1800.0
DOWN_FOR = 240.0


def _serials() -> list[str]:
    from urja.metering.models import SMART_TYPES, Installation

    from .demo import MARKER
    from .models import EventCursor

    marker = EventCursor.objects.filter(name=MARKER).first()
    if marker is None:
        return []
    return list(
        Installation.objects.filter(
            removed_at__isnull=True,
            account__transformer_id=marker.last_event_id,
            meter__meter_type__in=list(SMART_TYPES),
        ).values_list("meter__serial", flat=True)
    )


def _publish(serials: list[str], event: str) -> None:
    from urja.core.calendars import IST
    from urja.metering import mqtt

    url = mqtt.broker_url()
    if not url:
        return
    client, host, port = mqtt.make_client(url, f"urja-outage-demo-{uuid.uuid4().hex[:6]}")
    client.connect(host, port, keepalive=30)
    client.loop_start()
    try:
        body = {"ts": datetime.now(IST).isoformat(), "event": event, "details": {"demo": "outage scenario"}}
        for serial in serials:
            client.publish(mqtt.topic(serial, "events"), json.dumps(body), qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()


def _scenario(stop: threading.Event, serials: list[str]) -> None:
    if stop.wait(FIRST_AFTER):
        return
    while not stop.is_set():
        try:
            _publish(serials, "power_fail")
            if stop.wait(DOWN_FOR):
                return
            _publish(serials, "power_restore")
        except Exception:  # the broker may be restarting: try again next round
            log.exception("demo outage scenario")
        if stop.wait(EVERY - DOWN_FOR):
            return


def start(stop: threading.Event) -> list[str]:
    if settings.PRODUCTION:
        return []
    try:
        serials = _serials()
    finally:
        close_old_connections()
    if not serials:
        return []
    threading.Thread(target=_scenario, args=(stop, serials), name="urja-outage-demo", daemon=True).start()
    return [f"demo outage scenario ({len(serials)} smart meters of one DT lose supply every 30 min for 4 min)"]
