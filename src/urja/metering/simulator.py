"""`urja simulate-meters`: smart meters that publish realistic daily load curves and answer commands.

No database: it is a stand-in for real meters. Each meter has a size factor and follows a
domestic curve (night base, morning and evening peaks, noise); it publishes 30-minute
interval energy, a daily register reading (kWh, kVAh, MD, time-of-day registers) at local
midnight, and acknowledges commands (echoing command_id; a repeated command id gets the same
answer again without acting twice). A disconnected relay stops consumption.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from urja.core.calendars import IST

from . import mqtt

# kW by hour of day for a 1× household: night base, morning peak, evening peak.
CURVE = [0.18, 0.15, 0.14, 0.14, 0.16, 0.3, 0.65, 0.8, 0.7, 0.45, 0.4, 0.42,
         0.5, 0.55, 0.5, 0.45, 0.5, 0.75, 1.25, 1.5, 1.45, 1.2, 0.7, 0.35]  # fmt: skip
TOD_ZONES = {"solar": range(8, 16), "peak": range(18, 24)}


def tod_zone(hour: int) -> str:
    return next((z for z, hours in TOD_ZONES.items() if hour in hours), "normal")


@dataclass
class SimMeter:
    serial: str
    kwh: Decimal
    factor: float
    relay: bool = True
    load_limit_kw: float | None = None
    supply_hours: list = field(default_factory=list)
    tod: dict = field(default_factory=lambda: {"solar": Decimal(0), "peak": Decimal(0), "normal": Decimal(0)})
    day_md: float = 0.0
    answered: dict = field(default_factory=dict)

    def supplied(self, moment: datetime) -> bool:
        if not self.relay:
            return False
        if not self.supply_hours:
            return True
        hhmm = moment.astimezone(IST).strftime("%H:%M")
        return any(a <= hhmm < b if a <= b else (hhmm >= a or hhmm < b) for a, b in self.supply_hours)

    def interval(self, end: datetime, minutes: int, rng: random.Random) -> Decimal:
        local = end.astimezone(IST) - timedelta(minutes=minutes / 2)
        kw = CURVE[local.hour] * self.factor * rng.uniform(0.8, 1.2)
        if self.load_limit_kw is not None and kw > self.load_limit_kw:
            kw = self.load_limit_kw
        if not self.supplied(end):
            kw = 0.0
        energy = Decimal(str(round(kw * minutes / 60, 4)))
        self.kwh += energy
        zone = tod_zone(local.hour)
        self.tod[zone] += energy
        self.day_md = max(self.day_md, kw)
        return energy


class Simulator:
    def __init__(
        self,
        url: str,
        meters: dict[str, Decimal],
        *,
        minutes: int = 30,
        seed: int | None = None,
        silent: set[str] | None = None,
    ):
        self.rng = random.Random(seed)
        self.meters = {
            s.upper(): SimMeter(s.upper(), Decimal(v), factor=self.rng.uniform(0.6, 2.5)) for s, v in meters.items()
        }
        self.minutes = minutes
        self.silent = {s.upper() for s in (silent or set())}
        self.client, self.host, self.port = mqtt.make_client(url, f"urja-sim-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_command
        self.connected = threading.Event()
        self.published = 0
        self.acks = 0

    def _on_connect(self, client, userdata, flags, reason_code, properties=None):
        if not reason_code.is_failure:
            client.subscribe(f"{mqtt.PREFIX}/+/commands", qos=1)
            self.connected.set()

    def _on_command(self, client, userdata, message):
        serial = message.topic.split("/")[2].upper()
        meter = self.meters.get(serial)
        if meter is None or serial in self.silent:
            return
        try:
            cmd = json.loads(message.payload)
            command_id = cmd["command_id"]
        except (ValueError, KeyError, TypeError):
            return
        if command_id not in meter.answered:  # act once per command id
            status, reason = "ok", ""
            params = cmd.get("params") or {}
            name = cmd.get("command")
            if name == "disconnect":
                meter.relay = False
            elif name == "reconnect":
                meter.relay = True
            elif name == "set_load_limit":
                meter.load_limit_kw = float(params.get("kw", 0))
            elif name == "set_supply_hours":
                meter.supply_hours = [tuple(w) for w in params.get("windows", [])]
            elif name == "time_sync":
                pass
            else:
                status, reason = "failed", f"unsupported command {name!r}"
            meter.answered[command_id] = (status, reason)
        status, reason = meter.answered[command_id]
        ack = {"command_id": command_id, "status": status, "reason": reason, "ts": datetime.now(IST).isoformat()}
        client.publish(mqtt.topic(serial, "acks"), json.dumps(ack), qos=1)
        self.acks += 1

    def start(self) -> bool:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        return self.connected.wait(10)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def publish_interval(self, end: datetime) -> None:
        """One interval (ending at `end`) for every meter; a daily register reading at local midnight."""
        midnight = end.astimezone(IST).hour == 0 and end.astimezone(IST).minute == 0
        for meter in self.meters.values():
            if meter.serial in self.silent:
                continue
            energy = meter.interval(end, self.minutes, self.rng)
            payload: dict = {"intervals": [{"ts": end.isoformat(), "minutes": self.minutes, "kwh": float(energy)}]}
            if midnight:
                payload["ts"] = end.isoformat()
                payload["registers"] = {
                    "kwh": float(round(meter.kwh, 3)),
                    "kvah": float(round(meter.kwh * Decimal("1.04"), 3)),
                    "md_kw": round(meter.day_md, 3),
                    "tod": {z: float(round(v, 3)) for z, v in meter.tod.items()},
                }
                meter.day_md = 0.0
            self.client.publish(mqtt.topic(meter.serial, "readings"), json.dumps(payload), qos=1)
            self.published += 1

    def publish_event(self, serial: str, event: str, at: datetime | None = None) -> None:
        body = {"ts": (at or datetime.now(IST)).isoformat(), "event": event, "details": {"simulated": True}}
        self.client.publish(mqtt.topic(serial.upper(), "events"), json.dumps(body), qos=1)

    def run(self, stop: threading.Event, *, backfill_days: float = 1, speed: float = 180, tick: float = 1.0) -> None:
        """Publish from `backfill_days` ago, `speed`× faster than real time, then keep pace with the clock."""
        self.start()
        step = timedelta(minutes=self.minutes)
        now = datetime.now(IST)
        sim = (now - timedelta(days=backfill_days)).replace(second=0, microsecond=0)
        sim -= timedelta(minutes=sim.minute % self.minutes)
        started = time.monotonic()
        origin = sim
        while not stop.is_set():
            target = min(datetime.now(IST), origin + timedelta(seconds=(time.monotonic() - started) * speed))
            while sim + step <= target and not stop.is_set():
                sim += step
                self.publish_interval(sim)
            if self.rng.random() < 0.002 and self.meters:
                self.publish_event(self.rng.choice(list(self.meters)), self.rng.choice(["power_fail", "power_restore"]))
            stop.wait(tick)
        self.stop()


def daily_kwh_estimate(factor: float = 1.0) -> float:
    """Expected daily energy of a 1× meter (for docs and sanity checks)."""
    return math.fsum(CURVE) * factor
