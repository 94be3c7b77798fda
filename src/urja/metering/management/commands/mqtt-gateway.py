"""`urja mqtt-gateway`: the smart-meter head-end (see docs/mqtt.md)."""

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from urja.metering import mqtt
from urja.metering.gateway import Gateway


class Command(BaseCommand):
    help = "Subscribe to smart-meter readings, events and acks; publish commands; sweep command timeouts."

    def add_arguments(self, parser):
        parser.add_argument("--url", default=None, help="mqtt://host:port (default: URJA_MQTT_URL)")

    def handle(self, *args, url, **options):
        url = url or mqtt.broker_url()
        if not url:
            raise CommandError("no broker: set URJA_MQTT_URL or pass --url")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        gateway = Gateway(url)
        self.stdout.write(f"MQTT gateway on {url}; Ctrl-C to stop")
        try:
            gateway.run(stop)
        except KeyboardInterrupt:
            stop.set()
        self.stdout.write(f"stopped: {gateway.stats}")
