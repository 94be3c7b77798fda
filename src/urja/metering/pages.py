"""Staff pages for meter work (issue 15 part 2, meter shifting of issue 12) and reading-file uploads.

Thin views: every form calls one service of metering.services / metering.importer. No JavaScript is
needed; on a refused request the form comes back with the values typed and the `{code, message}` in
words. Meter work is for engineers and managers (api.METER_ROLES); uploads for api.IMPORT_ROLES."""

import csv
import datetime
import os
import tempfile

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from urja.core import scope
from urja.core.errors import DomainError
from urja.core.models import Channel

from . import importer, services
from .api import IMPORT_ROLES, METER_ROLES
from .models import ImportBatch, MeterStatus, MeterType, Ownership
from .views import _account, _meter, _staff

CH = Channel.BACKOFFICE

# action -> (title, fields); a field is (name, label, kind, choices)
ACTIONS = {
    "register": (
        gettext_lazy("Register a meter (add to stock)"),
        [
            ("serial", gettext_lazy("Meter serial"), "text", None),
            ("make", gettext_lazy("Make"), "text", None),
            ("model", gettext_lazy("Model"), "text", None),
            ("meter_type", gettext_lazy("Meter type"), "select", MeterType.choices),
            ("phase", gettext_lazy("Phase"), "select", [("1", "1"), ("3", "3")]),
            ("multiplying_factor", gettext_lazy("Multiplying factor"), "decimal", None),
            ("register_digits", gettext_lazy("Register digits"), "number", None),
            ("ownership", gettext_lazy("Ownership"), "select", Ownership.choices),
            ("seals", gettext_lazy("Seal numbers (comma separated)"), "text", None),
        ],
    ),
    "install": (
        gettext_lazy("Install a meter on an account"),
        [
            ("consumer_number", gettext_lazy("Consumer number"), "text", None),
            ("serial", gettext_lazy("Meter serial"), "text", None),
            ("initial_kwh", gettext_lazy("Initial reading (kWh)"), "decimal", None),
            ("location", gettext_lazy("Meter location"), "text", None),
            ("acknowledged_by", gettext_lazy("Acknowledged by (consumer's name)"), "text", None),
        ],
    ),
    "replace": (
        gettext_lazy("Replace the meter of an account"),
        [
            ("consumer_number", gettext_lazy("Consumer number"), "text", None),
            ("final_kwh", gettext_lazy("Final reading of the old meter (kWh)"), "decimal", None),
            (
                "old_meter_status",
                gettext_lazy("Old meter is"),
                "select",
                [
                    (MeterStatus.DEFECTIVE, MeterStatus.DEFECTIVE.label),
                    (MeterStatus.BURNT, MeterStatus.BURNT.label),
                    (MeterStatus.REMOVED, MeterStatus.REMOVED.label),
                ],
            ),
            ("serial", gettext_lazy("New meter serial"), "text", None),
            ("initial_kwh", gettext_lazy("Initial reading of the new meter (kWh)"), "decimal", None),
            ("reason", gettext_lazy("Reason"), "text", None),
            ("acknowledged_by", gettext_lazy("Acknowledged by (consumer's name)"), "text", None),
        ],
    ),
    "remove": (
        gettext_lazy("Remove the meter of an account"),
        [
            ("consumer_number", gettext_lazy("Consumer number"), "text", None),
            ("final_kwh", gettext_lazy("Final reading (kWh)"), "decimal", None),
            (
                "meter_status",
                gettext_lazy("Meter is"),
                "select",
                [
                    (MeterStatus.REMOVED, MeterStatus.REMOVED.label),
                    (MeterStatus.DEFECTIVE, MeterStatus.DEFECTIVE.label),
                    (MeterStatus.BURNT, MeterStatus.BURNT.label),
                ],
            ),
            ("reason", gettext_lazy("Reason"), "text", None),
            ("acknowledged_by", gettext_lazy("Acknowledged by (consumer's name)"), "text", None),
        ],
    ),
    "notice": (
        gettext_lazy("Send the consumer notice of a meter test"),
        [
            ("serial", gettext_lazy("Meter serial"), "text", None),
            ("test_on", gettext_lazy("Test date"), "date", None),
        ],
    ),
    "test": (
        gettext_lazy("Record a meter test"),
        [
            ("serial", gettext_lazy("Meter serial"), "text", None),
            ("notice_given_on", gettext_lazy("Notice given on"), "date", None),
            ("tested_on", gettext_lazy("Tested on"), "date", None),
            ("error_percent", gettext_lazy("Error (%)"), "decimal", None),
            ("remarks", gettext_lazy("Remarks"), "text", None),
        ],
    ),
    "seals": (
        gettext_lazy("Change or record seals"),
        [
            ("serial", gettext_lazy("Meter serial"), "text", None),
            ("seals", gettext_lazy("Seal numbers (comma separated)"), "text", None),
            ("reason", gettext_lazy("Reason"), "text", None),
            ("acknowledged_by", gettext_lazy("Acknowledged by (consumer's name)"), "text", None),
        ],
    ),
    "shift": (
        gettext_lazy("Shift a meter to a new location"),
        [
            ("consumer_number", gettext_lazy("Consumer number"), "text", None),
            ("location", gettext_lazy("New location"), "text", None),
            ("acknowledged_by", gettext_lazy("Acknowledged by (consumer's name)"), "text", None),
        ],
    ),
}
DEFAULTS = {"phase": "1", "multiplying_factor": "1", "register_digits": "6", "initial_kwh": "0"}


def _date(value: str, name: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise DomainError(_("%(name)s must be a date (YYYY-MM-DD)") % {"name": name}, code="invalid_date") from exc


def _int(value: str, name: str) -> int:
    try:
        return int(value.strip())
    except ValueError as exc:
        raise DomainError(_("%(name)s must be a whole number") % {"name": name}, code="invalid_number") from exc


def _seals(value: str) -> list[str]:
    return [s.strip() for s in value.split(",") if s.strip()]


def _do(request, action: str, v: dict):
    """Run the action's service; returns the meter serial to show afterwards."""
    user = request.user
    if action == "register":
        meter = services.register_meter(
            serial=v["serial"], make=v["make"], model=v["model"], meter_type=v["meter_type"],
            phase=_int(v["phase"], "phase"), multiplying_factor=v["multiplying_factor"],
            register_digits=_int(v["register_digits"], "register digits"), ownership=v["ownership"],
            seals=_seals(v["seals"]), actor=user, channel=CH,
        )  # fmt: skip
        return meter.serial
    if action in ("notice", "test", "seals"):
        meter = _meter(request, v["serial"]) if v["serial"] else None
        if meter is None:
            raise DomainError(_("Enter the meter serial."), code="serial_required")
        if action == "notice":
            services.send_test_notice(meter=meter, test_on=_date(v["test_on"], "test date"), actor=user, channel=CH)
        elif action == "test":
            services.record_meter_test(
                meter=meter, notice_given_on=_date(v["notice_given_on"], "notice date"),
                tested_on=_date(v["tested_on"], "test date"), error_percent=v["error_percent"] or "x",
                remarks=v["remarks"], actor=user, channel=CH,
            )  # fmt: skip
        else:
            services.change_seals(
                meter=meter, seals=_seals(v["seals"]), reason=v["reason"], acknowledged_by=v["acknowledged_by"],
                actor=user, channel=CH,
            )  # fmt: skip
        return meter.serial
    account = _account(request, v["consumer_number"])
    if action == "install":
        meter = _meter(request, v["serial"])
        inst = services.install_meter(
            account=account, meter=meter, initial_kwh=v["initial_kwh"] or 0, location=v["location"],
            acknowledged_by=v["acknowledged_by"], actor=user, channel=CH,
        )  # fmt: skip
    elif action == "replace":
        new = _meter(request, v["serial"])
        inst = services.replace_meter(
            account=account, new_meter=new, final_kwh=v["final_kwh"], initial_kwh=v["initial_kwh"] or 0,
            reason=v["reason"], old_meter_status=v["old_meter_status"], acknowledged_by=v["acknowledged_by"],
            actor=user, channel=CH,
        )  # fmt: skip
    elif action == "remove":
        inst = services.remove_meter(
            account=account, final_kwh=v["final_kwh"], reason=v["reason"], meter_status=v["meter_status"],
            acknowledged_by=v["acknowledged_by"], actor=user, channel=CH,
        )  # fmt: skip
    else:
        inst = services.shift_meter(
            account=account, location=v["location"], acknowledged_by=v["acknowledged_by"], actor=user, channel=CH
        )
    return inst.meter.serial


@login_required
def meter_work(request):
    """The list of meter jobs an engineer can do here."""
    _staff(request, METER_ROLES)
    return render(request, "metering/work.html", {"actions": [(k, v[0]) for k, v in ACTIONS.items()]})


@login_required
def meter_action(request, action: str):
    _staff(request, METER_ROLES)
    if action not in ACTIONS:
        raise Http404("no such action")
    title, fields = ACTIONS[action]
    source = request.POST if request.method == "POST" else request.GET
    values = {name: source.get(name, DEFAULTS.get(name, "")).strip() for name, *_rest in fields}
    error, status = None, 200
    if request.method == "POST":
        try:
            serial = _do(request, action, values)
        except DomainError as exc:
            error, status = {"code": exc.code, "message": exc.message}, 400
        except Http404:
            error, status = {"code": "not_found", "message": _("No such account or meter in your area.")}, 404
        else:
            messages.success(request, _("Done: %(title)s.") % {"title": title})
            return redirect("metering:meter", serial=serial)
    rows = [
        {"name": n, "label": label, "kind": kind, "choices": choices, "value": values[n]}
        for n, label, kind, choices in fields
    ]
    context = {"action": action, "title": title, "fields": rows, "error": error}
    return render(request, "metering/action.html", context, status=status)


# --- reading files (AMR and mobile reading app) --------------------------------------------------------

UPLOAD_SOURCES = [("amr", gettext_lazy("AMR file")), ("field_agent", gettext_lazy("Mobile reading app file"))]


@login_required
def upload(request):
    _staff(request, IMPORT_ROLES)
    values = {"source": request.POST.get("source", "amr"), "bill_cycle": request.POST.get("bill_cycle", "").strip()}
    error, status = None, 200
    if request.method == "POST":
        f = request.FILES.get("file")
        try:
            if f is None:
                raise DomainError(_("Choose a file to upload."), code="file_required")
            if values["source"] not in dict(UPLOAD_SOURCES):
                raise DomainError(_("Choose the kind of file."), code="invalid_source")
            suffix = os.path.splitext(f.name)[1][:8]
            with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as tmp:
                for chunk in f.chunks():
                    tmp.write(chunk)
            try:
                batch = importer.import_file(
                    path=tmp.name, name=f.name, source=values["source"], bill_cycle=values["bill_cycle"] or None,
                    actor=request.user, channel=CH,
                )  # fmt: skip
            finally:
                os.unlink(tmp.name)
        except DomainError as exc:
            error, status = {"code": exc.code, "message": exc.message}, 400
        else:
            return redirect("metering:import_report", batch_id=batch.pk)
    recent = scope.scope_by_creator(request.user, ImportBatch.objects.all(), "imported_by").order_by("-started_at")[:20]
    context = {"values": values, "sources": UPLOAD_SOURCES, "error": error, "recent": recent}
    return render(request, "metering/upload.html", context, status=status)


def _batch(request, batch_id: int) -> ImportBatch:
    # an import and its report belong to the offices above the importer's, like payment files
    batch = scope.scope_by_creator(request.user, ImportBatch.objects.all(), "imported_by").filter(pk=batch_id).first()
    if batch is None:
        raise Http404("no such import")
    return batch


@login_required
def import_report(request, batch_id: int):
    _staff(request, IMPORT_ROLES)
    batch = _batch(request, batch_id)
    return render(request, "metering/import_report.html", {"batch": batch, "errors": batch.errors.all()[:500]})


@login_required
def import_report_csv(request, batch_id: int):
    _staff(request, IMPORT_ROLES)
    batch = _batch(request, batch_id)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{batch.pk}-report.csv"'
    out = csv.writer(response)
    out.writerow(["row", "outcome", "code", "message", "raw"])
    for e in batch.errors.all().iterator():
        out.writerow([e.row_number, "refused", e.code, e.message, e.raw])
    out.writerow([])
    out.writerow(
        ["rows", batch.rows, "accepted", batch.inserted, "duplicates", batch.duplicates, "refused", batch.rejected]
    )
    return response
