from django.contrib import admin

from .models import TariffOrder, TariffVersion


class VersionInline(admin.TabularInline):
    model = TariffVersion
    extra = 0
    can_delete = False
    fields = [
        "schedule_code",
        "name",
        "category",
        "sub_categories",
        "areas",
        "effective_from",
        "effective_to",
        "unconfirmed",
    ]
    readonly_fields = fields


@admin.register(TariffOrder)
class TariffOrderAdmin(admin.ModelAdmin):
    list_display = ["code", "regulator", "reference", "effective_from", "effective_to", "loaded_at"]
    list_filter = ["regulator", "kind"]
    search_fields = ["code", "reference"]
    readonly_fields = [f.name for f in TariffOrder._meta.fields]
    inlines = [VersionInline]

    def has_add_permission(self, request):  # orders are loaded from files: `urja tariffs load`
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TariffVersion)
class TariffVersionAdmin(admin.ModelAdmin):
    list_display = ["schedule_code", "name", "category", "effective_from", "effective_to", "package_id", "order"]
    list_filter = ["category", "order__regulator"]
    search_fields = ["schedule_code", "name", "package_id"]
    readonly_fields = [f.name for f in TariffVersion._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
