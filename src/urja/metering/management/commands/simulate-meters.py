"""`urja simulate-meters --count N`: simulated smart meters publishing daily load curves."""

import threading
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError

from urja.metering import mqtt
from urja.metering.runtime import demo_meters
from urja.metering.simulator import Simulator


class Command(BaseCommand):
    help = "Publish realistic load curves for N smart meters (installed smart meters first) and answer commands."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=10)
        parser.add_argument("--url", default=None)
        parser.add_argument("--backfill-days", type=float, default=1.0)
        parser.add_argument("--speed", type=float, default=180.0, help="simulated seconds per real second")
        parser.add_argument("--seconds", type=float, default=0, help="stop after this many seconds (0: run on)")

    def handle(self, *args, count, url, backfill_days, speed, seconds, **options):
        url = url or mqtt.broker_url()
        if not url:
            raise CommandError("no broker: set URJA_MQTT_URL or pass --url")
        meters = demo_meters(count)
        for i in range(len(meters), count):  # not enough registered smart meters: simulate unknown ones
            meters[f"SIM{i:06d}"] = Decimal(0)
        sim = Simulator(url, meters)
        stop = threading.Event()
        if seconds:
            threading.Timer(seconds, stop.set).start()
        self.stdout.write(f"simulating {len(meters)} meters on {url}")
        try:
            sim.run(stop, backfill_days=backfill_days, speed=speed)
        except KeyboardInterrupt:
            stop.set()
        self.stdout.write(f"published {sim.published} messages, answered {sim.acks} commands")
