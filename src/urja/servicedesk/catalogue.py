"""The SoP catalogue: validate a schedule file, load it into versioned models, look rows up.

A schedule file (data/servicedesk/<state>_sop.toml) lists every request/complaint type and
sub-type with its timeline, channels, owning office level and team, workflow, escalation tiers
and compensation rules. `load_file` is idempotent: the same file content loads once.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from urja.core.errors import DomainError, NotFound
from urja.core.models import Channel
from urja.core.states import StateMachine
from urja.network.models import OfficeLevel

from . import compensation as comp
from .models import EscalationTier, RequestType, SopSchedule
from .sla import UNITS


class CatalogueError(DomainError):
    code = "invalid_catalogue"


def _require(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise CatalogueError(f"{where}: {message}")


def validate(doc: dict[str, Any], *, name: str = "schedule") -> None:
    """Raise CatalogueError naming the first problem in a parsed schedule file."""
    for key in ("code", "state", "version", "effective_from", "source", "channels", "channel_matrix", "workflows"):
        _require(key in doc, name, f"missing '{key}'")
    _require(isinstance(doc["effective_from"], date), name, "effective_from must be a TOML date")
    _require(bool(doc["source"]), name, "[source] citation is required")
    matrix_cols = doc["channels"]["matrix"]
    for col in matrix_cols:
        _require(col in Channel.values, f"{name} channels.matrix", f"unknown channel {col!r}")
    for alias, target in doc["channels"].get("aliases", {}).items():
        _require(alias in Channel.values, f"{name} channels.aliases", f"unknown channel {alias!r}")
        _require(target in matrix_cols, f"{name} channels.aliases", f"{alias} -> {target!r} is not a matrix column")
    for row, cols in doc["channel_matrix"].items():
        for col in cols:
            _require(col in matrix_cols, f"{name} channel_matrix.{row}", f"unknown column {col!r}")
    for wf_name, wf in doc["workflows"].items():
        where = f"{name} workflows.{wf_name}"
        states = set(wf["transitions"])
        for key in ("initial", "open", "final"):
            _require(key in wf, where, f"missing '{key}'")
        _require(wf["initial"] in states, where, "initial state has no transitions entry")
        for state, targets in wf["transitions"].items():
            for target in targets:
                _require(target in states, where, f"{state} -> {target}: unknown state")
        for state in [*wf["open"], *wf["final"], *wf.get("paused", [])]:
            _require(state in states, where, f"state {state!r} is not in transitions")
        roles = workflow_roles(wf)
        for role in REQUIRED_ROLES:
            _require(roles.get(role) is not None, where, f"roles.{role}: the workflow needs a {role!r} state")
        for role, state in roles.items():
            _require(state is None or state in states, where, f"roles.{role} = {state!r} is not in transitions")
        for role in ("closed", "cancelled"):
            _require(roles[role] in wf["final"], where, f"roles.{role} must be a final state")
        _require(roles["reopened"] in wf["open"], where, "roles.reopened must be an open state")
    levels = {lvl.value for lvl in OfficeLevel}
    for key, tiers in doc.get("escalation", {}).items():
        where = f"{name} escalation.{key}"
        last_level, last_at = 0, 0.0
        for tier in tiers:
            _require(tier["level"] > last_level, where, "levels must increase")
            _require(float(tier["at"]) > last_at, where, "fractions must increase")
            _require(tier["office_level"] in levels, where, f"unknown office level {tier['office_level']!r}")
            last_level, last_at = tier["level"], float(tier["at"])
    for key, rule in doc.get("compensation", {}).items():
        try:
            comp.validate_rule(key, rule)
        except ValueError as exc:
            raise CatalogueError(f"{name}: {exc}") from exc
    seen = set()
    for t in doc.get("types", []):
        where = f"{name} types.{t.get('code')}"
        for key in ("code", "name", "kind", "workflow", "office_level", "team", "escalation", "subtypes"):
            _require(key in t, where, f"missing '{key}'")
        _require(t["kind"] in RequestType.Kind.values, where, f"kind must be request or complaint, not {t['kind']!r}")
        _require(t["workflow"] in doc["workflows"], where, f"unknown workflow {t['workflow']!r}")
        _require(t["office_level"] in levels, where, f"unknown office level {t['office_level']!r}")
        _require(t["escalation"] in doc.get("escalation", {}), where, f"unknown escalation {t['escalation']!r}")
        if t.get("compensation"):
            _require(t["compensation"] in doc.get("compensation", {}), where, "unknown compensation rule")
        for sub in t["subtypes"]:
            swhere = f"{where}.{sub.get('code')}"
            _require((t["code"], sub["code"]) not in seen, swhere, "duplicate sub-type")
            seen.add((t["code"], sub["code"]))
            _require(sub.get("unit") in UNITS, swhere, f"unit must be one of {', '.join(UNITS)}")
            _require(sub.get("channel_row") in doc["channel_matrix"], swhere, "unknown channel_row")
            values = [sub.get(k) for k in ("value", "urban", "rural") if sub.get(k) is not None]
            _require(bool(values), swhere, "needs a timeline: value, or urban and rural")
            _require(
                all(isinstance(v, int) and v >= 1 for v in values), swhere, "timeline values are whole numbers >= 1"
            )
    _require(bool(seen), name, "no types")


def parse_file(path: Path) -> tuple[dict[str, Any], str]:
    raw = path.read_bytes()
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{path}: {exc}") from exc
    validate(doc, name=path.name)
    return doc, hashlib.sha256(raw).hexdigest()


@transaction.atomic
def load_file(path: str | Path) -> tuple[SopSchedule, bool]:
    """Load a schedule file; returns (schedule, created). A changed file needs a new version."""
    file = Path(path)
    if not file.is_absolute() and not file.exists():
        file = Path(settings.DATA_DIR) / path
    if not file.exists():
        raise CatalogueError(f"{path}: no such schedule file", code="catalogue_missing")
    doc, digest = parse_file(file)
    existing = SopSchedule.objects.filter(code=doc["code"], version=doc["version"]).first()
    if existing:
        if existing.sha256 != digest:
            raise CatalogueError(
                f"{file.name}: {doc['code']} version {doc['version']} is already loaded with different content; "
                "give the changed schedule a new version",
                code="catalogue_version_exists",
            )
        return existing, False
    schedule = SopSchedule.objects.create(
        code=doc["code"],
        state=doc["state"],
        version=doc["version"],
        title=doc.get("title", doc["code"]),
        effective_from=doc["effective_from"],
        source=doc["source"],
        document=_jsonable(doc),
        file_path=str(file),
        sha256=digest,
    )
    rows, tiers_of = [], []
    for t in doc["types"]:
        for sub in t["subtypes"]:
            rows.append(
                RequestType(
                    schedule=schedule,
                    type_code=t["code"],
                    type_name=t["name"],
                    subtype_code=sub["code"],
                    name=sub["name"],
                    kind=t["kind"],
                    workflow=t["workflow"],
                    office_level=t["office_level"],
                    team=t["team"],
                    requires_account=t.get("requires_account", True),
                    channel_row=sub["channel_row"],
                    channels=list(doc["channel_matrix"][sub["channel_row"]]),
                    unit=sub["unit"],
                    value=sub.get("value"),
                    urban_value=sub.get("urban"),
                    rural_value=sub.get("rural"),
                    escalation_key=t["escalation"],
                    compensation_key=t.get("compensation", ""),
                    outage_check=t.get("outage_check", False),
                    confirmed=sub.get("confirmed", t.get("confirmed", True)),
                    note=sub.get("note", "")[:255],
                )
            )
            tiers_of.append(doc["escalation"][t["escalation"]])
    RequestType.objects.bulk_create(rows)
    if any(rt.pk is None for rt in rows):  # a backend that does not return ids
        by_key = {(r.type_code, r.subtype_code): r for r in schedule.types.all()}
        rows = [by_key[(r.type_code, r.subtype_code)] for r in rows]
    EscalationTier.objects.bulk_create(
        EscalationTier(
            request_type=rt,
            level=tier["level"],
            title=tier["title"],
            fraction=float(tier["at"]),
            office_level=tier["office_level"],
        )
        for rt, tiers in zip(rows, tiers_of, strict=True)
        for tier in tiers
    )
    return schedule, True


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def default_files() -> list[Path]:
    return sorted(p for p in (Path(settings.DATA_DIR) / "servicedesk").glob("*_sop.toml"))


def active_schedule(state: str | None = None, on: date | None = None) -> SopSchedule:
    """The schedule in force for a state on a date (latest effective_from, then version).

    Without `on`, one narrow query finds which schedule is in force and the loaded catalogue of
    that schedule comes from this process's cache (see `_cached`)."""
    state = state or settings.URJA_STATE
    qs = SopSchedule.objects.filter(state=state)
    if on is not None:
        qs = qs.filter(effective_from__lte=on)
        schedule = qs.order_by("-effective_from", "-version").first()
    else:
        stamp = qs.order_by("-effective_from", "-version").values_list("pk", "sha256", "loaded_at").first()
        schedule = _cached(stamp).schedule if stamp is not None else None
    if schedule is None:
        raise NotFound(
            f"no service-desk schedule is loaded for {state}; run `urja servicedesk load`",
            code="no_sop_schedule",
        )
    return schedule


@dataclass(frozen=True)
class _Loaded:
    """A loaded schedule with its rows, as read once by this process (never changed afterwards)."""

    schedule: SopSchedule
    types: dict[tuple[str, str], RequestType]  # (type_code, subtype_code) -> row, in catalogue order
    by_id: dict[int, RequestType]
    tiers: dict[int, tuple[EscalationTier, ...]]  # request type id -> tiers by level
    machines: dict[str, StateMachine]


# A loaded schedule never changes (a changed file is a new version, a new row), so a process keeps
# what it read, keyed by the row's identity (id, content hash and load moment: an id reused after a
# rolled-back load cannot hit a stale entry). A new version is picked up at once by every process:
# active_schedule() asks the database which row is in force on every call.
_CACHE: dict[tuple, _Loaded] = {}
_CACHE_LIMIT = 16


def _key(stamp) -> tuple:
    pk, sha256, loaded_at = stamp
    return (pk, sha256, loaded_at)


def _cached(stamp) -> _Loaded:
    key = _key(stamp)
    loaded = _CACHE.get(key)
    if loaded is None:
        schedule = SopSchedule.objects.get(pk=key[0])
        loaded = _load_rows(schedule)
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[key] = loaded
    return loaded


def _load_rows(schedule: SopSchedule) -> _Loaded:
    rows = list(RequestType.objects.filter(schedule=schedule).order_by("type_code", "subtype_code"))
    tiers: dict[int, list[EscalationTier]] = {rt.pk: [] for rt in rows}
    for tier in EscalationTier.objects.filter(request_type__schedule=schedule).order_by("request_type", "level"):
        tiers[tier.request_type_id].append(tier)
    for rt in rows:
        rt.schedule = schedule
    machines = {
        name: StateMachine(f"service request ({name})", wf["transitions"])
        for name, wf in schedule.document["workflows"].items()
    }
    return _Loaded(
        schedule=schedule,
        types={(rt.type_code, rt.subtype_code): rt for rt in rows},
        by_id={rt.pk: rt for rt in rows},
        tiers={pk: tuple(found) for pk, found in tiers.items()},
        machines=machines,
    )


def _loaded(schedule: SopSchedule) -> _Loaded:
    """The cached catalogue of `schedule` (any instance of the row)."""
    loaded = _CACHE.get(_key((schedule.pk, schedule.sha256, schedule.loaded_at)))
    return loaded if loaded is not None else _cached((schedule.pk, schedule.sha256, schedule.loaded_at))


def clear_cache() -> None:
    _CACHE.clear()


def cached_type(schedule: SopSchedule, pk: int) -> RequestType | None:
    """The cached row `pk` when it belongs to `schedule` (None otherwise: read it as usual)."""
    return _loaded(schedule).by_id.get(pk)


def tiers_of(request_type: RequestType) -> list[EscalationTier]:
    """The escalation tiers of a catalogue row, by level (from the cache)."""
    return list(_loaded(request_type.schedule).tiers.get(request_type.pk, ()))


def settings_of(schedule: SopSchedule) -> dict[str, Any]:
    return schedule.document.get("settings", {})


def find_type(*, type_code: str, subtype_code: str | None = None, schedule: SopSchedule | None = None) -> RequestType:
    schedule = schedule or active_schedule()
    types = _loaded(schedule).types
    if subtype_code:
        found = types.get((type_code, subtype_code))
        rows = [found] if found is not None else []
    else:
        rows = [rt for (code, _), rt in types.items() if code == type_code]
    if not rows:
        known = sorted({code for code, _ in types})
        what = f"{type_code}/{subtype_code}" if subtype_code else type_code
        raise DomainError(f"unknown request type {what!r}", code="unknown_request_type", details={"known_types": known})
    if len(rows) > 1:
        raise DomainError(
            f"request type {type_code!r} has several sub-types; name one",
            code="subtype_required",
            details={"subtypes": [rt.subtype_code for rt in rows]},
        )
    return rows[0]


def workflow_machine(schedule: SopSchedule, workflow: str) -> StateMachine:
    machine = _loaded(schedule).machines.get(workflow)
    if machine is None:  # not a workflow of the file: the same KeyError as reading the document
        raise KeyError(workflow)
    return machine


def workflow_def(schedule: SopSchedule, workflow: str) -> dict[str, Any]:
    return schedule.document["workflows"][workflow]


# The states the code acts on by role, not by name: the workflow's [roles] table names them (a file
# without one, loaded before roles existed, uses the role's own name where the workflow has it).
ROLES = ("closed", "cancelled", "reopened", "assigned", "working", "outage")
REQUIRED_ROLES = ("closed", "cancelled", "reopened")
_ROLE_DEFAULTS = {"working": "in_progress", "outage": "linked_to_outage"}


def workflow_roles(wf: dict[str, Any]) -> dict[str, str | None]:
    states = set(wf["transitions"])
    named = wf.get("roles", {})
    out = {}
    for role in ROLES:
        default = _ROLE_DEFAULTS.get(role, role)
        out[role] = named.get(role, default if default in states else None)
    return out


@dataclass(frozen=True)
class WorkflowStates:
    """A workflow's state names by role (from the catalogue): what services compare with."""

    initial: str
    open: frozenset[str]
    final: frozenset[str]
    paused: tuple[str, ...]  # the first is where pause_clock goes
    closed: str  # resolved with notes: stops the clock, feedback, may be reopened
    cancelled: str  # withdrawn with a reason: stops the clock
    reopened: str
    assigned: str | None  # where assigning a new or reopened request moves it
    working: str | None  # where a resumed clock goes by default
    outage: str | None  # a supply complaint joined to a known outage


def workflow_states(schedule: SopSchedule, workflow: str) -> WorkflowStates:
    wf = workflow_def(schedule, workflow)
    roles = workflow_roles(wf)
    return WorkflowStates(
        initial=wf["initial"],
        open=frozenset(wf["open"]),
        final=frozenset(wf["final"]),
        paused=tuple(wf.get("paused", ())),
        **roles,
    )


def states_in_role(schedule: SopSchedule, role: str) -> list[str]:
    """Every workflow's state in `role` ("final" and "open" too): for queries across workflows."""
    found: set[str] = set()
    for name in schedule.document["workflows"]:
        states = workflow_states(schedule, name)
        value = getattr(states, role)
        found.update(value if isinstance(value, frozenset | tuple) else [value] if value else [])
    return sorted(found)


def channel_column(schedule: SopSchedule, channel: str) -> str:
    channels = schedule.document["channels"]
    return channels.get("aliases", {}).get(channel, channel)


def channel_label(schedule: SopSchedule, column: str) -> str:
    return schedule.document["channels"].get("labels", {}).get(column, column.replace("_", " "))


def allowed_labels(schedule: SopSchedule, rt: RequestType) -> list[str]:
    return [channel_label(schedule, c) for c in rt.channels]
