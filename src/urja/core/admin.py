"""Admin for platform data. The audit trail is read-only; tokens are issued by code, only revoked here."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from .auth import revoke_tokens
from .login import ThrottledAdminAuthenticationForm
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
    list_display = ("name", "user", "prefix", "created_at", "expires_at", "last_used_at", "revoked", "revoked_reason")
    list_filter = ("revoked",)
    search_fields = ("name", "user__username", "=prefix")
    readonly_fields = (
        "user",
        "name",
        "prefix",
        "token_hash",
        "password_stamp",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_reason",
    )
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # tokens are issued with ApiToken.issue() so that the raw value is shown once

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked=False).update(revoked=True, revoked_reason="admin")
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


# The admin's own login goes through the password throttle like the staff login page.
admin.site.login_form = ThrottledAdminAuthenticationForm

User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UrjaUserAdmin(UserAdmin):
    """Django's user admin; deactivating a user revokes their API tokens at once (a password change
    needs nothing here: a token issued under another password is refused, see core.auth)."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            revoke_tokens(user=obj, reason="user_deactivated")
