"""Long-running parts for `urja run`: the MQTT broker (embedded when none is configured), the
gateway, and a small simulator for the demo's smart meters."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from decimal import Decimal

from django.conf import settings
from django.db import close_old_connections

from . import mqtt

log = logging.getLogger(__name__)
SIMULATED_METERS = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_embedded_broker(stop: threading.Event) -> str:
    """The pure-Python amqtt broker on a free local port, in its own thread and event loop."""
    from amqtt.broker import Broker

    port = _free_port()
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    ready = threading.Event()

    def serve():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        broker = Broker(config, loop=loop)
        loop.run_until_complete(broker.start())
        ready.set()

        async def wait_stop():
            while not stop.is_set():
                await asyncio.sleep(0.5)
            await broker.shutdown()

        loop.run_until_complete(wait_stop())

    threading.Thread(target=serve, name="urja-mqtt-broker", daemon=True).start()
    if not ready.wait(15):
        raise RuntimeError("embedded MQTT broker did not start")
    return f"mqtt://127.0.0.1:{port}"


def demo_meters(limit: int = SIMULATED_METERS) -> dict[str, Decimal]:
    """Installed smart meters with their last register value (where the simulator starts)."""
    from .models import SMART_TYPES, Meter, Reading

    meters = {}
    for meter in Meter.objects.filter(meter_type__in=SMART_TYPES, status="installed").order_by("serial")[:limit]:
        last = Reading.objects.filter(meter=meter, kwh__isnull=False).order_by("-read_at").values("kwh").first()
        meters[meter.serial] = last["kwh"] if last else Decimal(0)
    return meters


def start(stop: threading.Event) -> list[str]:
    from .gateway import Gateway
    from .simulator import Simulator

    started = []
    for noisy in ("amqtt", "transitions", "paho"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    url = settings.URJA_MQTT_URL
    if not url:
        url = start_embedded_broker(stop)
        mqtt.EMBEDDED_URL = url
        started.append(f"embedded MQTT broker (amqtt) at {url}")
    gateway = Gateway(url)
    threading.Thread(target=gateway.run, args=(stop,), name="urja-mqtt-gateway", daemon=True).start()
    started.append(f"MQTT gateway ({url}, topics {', '.join(mqtt.SUBSCRIPTIONS)})")
    meters = demo_meters()
    close_old_connections()
    if meters:
        sim = Simulator(url, meters)
        threading.Thread(
            target=sim.run, args=(stop,), kwargs={"speed": 360}, name="urja-meter-simulator", daemon=True
        ).start()
        started.append(f"smart-meter simulator ({len(meters)} demo meters)")
    return started
