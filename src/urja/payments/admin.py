from django.contrib import admin

from urja.core.admin import ReadOnlyAdmin

from . import models

# Records change only through services: the admin shows them.


@admin.register(models.Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("receipt_number", "consumer_number", "amount", "channel", "method", "status", "received_at")
    list_filter = ("status", "channel", "method")
    search_fields = ("receipt_number", "consumer_number", "reference", "idempotency_key")
    date_hierarchy = "received_at"


@admin.register(models.CashierSession)
class SessionAdmin(ReadOnlyAdmin):
    list_display = ("cashier", "office", "status", "opened_at", "expected_cash", "counted_cash", "shortage")
    list_filter = ("status",)


@admin.register(models.ImportBatch)
class BatchAdmin(ReadOnlyAdmin):
    list_display = ("imported_at", "source", "filename", "rows", "posted", "duplicates", "suspense", "errors")


@admin.register(models.GatewayOrder)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ("reference", "account", "amount", "channel", "status", "created_at")


@admin.register(models.PrepaidWallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ("account", "supply", "charged_through", "last_command", "last_command_at")


@admin.register(models.PaygDevice)
class DeviceAdmin(ReadOnlyAdmin):
    list_display = ("serial", "account", "token_count", "active")
    exclude = ("secret_encrypted",)


@admin.register(models.CollectionCase)
class CaseAdmin(ReadOnlyAdmin):
    list_display = ("account", "reason", "status", "amount_due", "flagged_on", "notice_number", "pay_by")
    list_filter = ("status", "reason")
