from django.contrib import admin

from .models import OutboxMessage
from .selectors import shown_body


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """Read-only: messages change only through notifications.services."""

    list_display = ("created_at", "event", "channel", "to", "language", "status", "attempts", "sent_at")
    list_filter = ("status", "channel", "event", "language")
    search_fields = ("to", "idempotency_key", "account__consumer_number", "provider_message_id")
    date_hierarchy = "created_at"
    list_select_related = ("account",)
    raw_id_fields = ("consumer", "account")
    readonly_fields = [f.name for f in OutboxMessage._meta.fields if f.name != "body"] + ["text"]
    exclude = ("body",)

    @admin.display(description="body")
    def text(self, obj):
        return shown_body(obj)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
