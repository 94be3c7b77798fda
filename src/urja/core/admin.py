"""Admin for platform data. The audit trail is read-only; tokens are issued by code, only revoked here."""

from django.contrib import admin

from .models import ApiToken, AuditEvent, BackgroundJob, DeferredTask, NumberSeries, StaffProfile


class ReadOnlyAdmin(admin.ModelAdmin):
    """View-only: nothing can be added, changed or deleted from the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor_label", "channel", "action", "object_type", "object_id")
    list_filter = ("channel", "object_type")
    search_fields = ("=object_id", "=actor_label", "^action")
    show_full_result_count = False
    list_per_page = 50


@admin.register(NumberSeries)
class NumberSeriesAdmin(admin.ModelAdmin):
    list_display = ("key", "template", "next_value")
    search_fields = ("^key",)

    def get_readonly_fields(self, request, obj=None):
        # Moving a live counter could hand out a number twice.
        return ("key", "next_value") if obj else ()


@admin.register(StaffProfile)
class StaffProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "role", "office", "mobile", "cash_limit")
    list_filter = ("role",)
    search_fields = ("user__username", "user__first_name", "user__last_name", "office__code", "office__name")
    autocomplete_fields = ("office",)
    raw_id_fields = ("user",)
    list_select_related = ("user", "office")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked")
    list_filter = ("revoked",)
    search_fields = ("name", "user__username", "=prefix")
    readonly_fields = ("user", "name", "prefix", "token_hash", "created_at", "last_used_at")
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # tokens are issued with ApiToken.issue() so that the raw value is shown once

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        count = queryset.update(revoked=True)
        self.message_user(request, f"{count} token(s) revoked.")


@admin.register(DeferredTask)
class DeferredTaskAdmin(ReadOnlyAdmin):
    """Task calls the broker refused; `core.retry_deferred` sends and deletes them."""

    list_display = ("task", "args", "attempts", "next_try_at", "last_error")
    list_filter = ("task",)


@admin.register(BackgroundJob)
class BackgroundJobAdmin(ReadOnlyAdmin):
    list_display = ("kind", "scope", "status", "stage", "done", "total", "created_by", "created_at", "finished_at")
    list_filter = ("kind", "status")
