"""Boundary meters: feeder-head and DT meters, the input side of energy accounting (issue 14.1).

A boundary meter is an ordinary `Meter` with a `BoundaryInstallation` on a feeder or a DT instead
of an account's `Installation`. Its register readings (`BoundaryReading`) arrive by the same two
paths as consumers' readings:

* MQTT: the gateway hands each parsed batch to `take_boundary_readings` first; readings of meters
  installed on a node are stored here, the rest go on to `services.store_smart_batch` unchanged
  (intervals and events of boundary meters are stored there like any meter's).
* Files: `import_file` takes CSV / JSON / JSON-lines rows {node, meter_serial, read_at, kwh}
  (node = "feeder:<code>" or "dt:<code>"), with the importer's format detection, timestamp rule,
  `ImportBatch` and per-row `ImportRowError` report. Idempotent on (meter, read_at).

Bad input: an unknown node, an unknown meter, a meter not on that node at read_at, a timestamp
in the future, a register that does not fit the meter — each a row error, nothing dropped silently.
"""

from __future__ import annotations

import csv
import io
import time as _time
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from urja.core.errors import DomainError
from urja.core.services import record_audit
from urja.core.states import transition
from urja.network.models import DistributionTransformer, Feeder

from . import importer, mqtt
from .models import (
    METER_STATUS,
    BoundaryInstallation,
    BoundaryReading,
    ImportBatch,
    ImportRowError,
    Installation,
    Meter,
    MeterStatus,
    ReadingSource,
    SheetEntry,
)

COLUMNS = ("node", "meter_serial", "read_at", "kwh")
CHECK_ORDER = (
    "invalid_row",
    "unknown_node",
    "unknown_meter",
    "invalid_timestamp",
    "timestamp_in_future",
    "missing_register",
    "non_numeric_register",
    "negative_register",
    "register_out_of_range",
    "meter_not_on_node",
)
MESSAGES = {
    "invalid_row": "the row is not an object of the fields node, meter_serial, read_at, kwh",
    "unknown_node": 'no feeder or DT with this code (node is "feeder:<code>" or "dt:<code>")',
    "unknown_meter": "no meter with this serial",
    "invalid_timestamp": "read_at is not an ISO 8601 timestamp with a UTC offset",
    "timestamp_in_future": "read_at is in the future",
    "missing_register": "kwh is required",
    "non_numeric_register": "kwh is not a number (at most 3 decimals)",
    "negative_register": "kwh must not be negative",
    "register_out_of_range": "kwh does not fit the meter's register",
    "meter_not_on_node": "the meter was not installed on this node at read_at",
}


def node_label(inst: BoundaryInstallation) -> str:
    return f"dt:{inst.transformer.code}" if inst.transformer_id else f"feeder:{inst.feeder.code}"


@transaction.atomic
def install_boundary_meter(
    *,
    meter: Meter,
    actor,
    channel: str,
    feeder: Feeder | None = None,
    transformer: DistributionTransformer | None = None,
    installed_at: datetime | None = None,
    initial_kwh: Decimal | int | str = 0,
) -> BoundaryInstallation:
    """Put a meter from the store on a feeder head or a DT (one open meter per node and per meter)."""
    if (feeder is None) == (transformer is None):
        raise DomainError("a boundary meter goes on a feeder or on a DT (exactly one)", code="boundary_node_required")
    meter = Meter.objects.select_for_update().get(pk=meter.pk)
    if not meter.has_register:
        raise DomainError("a boundary meter needs an energy register", code="registerless_meter")
    if Installation.objects.filter(meter=meter, removed_at__isnull=True).exists():
        raise DomainError(f"meter {meter.serial} serves an account", code="meter_in_use")
    node = Q(transformer=transformer) if transformer is not None else Q(feeder=feeder)
    if BoundaryInstallation.objects.filter(node, removed_at__isnull=True).exists():
        raise DomainError("this node has a boundary meter already; remove it first", code="node_has_meter")
    try:
        kwh = Decimal(str(initial_kwh))
    except InvalidOperation as exc:
        raise DomainError("initial_kwh must be a number", code="invalid_register") from exc
    if kwh < 0:
        raise DomainError("initial_kwh must not be negative", code="invalid_register")
    at = installed_at or timezone.now()
    inst = BoundaryInstallation.objects.create(
        meter=meter, feeder=feeder, transformer=transformer, installed_at=at, initial_kwh=kwh
    )
    transition(meter, METER_STATUS, MeterStatus.INSTALLED, actor=actor, channel=channel,
               reason=f"boundary meter on {node_label(inst)}", action="metering.boundary_installed")  # fmt: skip
    SheetEntry.objects.create(
        meter=meter,
        kind=SheetEntry.Kind.INSTALLATION,
        at=at,
        summary=f"installed as boundary meter on {node_label(inst)}",
        details={"node": node_label(inst), "initial_kwh": str(kwh)},
        performed_by=actor if getattr(actor, "pk", None) else None,
        performed_by_name=getattr(actor, "username", "") or "system",
        channel=channel,
    )
    return inst


def _open_on(meters: Iterable[int], at_times: Iterable[datetime]) -> list[BoundaryInstallation]:
    times = list(at_times)
    if not times:
        return []
    return list(
        BoundaryInstallation.objects.filter(meter_id__in=set(meters), installed_at__lte=max(times))
        .filter(Q(removed_at__isnull=True) | Q(removed_at__gte=min(times)))
        .select_related("feeder", "transformer")
    )


def _installation_at(insts: list[BoundaryInstallation], meter_id: int, at: datetime) -> BoundaryInstallation | None:
    for inst in insts:
        if inst.meter_id == meter_id and inst.installed_at <= at and (inst.removed_at is None or at <= inst.removed_at):
            return inst
    return None


def take_boundary_readings(readings: list[dict]) -> list[dict]:
    """MQTT path: store the register readings of boundary meters (parsed by `mqtt.parse_readings`,
    serials known to exist); return the others for the consumers' path. Re-sent ones are ignored."""
    if not readings:
        return readings
    serials = {r["serial"] for r in readings}
    boundary_ids = dict(
        Meter.objects.filter(serial__in=serials, boundary_installations__isnull=False)
        .values_list("serial", "id")
        .distinct()
    )
    if not boundary_ids:
        return readings
    mine = [r for r in readings if r["serial"] in boundary_ids]
    insts = _open_on(boundary_ids.values(), (r["ts"] for r in mine))
    rows = []
    for r in mine:
        inst = _installation_at(insts, boundary_ids[r["serial"]], r["ts"])
        if inst is not None:
            rows.append(
                BoundaryReading(
                    meter_id=inst.meter_id,
                    installation=inst,
                    read_at=r["ts"],
                    source=ReadingSource.SMART_METER,
                    kwh=r["kwh"],
                )
            )
    BoundaryReading.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    # a boundary meter's reading outside any of its installations goes on (and is counted
    # 'not_installed' there, as for a consumer meter between installations)
    stored = {(row.meter_id, row.read_at) for row in rows}
    return [r for r in readings if (boundary_ids.get(r["serial"]), r["ts"]) not in stored]


# --- file import ----------------------------------------------------------------------------------


def _rows(path: Path, fmt: str) -> Iterator[dict | None]:
    if fmt == "csv":
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not set(COLUMNS) <= {f.strip() for f in reader.fieldnames}:
                raise DomainError(f"the CSV header must name {', '.join(COLUMNS)}", code="invalid_header")
            for row in reader:
                yield {(k or "").strip(): (v or "").strip() for k, v in row.items() if k}
        return
    with path.open("rb") as fh:
        objects = importer.iter_json_array(fh) if fmt == "json" else importer.iter_json_lines(fh)
        for obj in objects:
            if not isinstance(obj, dict) or "__invalid__" in obj or set(obj) - set(COLUMNS):
                yield None
            else:
                yield {k: (None if v is None else str(v)) for k, v in obj.items()}


class _Nodes:
    def __init__(self):
        self.feeders = dict(Feeder.objects.values_list("code", "id"))
        self.dts = dict(DistributionTransformer.objects.values_list("code", "id"))
        self.meters: dict[str, tuple[int, int, Decimal]] = {}

    def node(self, text: str) -> tuple[str, int] | None:
        kind, _, code = (text or "").partition(":")
        kind = kind.strip().lower()
        found = (self.feeders if kind == "feeder" else self.dts if kind == "dt" else {}).get(code.strip())
        return (kind, found) if found else None

    def meter(self, serial: str):
        serial = (serial or "").strip().upper()
        if serial not in self.meters:
            m = Meter.objects.filter(serial=serial).values_list("id", "register_digits").first()
            self.meters[serial] = m
        return self.meters[serial]


def check_row(row: dict | None, nodes: _Nodes, now: datetime) -> tuple[str | None, dict]:
    """(error code or None, parsed values). The first failing check in CHECK_ORDER is reported."""
    if row is None:
        return "invalid_row", {}
    node = nodes.node(row.get("node") or "")
    if node is None:
        return "unknown_node", {}
    meter = nodes.meter(row.get("meter_serial") or "")
    if meter is None:
        return "unknown_meter", {}
    ts = importer._parse_ts(row.get("read_at") or "")
    if ts is None:
        return "invalid_timestamp", {}
    if ts > now + mqtt.CLOCK_SKEW:
        return "timestamp_in_future", {}
    text = row.get("kwh")
    if text in (None, ""):
        return "missing_register", {}
    if text.startswith("-"):
        return "negative_register", {}
    if not importer._NUM.match(text):
        return "non_numeric_register", {}
    kwh = Decimal(text)
    meter_id, digits = meter
    if kwh >= Decimal(10) ** digits:
        return "register_out_of_range", {}
    return None, {"node": node, "meter_id": meter_id, "read_at": ts, "kwh": kwh}


def import_file(
    *, path: Path | str, actor=None, file_format: str | None = None, source: str = ReadingSource.AMR
) -> ImportBatch:
    """Import boundary-meter readings; every refused row is reported with its reason."""
    path = Path(path)
    fmt = importer.detect_format(path, file_format)
    started = _time.monotonic()
    batch = ImportBatch.objects.create(
        file_name=f"boundary:{path.name}"[:255],
        file_sha256=importer.file_sha256(path),
        file_format=fmt,
        source=source,
        imported_by=actor if getattr(actor, "pk", None) else None,
    )
    nodes, now = _Nodes(), timezone.now()
    good: list[tuple[int, dict]] = []
    errors: list[ImportRowError] = []
    rows = 0
    for number, row in enumerate(_rows(path, fmt), start=1):
        rows += 1
        code, values = check_row(row, nodes, now)
        if code:
            raw = "" if row is None else ",".join(str(row.get(c) or "") for c in COLUMNS)
            errors.append(
                ImportRowError(batch=batch, row_number=number, code=code, message=MESSAGES[code], raw=raw[:500])
            )
        else:
            good.append((number, values))
    insts = _open_on({v["meter_id"] for _, v in good}, (v["read_at"] for _, v in good))
    new: list[BoundaryReading] = []
    for number, v in good:
        inst = _installation_at(insts, v["meter_id"], v["read_at"])
        kind, node_id = v["node"]
        if inst is None or (inst.transformer_id if kind == "dt" else inst.feeder_id) != node_id:
            errors.append(
                ImportRowError(
                    batch=batch, row_number=number, code="meter_not_on_node", message=MESSAGES["meter_not_on_node"]
                )
            )
            continue
        new.append(
            BoundaryReading(
                meter_id=v["meter_id"],
                installation=inst,
                read_at=v["read_at"],
                source=source,
                kwh=v["kwh"],
                batch=batch,
            )
        )
    with transaction.atomic():
        before = BoundaryReading.objects.filter(batch=batch).count()
        BoundaryReading.objects.bulk_create(new, ignore_conflicts=True, batch_size=2000)
        inserted = BoundaryReading.objects.filter(batch=batch).count() - before
        ImportRowError.objects.bulk_create(sorted(errors, key=lambda e: e.row_number), batch_size=2000)
        batch.rows, batch.inserted = rows, inserted
        batch.duplicates, batch.rejected = len(new) - inserted, len(errors)
        batch.state, batch.finished_at = ImportBatch.State.DONE, timezone.now()
        batch.seconds = _time.monotonic() - started
        batch.vee_done = True
        batch.save()
        record_audit(
            actor=actor,
            channel="import",
            action="metering.boundary_import",
            obj=batch,
            changes={"rows": rows, "inserted": inserted, "rejected": len(errors)},
        )
    return batch


def csv_text(rows: Iterable[tuple[str, str, str, str]]) -> str:
    """A boundary-reading CSV (for tests, the demo and the bench)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(COLUMNS)
    w.writerows(rows)
    return out.getvalue()
