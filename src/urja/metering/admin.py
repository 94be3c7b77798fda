"""Admin for metering: a view of the registry and its history. Meters, readings and commands
change only through metering.services (audited), so these pages are read-only; read cycles are
configuration and editable."""

from django.contrib import admin

from urja.core.admin import ReadOnlyAdmin

from . import models


@admin.register(models.Meter)
class MeterAdmin(ReadOnlyAdmin):
    list_display = ("serial", "make", "model", "meter_type", "phase", "ownership", "status", "relay_connected")
    list_filter = ("meter_type", "status", "ownership")
    search_fields = ("serial",)


@admin.register(models.Installation)
class InstallationAdmin(ReadOnlyAdmin):
    list_display = ("meter", "account", "installed_at", "removed_at", "initial_kwh", "final_kwh")
    search_fields = ("meter__serial", "account__consumer_number")
    raw_id_fields = ("meter", "account")


@admin.register(models.SheetEntry)
class SheetEntryAdmin(ReadOnlyAdmin):
    list_display = ("meter", "kind", "at", "summary", "performed_by_name", "consumer_acknowledged")
    list_filter = ("kind",)
    search_fields = ("meter__serial",)


@admin.register(models.MeterTest)
class MeterTestAdmin(ReadOnlyAdmin):
    list_display = ("meter", "notice_given_on", "tested_on", "error_percent", "result")
    list_filter = ("result",)
    search_fields = ("meter__serial",)


@admin.register(models.Reading)
class ReadingAdmin(ReadOnlyAdmin):
    list_display = ("meter", "account", "read_at", "source", "status", "kwh", "md_kw", "vee_status")
    list_filter = ("source", "status", "vee_status")
    # exact lookups only: the readings table is the largest in the system
    search_fields = ("=meter__serial", "=account__consumer_number")
    show_full_result_count = False


@admin.register(models.ImportBatch)
class ImportBatchAdmin(ReadOnlyAdmin):
    list_display = ("file_name", "file_format", "source", "state", "rows", "inserted", "duplicates", "rejected")
    list_filter = ("state", "source")


@admin.register(models.MeterCommand)
class MeterCommandAdmin(ReadOnlyAdmin):
    list_display = ("command_id", "meter", "command", "status", "attempts", "created_at", "deadline_at")
    list_filter = ("command", "status")
    search_fields = ("=meter__serial", "command_id")


@admin.register(models.SmartMeterEvent)
class SmartMeterEventAdmin(ReadOnlyAdmin):
    list_display = ("meter", "kind", "at", "received_at")
    list_filter = ("kind",)
    search_fields = ("=meter__serial",)


@admin.register(models.DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "topic", "code", "reason")
    list_filter = ("code",)


@admin.register(models.ReadCycle)
class ReadCycleAdmin(admin.ModelAdmin):
    list_display = ("code", "read_day")
