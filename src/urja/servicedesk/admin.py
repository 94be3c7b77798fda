"""Admin: the loaded catalogue (read-only: load a new version with `urja servicedesk load`),
requests (read-only: change them through the service desk pages), outages, compensation."""

from django.contrib import admin

from urja.core.admin import ReadOnlyAdmin

from .models import (
    CompensationAward,
    Escalation,
    EscalationTier,
    Hearing,
    Outage,
    RequestEvent,
    RequestType,
    ServiceRequest,
    SopSchedule,
)


class RequestTypeInline(admin.TabularInline):
    model = RequestType
    fields = [
        "type_code",
        "subtype_code",
        "name",
        "unit",
        "value",
        "urban_value",
        "rural_value",
        "channel_row",
        "office_level",
        "team",
        "workflow",
        "confirmed",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(SopSchedule)
class SopScheduleAdmin(ReadOnlyAdmin):
    list_display = ["code", "version", "state", "effective_from", "title", "loaded_at"]
    list_filter = ["state"]
    readonly_fields = [
        "code",
        "version",
        "state",
        "effective_from",
        "title",
        "source",
        "file_path",
        "sha256",
        "loaded_at",
        "document",
    ]
    inlines = [RequestTypeInline]


class TierInline(admin.TabularInline):
    model = EscalationTier
    readonly_fields = ["level", "title", "fraction", "office_level"]
    extra = 0
    can_delete = False


@admin.register(RequestType)
class RequestTypeAdmin(ReadOnlyAdmin):
    list_display = ["type_name", "name", "unit", "value", "urban_value", "rural_value", "team", "schedule", "confirmed"]
    list_filter = ["schedule", "kind", "unit", "team", "confirmed"]
    search_fields = ["type_code", "subtype_code", "name"]
    inlines = [TierInline]


class EventInline(admin.TabularInline):
    model = RequestEvent
    readonly_fields = ["at", "kind", "actor_label", "channel", "from_status", "to_status", "text"]
    fields = readonly_fields
    extra = 0
    can_delete = False


class EscalationInline(admin.TabularInline):
    model = Escalation
    readonly_fields = ["level", "title", "office_level", "reason", "fraction", "created_at"]
    fields = readonly_fields
    extra = 0
    can_delete = False


@admin.register(ServiceRequest)
class ServiceRequestAdmin(ReadOnlyAdmin):
    list_display = [
        "number",
        "type_code",
        "subtype_code",
        "status",
        "channel",
        "office",
        "registered_at",
        "due_at",
        "escalation_level",
        "breached",
    ]
    list_filter = ["status", "type_code", "channel", "breached", "esc_clock__escalation_level"]
    search_fields = ["number", "account__consumer_number", "contact_mobile"]
    date_hierarchy = "registered_at"
    list_select_related = ["office", "esc_clock"]
    inlines = [EventInline, EscalationInline]


@admin.register(Outage)
class OutageAdmin(ReadOnlyAdmin):
    list_display = [
        "number",
        "kind",
        "status",
        "feeder",
        "transformer",
        "starts_at",
        "restored_at",
        "affected_accounts",
    ]
    list_filter = ["kind", "status"]


@admin.register(CompensationAward)
class CompensationAwardAdmin(ReadOnlyAdmin):
    list_display = ["request", "amount", "units_late", "basis", "division", "month", "capped"]
    list_filter = ["month", "division"]


@admin.register(Hearing)
class HearingAdmin(ReadOnlyAdmin):
    list_display = ["request", "scheduled_for", "venue", "outcome", "revision_amount"]
    list_filter = ["outcome"]
